"""The alert path end to end in the booted lab (the lab's Kuma, alert receiver, servers and agent).

- A lab server's nginx stops (the shared outage, tests/lab/outage.py): Kuma marks
  the site's page down and the client's contacts (in plain words) and the agency
  hear of it; nginx starts again: the recovery reaches the same recipients.
- A push monitor goes down when its job's heartbeats stop: the agent's own push
  code, run on the lab server, reports once through the bridge, then nothing;
  only the agency hears of it.

The monitors belong to test clients ("labdown", "labpush"): variants of a lab
client's plan at Kuma's shortest interval without retries (`fast_monitoring`),
synced into the lab's Kuma for the test and removed afterwards; the catalog and
the lab clients' own monitors are untouched. The site is one on a server of
its own, so the outage touches one client only. How long the alerts take is measured in bench/, not asserted here.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import replace

import pytest

from lab.state import LabState
from tests.kuma.support import wait_until
from tests.lab.outage import (
    AGENCY,
    INTERVAL,
    PATIENCE,
    Outage,
    all_heard,
    client_alone_on_its_server,
    page_monitor,
    ssh_with_input,
    state_of,
    synced,
)

pytestmark = pytest.mark.lab

# The agent's interpreter on a lab server (its console script's shebang) and its push hook,
# given the push URL base and a tokens file: the token never reaches argv.
_AGENT_PUSH = 'py=$(sed -n "1s/^#!//p" "$(command -v carestack-agent)") && "$py" -c ' + shlex.quote(
    "import sys, pathlib\n"
    "from carestack_agent.hooks.kuma import push\n"
    "ok = push(sys.argv[1], pathlib.Path(sys.argv[2]), 'backup', up=True, msg='backup done (lab test)')\n"
    "sys.exit(0 if ok else 1)\n"
)


def test_stopping_a_lab_sites_nginx_alerts_and_the_recovery_arrives(lab: LabState, nginx_outage: Outage) -> None:
    outage = nginx_outage
    monitor = page_monitor(outage.labdown)
    assert outage.contacts
    assert outage.states == ("down", "up")

    # Every channel of the tier reached its contacts, in plain words; the agency got Kuma's detail.
    down, up = outage.down_alerts, outage.up_alerts
    assert set(down) == set(up) == outage.contacts | {AGENCY}
    for recipient in outage.contacts:
        assert down[recipient].message.startswith(f"Your website check {monitor} does not answer as it should.")
        assert up[recipient].message == f"Your website check {monitor} answers again as it should."
    assert down[AGENCY].message.startswith(f"[{monitor}] [🔴 Down]")
    assert lab.ssh(outage.server, "systemctl is-active nginx").stdout.strip() == "active"


def test_a_push_monitor_goes_down_when_its_job_stops_pushing(lab: LabState) -> None:
    source = client_alone_on_its_server(lab)
    real = lab.plan(source.id)
    site = real.sites[0]
    backup = replace(site.job("backup"), push_interval_seconds=INTERVAL)
    plan = replace(real, client=replace(real.client, id="labpush"), sites=(replace(site, checks=(), jobs=(backup,)),))
    monitor = f"{site.id} · backup job"
    assert lab.kuma_push_base_url is not None
    with synced(lab, plan, {}) as result:
        token = result.push_tokens[site.id]["backup"]
        # The job reports once from its server, through the agent's push hook and the lab bridge ...
        made = lab.ssh(source.server, "umask 077 && mktemp -d")
        tokens_dir = made.stdout.strip()
        assert made.returncode == 0 and tokens_dir.startswith("/tmp/"), made.stderr
        try:
            done = ssh_with_input(lab, source.server, f"umask 077 && cat > {tokens_dir}/push.env", f"BACKUP={token}\n")
            assert done.returncode == 0, done.stderr
            command = f"{_AGENT_PUSH} {shlex.quote(lab.kuma_push_base_url)} {tokens_dir}/push.env"
            pushed_run = lab.ssh(source.server, command)
            assert pushed_run.returncode == 0, pushed_run.stderr
        finally:
            lab.ssh(source.server, f"rm -rf {shlex.quote(tokens_dir)}")
        pushed = time.time()
        wait_until(lambda: state_of(lab, "labpush", monitor) == "up", PATIENCE, "the push to count")

        # ... and then never again: the monitor goes down and the agency, only the agency, hears of it.
        down = all_heard(lab, "labpush", monitor, "down", pushed, {AGENCY})
        assert state_of(lab, "labpush", monitor) == "down"
    assert set(down) == {AGENCY}
    assert "No heartbeat" in down[AGENCY].message
