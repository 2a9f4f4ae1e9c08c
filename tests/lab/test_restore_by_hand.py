"""docs/restore-by-hand.md, followed to the letter on a lab server: the page's `sh` blocks are the script.

The blocks run in order as one bash script on the server (secrets reach it on
ssh's stdin, never argv), with the lab's values put in for the page's
`<placeholders>`: the client's repository base, S3 key and restic password as
the stack's outputs would give them, and the site's names from its plan.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
from pathlib import Path

import pytest

from infra.plan import SitePlan
from lab.state import LabClient, LabState

pytestmark = pytest.mark.lab

DOC = Path(__file__).resolve().parents[2] / "docs" / "restore-by-hand.md"
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<([a-z][a-z0-9_]*)>")


def doc_script(values: dict[str, str]) -> str:
    """The page's sh blocks joined in order, each <placeholder> replaced by its value (all must be known)."""
    script = "\n".join(SH_BLOCK.findall(DOC.read_text(encoding="utf-8")))
    unknown = set(PLACEHOLDER.findall(script)) - set(values)
    assert not unknown, f"{DOC.name} uses placeholders the test has no value for: {sorted(unknown)}"
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], script)


def lab_values(lab: LabState, client: LabClient, site: SitePlan) -> dict[str, str]:
    """What the stack's outputs and the plan would tell the operator, for the lab's client and site."""
    assert lab.s3_endpoint is not None
    repository_base = f"s3:{lab.s3_endpoint.rstrip('/')}/{client.bucket}"
    assert site.repository_path == f"{client.bucket}/{site.id}"  # what the page says: <repository>/<site>
    key_id, secret = lab.s3_credentials(client.id)
    check = site.checks[0]
    assert site.database is not None and check.keyword
    return {
        "repository": repository_base,
        "s3_access_key_id": key_id,
        "s3_secret_access_key": secret,
        "restic_password": client.restic_password_file.read_text(encoding="utf-8").strip(),
        "site": site.id,
        "database": site.database,
        "domain": site.domain,
        "url": check.url,
        "keyword": check.keyword,
    }


def on_server(lab: LabState, host: str, command: str) -> str:
    run = lab.ssh(host, command, timeout=900)
    assert run.returncode == 0, f"{command}: {run.stdout}{run.stderr}"
    return run.stdout


def test_the_restore_by_hand_page_restores_a_site_with_plain_restic(lab: LabState) -> None:
    client = lab.client("bakery")
    site = lab.plan(client.id).sites[0]
    assert site.database is not None
    host, root, db = client.server, site.root, shlex.quote(site.database)
    nonce = secrets.token_hex(6)
    marker = f"{root}/restore-by-hand-marker.txt"

    # What the backup holds: a file of the site's and a row in its database.
    on_server(lab, host, f"rm -f {root}/stray-after-backup")  # an earlier run's, else the backup holds it
    on_server(lab, host, f"printf %s {nonce} > {marker} && chown {site.linux_user}: {marker}")
    sql = (
        "DROP TABLE IF EXISTS restore_marker; CREATE TABLE restore_marker (v VARCHAR(32)); "
        f"INSERT INTO restore_marker VALUES ('{nonce}')"
    )
    on_server(lab, host, f"mariadb {db} -e {shlex.quote(sql)}")
    on_server(lab, host, f"carestack-agent backup {site.id} --reason manual --wait")

    # Then the site is damaged: the file gone, a stray one added, the table dropped.
    on_server(lab, host, f"rm {marker} && touch {root}/stray-after-backup")
    on_server(lab, host, f"mariadb {db} -e 'DROP TABLE restore_marker'")

    script = doc_script(lab_values(lab, client, site))
    run = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), host, "bash -euo pipefail"],
        input=script, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert run.returncode == 0, f"the page's steps failed on {host}:\n{run.stdout}{run.stderr}"

    assert on_server(lab, host, f"cat {marker}") == nonce
    assert on_server(lab, host, f"stat -c %U {marker}").strip() == site.linux_user
    assert on_server(lab, host, f"stat -c %U:%G:%a {root}").strip() == f"{site.linux_user}:www-data:750"
    assert on_server(lab, host, f"ls -A {root}/stray-after-backup 2>/dev/null || true").strip() == ""
    assert on_server(lab, host, f"mariadb -N {db} -e 'SELECT v FROM restore_marker'").strip() == nonce
    leftovers = on_server(lab, host, f"ls -d {root}.before-restore /root/restore-{site.id} 2>/dev/null || true")
    assert leftovers.strip() == "", "the page's last step cleans up"

    # The restored site is the agent's again: its next backup succeeds.
    on_server(lab, host, f"mariadb {db} -e 'DROP TABLE restore_marker' && rm {marker}")
    on_server(lab, host, f"carestack-agent backup {site.id} --reason manual --wait")
