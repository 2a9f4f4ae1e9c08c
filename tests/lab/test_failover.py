"""The standby restore the standard and premium tiers promise: `carestack lab failover` on the lab's standby."""

from __future__ import annotations

import io
import json
import shlex

import pytest

from infra.evidence_record import EvidenceRecord, parse_record
from infra.kuma_client import connect
from infra.monitors import is_owned
from lab import servers
from lab.cli import main as carestack
from lab.config import load_config
from lab.errors import LabError
from lab.failover import failover
from lab.realm import LabRealm
from lab.state import LabState
from lab.status import failovers, fetch_page

pytestmark = pytest.mark.lab

CLIENT = "studio"  # standard tier: two sites (WordPress and PHP) on the shared host
MARKER = "written on the own server just before the last backup"


def sh(lab: LabState, host: str, command: str) -> str:
    done = lab.ssh(host, command, timeout=300)
    assert done.returncode == 0, f"{host}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def test_a_client_is_restored_onto_the_standby_with_its_latest_files_and_rows(lab: LabState) -> None:
    plan = lab.plan(CLIENT)
    assert lab.standby is not None and plan.sla.failover is not None
    own, standby = plan.hosting.server, lab.standby
    web = next(site for site in plan.sites if site.database is not None)
    marker_file = f"{web.root}/failover-marker.txt"
    marker_sql = (
        f"CREATE TABLE IF NOT EXISTS failover_marker (note TEXT); INSERT INTO failover_marker VALUES ('{MARKER}')"
    )
    sh(lab, own, f"runuser -u {web.linux_user} -- sh -c {shlex.quote(f'echo {MARKER!r} > {marker_file}')}")
    sh(lab, own, f"mariadb {web.database} -e {shlex.quote(marker_sql)}")
    try:
        sh(lab, own, f"carestack-agent backup {web.id} --reason manual --wait")

        out = io.StringIO()
        report = failover(load_config(lab.state_dir), CLIENT, out=out)

        assert report.standby == standby and report.rto_target_minutes == plan.sla.failover.rto_minutes
        assert sorted(report.restored) == sorted(site.id for site in plan.sites)
        assert report.pages and all(page.ok for page in report.pages), report.pages
        assert len(report.pages) == sum(len(site.checks) for site in plan.sites)
        assert MARKER in sh(lab, standby, f"cat {marker_file}")
        rows = sh(lab, standby, f"mariadb -N {web.database} -e 'SELECT note FROM failover_marker'")
        assert rows.strip() == MARKER
        # restic restores numeric ids; the standby numbered its users in its own order
        owner = sh(lab, standby, f"stat -c %U:%G {web.root} {marker_file}").split()
        assert owner == [f"{web.linux_user}:www-data", f"{web.linux_user}:{web.linux_user}"]
        timers = plan.site_job_timers()
        states = lab.ssh(standby, f"systemctl is-active {' '.join(timers)}", timeout=30).stdout.split()
        assert states == ["inactive"] * len(timers), "the drill left the client's jobs running on the standby too"
        assert f"ran on {standby} after" in out.getvalue()
    finally:
        sh(lab, own, f"rm -f {marker_file}; mariadb {web.database} -e 'DROP TABLE IF EXISTS failover_marker'")


def test_a_tier_without_a_standby_restore_is_refused_before_anything_changes(lab: LabState) -> None:
    assert lab.standby is not None
    basic = next(c.id for c in lab.clients if lab.plan(c.id).sla.failover is None)
    config = load_config(lab.state_dir)
    standby_state = "cat /etc/carestack/agent.toml 2>/dev/null; ls -l --full-time /srv/www 2>/dev/null; true"
    before = sh(lab, lab.standby, standby_state)
    ansible_log = config.run_dir / "failover.log"
    log_before = ansible_log.stat().st_mtime_ns if ansible_log.exists() else None
    with pytest.raises(LabError, match=f"{basic}: its tier .* promises no standby restore"):
        failover(config, basic, out=io.StringIO())
    with pytest.raises(LabError, match="no lab client 'nobody'"):
        failover(config, "nobody", out=io.StringIO())
    assert sh(lab, lab.standby, standby_state) == before  # no converge, no restore
    assert (ansible_log.stat().st_mtime_ns if ansible_log.exists() else None) == log_before


# --- the real failover: `carestack failover STACK_FILE` and `failback`, fenced ---------------------------------------


def kuma_view(lab: LabState, client_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The client's page monitors' URLs, and each push monitor's latest heartbeat message (by monitor name)."""
    urls: dict[str, str] = {}
    beats: dict[str, str] = {}
    with connect(lab.kuma_login()) as session:
        for monitor in session.monitors():
            if not is_owned(monitor, client_id):
                continue
            if monitor["type"] == "push":
                found = session.api.get_monitor_beats(int(monitor["id"]), 1)
                beats[str(monitor["name"])] = str(found[-1]["msg"]) if found else ""
            elif monitor.get("url"):
                urls[str(monitor["name"])] = str(monitor["url"])
    return urls, beats


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code = carestack(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    return dict(json.loads(captured.out)) if "--json" in argv else {}


def evidence(lab: LabState, plan_bucket: str, site: str, job: str) -> list[EvidenceRecord]:
    s3 = LabRealm(load_config(lab.state_dir), lab).bucket_client(lab.plan(CLIENT))
    listing = s3.list_objects_v2(Bucket=plan_bucket, Prefix=f"evidence/{site}/{job}/")
    keys = sorted(o["Key"] for o in listing.get("Contents", []))
    return [parse_record(key, s3.get_object(Bucket=plan_bucket, Key=key)["Body"].read()) for key in keys]


def test_the_shop_fails_over_from_its_dead_server_is_fenced_there_and_fails_back_with_its_new_data(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(lab.state_dir)
    realm = LabRealm(config, lab)
    plan = lab.plan("shop")
    stack = str(lab.client("shop").stack)
    own, standby = plan.hosting.server, lab.standby
    site = plan.sites[0]
    assert site.database is not None
    upload = f"{site.root}/wp-content/uploads/written-during-failover.txt"
    order = "an order taken on the standby"
    before = len(evidence(lab, plan.storage.bucket, site.id, "failover"))
    servers.power_off(config, own)  # the shop's server is lost: nothing of it runs
    try:
        outcome = run_cli(capsys, "failover", stack, "--json")
        assert outcome["server"] == standby and float(str(outcome["rto_seconds"])) > 0
        [restored] = outcome["sites"]  # type: ignore[misc]
        assert restored["pages_ok"] == len(site.checks) and restored["rpo_seconds"] is not None
        for check in site.checks:  # the shop's pages, as its customers reach them now
            status, body = fetch_page(lab.host(standby).address, site.domain, check.path)
            assert status == check.status and check.keyword in body
        urls, _ = kuma_view(lab, "shop")
        assert urls and all(url.startswith(f"http://{lab.host(standby).address}/") for url in urls.values()), urls
        lease = realm.leases(plan).get(site.id)
        assert lease is not None and lease.holder == standby and lease.primary == own
        [record] = evidence(lab, plan.storage.bucket, site.id, "failover")[before:]
        assert record.host == standby and record.figures["rto_target_minutes"] == plan.sla.failover.rto_minutes  # type: ignore[union-attr]
        assert any(line.startswith("shop: ") and f"on {standby}" in line for line in failovers(lab))

        servers.power_on(config, own)  # the old server comes back: its agent must not run the shop's jobs
        refused = lab.ssh(own, f"carestack-agent backup {site.id}", timeout=120)
        reason = f"site {site.id} is held by {standby} since"
        assert refused.returncode == 8 and reason in refused.stderr, refused.stderr
        sh(lab, own, f"systemctl start carestack-backup@{site.id}.service || true")  # as its timer starts it
        assert reason in sh(lab, own, f"journalctl -u carestack-backup@{site.id}.service --no-pager -n 20")
        _, beats = kuma_view(lab, "shop")
        assert any("refused" in msg and reason in msg for msg in beats.values()), beats

        sql = f"CREATE TABLE IF NOT EXISTS failover_orders (note TEXT); INSERT INTO failover_orders VALUES ('{order}')"
        sh(lab, standby, f"mariadb {site.database} -e {shlex.quote(sql)}")
        write = f"mkdir -p $(dirname {upload}); echo {order!r} > {upload}"
        sh(lab, standby, f"runuser -u {site.linux_user} -- sh -c {shlex.quote(write)}")

        run_cli(capsys, "failback", stack)
        rows = sh(lab, own, f"mariadb -N {site.database} -e 'SELECT note FROM failover_orders'")
        assert rows.strip() == order
        assert order in sh(lab, own, f"cat {upload}")
        assert realm.leases(plan).get(site.id) is None
        timers = [f"carestack-{job.name}@{site.id}.timer" for job in site.jobs if not job.on_standby]
        states = lab.ssh(standby, f"systemctl is-active {' '.join(timers)}", timeout=30).stdout.split()
        assert states == ["inactive"] * len(timers)
        # nothing of the site stays on the standby, and its restore drill runs there again (it would refuse a
        # site whose root or database is still there)
        assert lab.ssh(standby, f"test -e {site.root}").returncode != 0
        assert sh(lab, standby, f"mariadb -N -e \"SHOW DATABASES LIKE '{site.database}'\"").strip() == ""
        if any(job.on_standby for job in site.jobs):
            drill = lab.ssh(standby, f"systemctl start carestack-drill@{site.id}.service", timeout=900)
            assert drill.returncode == 0, sh(lab, standby, f"journalctl -u carestack-drill@{site.id} -n 20 -o cat")
        sh(lab, own, f"carestack-agent backup {site.id} --wait")  # its own jobs run again
        urls, _ = kuma_view(lab, "shop")
        home = "https" if site.certificate else "http"  # back home, a live site is checked with its certificate
        assert all(url.startswith(f"{home}://{lab.host(own).address}/") for url in urls.values()), urls
        [back] = evidence(lab, plan.storage.bucket, site.id, "failback")[-1:]
        assert back.host == own and back.ok
        assert not any(line.startswith("shop: ") for line in failovers(lab))
    finally:
        servers.power_on(config, own)
        for lease in realm.leases(plan).active():  # a failed run must not leave the lab fenced
            realm.leases(plan).release(lease.site)
        (lab.state_dir / "traffic" / "shop.json").unlink(missing_ok=True)
        drop = "DROP TABLE IF EXISTS failover_orders"
        lab.ssh(own, f"rm -f {upload}; mariadb {site.database} -e {shlex.quote(drop)}", timeout=60)


def test_a_failover_of_a_client_already_failed_over_and_a_failback_without_one_are_refused(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = str(lab.client("studio").stack)
    assert carestack(["failback", stack]) == 2
    assert "studio: no active failover" in capsys.readouterr().err
    assert carestack(["failover", stack, "--dry-run"]) == 0
    assert f"failover of studio from shared-1 to {lab.standby} (dry run: nothing changes)" in capsys.readouterr().out


def test_the_studio_fails_over_from_its_shared_host_whose_other_clients_keep_running(
    lab: LabState, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared host that misbehaves for one client: the studio moves, the bakery on the same host stays."""
    config = load_config(lab.state_dir)
    realm = LabRealm(config, lab)
    plan = lab.plan(CLIENT)
    stack = str(lab.client(CLIENT).stack)
    own, standby = plan.hosting.server, lab.standby
    bakery = next(site for c in lab.clients if c.id != CLIENT and c.server == own for site in lab.plan(c.id).sites)
    try:
        outcome = run_cli(capsys, "failover", stack, "--json")
        assert [s["site"] for s in outcome["sites"]] == [s.id for s in plan.sites]  # type: ignore[union-attr]
        for site in plan.sites:
            refused = lab.ssh(own, f"carestack-agent backup {site.id}", timeout=120)
            assert refused.returncode == 8 and f"is held by {standby}" in refused.stderr, refused.stderr
            for check in site.checks:
                status, body = fetch_page(lab.host(standby).address, site.domain, check.path)
                assert status == check.status and check.keyword in body
        sh(lab, own, f"carestack-agent backup {bakery.id} --wait")  # the neighbour's jobs are not fenced
        run_cli(capsys, "failback", stack)
        assert realm.leases(plan).active() == []
        for site in plan.sites:
            sh(lab, own, f"carestack-agent backup {site.id} --wait")
    finally:
        for lease in realm.leases(plan).active():
            realm.leases(plan).release(lease.site)
        (lab.state_dir / "traffic" / f"{CLIENT}.json").unlink(missing_ok=True)
