"""`carestack offboard` on the lab: a client leaves the shared host, and its hand-over restores elsewhere.

The basic-tier client shares its server with another client. After the offboard
its hand-over holds the site's last files and rows, the server holds nothing of
it (users, roots, databases, timers, secrets, vhosts), the other client's sites
and jobs run on, Kuma has none of its monitors, and its bucket still holds every
snapshot, the last one the final backup. Then the lab onboards the client anew
(an empty site, as at another agency's host) and `carestack import` brings the
hand-over in: the marker file and row are back, the pages answer. The lab is as
before afterwards, whatever happened.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shlex
import subprocess
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from infra import agent_config
from infra.kuma_client import connect
from infra.monitors import is_owned
from infra.plan import SitePlan
from lab.cli import main as carestack
from lab.state import LabState
from lab.status import fetch_page
from tests.lab.test_certificates import page_monitor, served_certificate

pytestmark = pytest.mark.lab

CLIENT = "bakery"
MARKER = "baked on the last day of the contract"


def sh(lab: LabState, host: str, command: str) -> str:
    done = lab.ssh(host, command, timeout=300)
    assert done.returncode == 0, f"{host}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def snapshots(lab: LabState, site: SitePlan) -> list[dict[str, object]]:
    """The site's snapshots read with plain restic and the client's own keys (the bucket is kept)."""
    client = lab.client(CLIENT)
    key_id, secret = lab.s3_credentials(CLIENT)
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
           "RESTIC_PASSWORD_FILE": str(client.restic_password_file),
           "RESTIC_REPOSITORY": f"s3:{lab.s3_endpoint}/{site.repository_path}"}  # fmt: skip
    listed = subprocess.run(
        ["restic", "--json", "--no-cache", "snapshots"], env=env, capture_output=True, text=True, check=True
    )
    return sorted(json.loads(listed.stdout), key=lambda s: str(s["time"]))


def owned_monitors(lab: LabState) -> list[str]:
    with connect(lab.kuma_login()) as session:
        return [str(m["name"]) for m in session.monitors() if is_owned(m, CLIENT)]


def test_a_client_leaves_with_its_hand_over_and_nothing_of_it_stays_on_the_shared_host(
    lab: LabState, tmp_path: Path
) -> None:
    plan = lab.plan(CLIENT)
    server, stack = plan.hosting.server, str(lab.client(CLIENT).stack)
    web = next(site for site in plan.sites if site.database is not None)
    neighbour = next(c.id for c in lab.clients if c.id != CLIENT and lab.plan(c.id).hosting.server == server)
    neighbour_site = lab.plan(neighbour).sites[0]
    sh(lab, server, f"runuser -u {web.linux_user} -- sh -c {shlex.quote(f'echo {MARKER!r} > {web.root}/marker.txt')}")
    sh(
        lab,
        server,
        f"mariadb {web.database} -e \"CREATE TABLE marker (note TEXT); INSERT INTO marker VALUES ('{MARKER}')\"",
    )
    assert owned_monitors(lab), "the client has monitors before it leaves"
    out = tmp_path / "handover"
    try:
        printed = io.StringIO()
        with redirect_stdout(printed):
            code = carestack(["offboard", stack, "--out", str(out), "--json"])
        assert code == 0
        outcome = json.loads(printed.getvalue())
        assert [s["site"] for s in outcome["sites"]] == [s.id for s in plan.sites]

        # the hand-over: the marker in the files and in the dump, every file as the manifest says
        readme = (out / "README.md").read_text()
        assert all(site.domain in readme for site in plan.sites)
        with tarfile.open(out / f"{web.id}-files.tar.gz") as archive:
            member = archive.extractfile(f"{web.id}/marker.txt")
            assert member is not None and member.read().decode().strip() == MARKER
            assert f"{web.id}/wp-config.php" in archive.getnames()
        assert MARKER in gzip.decompress((out / f"{web.id}-database.sql.gz").read_bytes()).decode()

        # nothing of the client is left on the shared host
        for site in plan.sites:
            assert lab.ssh(server, f"id {site.linux_user}").returncode != 0, site.linux_user
            assert lab.ssh(server, f"test -e {site.root}").returncode != 0, site.root
            units = lab.ssh(server, f"systemctl list-unit-files --no-legend 'carestack-*@{site.id}.*'").stdout
            assert units.strip() == "", units  # (exit 1: no unit matches)
            assert lab.ssh(server, f"test -e /etc/nginx/sites-enabled/{site.id}.conf").returncode != 0
            assert lab.ssh(server, f"test -e {agent_config.push_tokens_file(site.id)}").returncode != 0
            left = sh(lab, server, f"find /var/lib/carestack /etc/letsencrypt -name '{site.id}*'")
            assert left.strip() == "", f"state of {site.id} left behind: {left}"
        assert sh(lab, server, f"mariadb -N -e \"SHOW DATABASES LIKE '{web.database}'\"").strip() == ""
        assert lab.ssh(server, f"test -e {agent_config.password_file(CLIENT)}").returncode != 0
        assert CLIENT not in sh(lab, server, "carestack-agent validate")
        assert f"sites of {CLIENT}" not in sh(lab, server, "cat /etc/hosts")
        status, body = fetch_page(lab.host(server).address, web.domain, "/marker.txt")
        assert MARKER not in body, f"the site still answers ({status})"

        # the neighbour on the same host runs on: its page answers and its backup succeeds
        status, _ = fetch_page(lab.host(server).address, neighbour_site.domain, neighbour_site.checks[0].path)
        assert status == neighbour_site.checks[0].status
        sh(lab, server, f"carestack-agent backup {neighbour_site.id} --reason manual --wait")

        # Kuma forgot the client; the bucket did not: the final backup is its newest snapshot
        assert owned_monitors(lab) == []
        kept = snapshots(lab, web)
        handed = next(s for s in outcome["sites"] if s["site"] == web.id)
        assert kept and kept[-1]["id"] == handed["snapshot"]  # (keep-daily kept one of today's: the final one)
        assert "reason:offboard" in kept[-1]["tags"]  # type: ignore[operator]

        # a second run finds nothing left to do, and says so
        again = io.StringIO()
        with redirect_stdout(again):
            assert carestack(["offboard", stack, "--out", str(out)]) == 0
        assert "already off" in again.getvalue()
    finally:
        assert carestack(["lab", "up"]) == 0  # the client onboarded anew: an empty site, its monitors back

    # the hand-over restores elsewhere: into the new, empty site, by `carestack import`
    hosts = json.dumps({server: {"address": lab.host(server).address}})
    imported = carestack(["import", stack, "--site", web.id, "--hosts", hosts, "--ssh-config", str(lab.ssh_config),
                          "--archive", str(out / f"{web.id}-files.tar.gz"),
                          "--dump", str(out / f"{web.id}-database.sql.gz")])  # fmt: skip
    assert imported == 0
    status, body = fetch_page(lab.host(server).address, web.domain, "/marker.txt")
    assert status == 200 and body.strip() == MARKER
    assert sh(lab, server, f"mariadb -N {web.database} -e 'SELECT note FROM marker'").strip() == MARKER
    for check in web.checks:
        status, body = fetch_page(lab.host(server).address, web.domain, check.path)
        assert status == check.status and (check.keyword or "") in body, check.path
    # over HTTPS with a certificate from the lab's CA, and Kuma checks it with verification on
    if web.certificate:
        _, parsed = served_certificate(lab, lab.host(server).address, web.domain)  # verified against its root
        assert "Pebble" in dict(item[0] for item in parsed["issuer"])["commonName"]
        monitor = page_monitor(lab, web)
        assert monitor["url"].startswith("https://") and monitor["ignoreTls"] is False
    sh(lab, server, f"mariadb {web.database} -e 'DROP TABLE marker'")
    sh(lab, server, f"rm -f {web.root}/marker.txt")
