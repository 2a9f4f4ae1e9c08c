"""The alert path end to end in the booted lab (the lab's Kuma, alert receiver, servers and agent).

- A lab server's nginx stops: Kuma marks the site's page down and the client's
  contacts (in plain words) and the agency hear of it; nginx starts again: the
  recovery reaches the same recipients.
- A push monitor goes down when its job's heartbeats stop: the agent's own push
  code, run on the lab server, reports once through the bridge, then nothing;
  only the agency hears of it.

The monitors belong to test clients ("labdown", "labpush"): variants of a lab
client's plan at Kuma's shortest interval without retries (`fast_monitoring`),
synced into the lab's Kuma for the test and removed afterwards; the catalog and
the lab clients' own monitors are untouched. The site is one on a server of
its own, and nginx is started again as soon as the alert is in: its real
client's monitors retry for longer than that outage, so they do not alert.
How long the alerts take is measured in bench/, not asserted here.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest

from infra.alerting import LAB_AGENCY, recipients
from infra.kuma_client import connect
from infra.monitors import MIN_INTERVAL_SECONDS, SyncResult, desired_state, monitor_states, nothing_desired, sync
from infra.plan import CarePlan
from lab.alert_receiver import Alert, read_alerts
from lab.services import lab_alerting
from lab.state import LabClient, LabState
from tests.kuma.support import fast_monitoring, wait_until

pytestmark = pytest.mark.lab

INTERVAL = MIN_INTERVAL_SECONDS
# Long enough never to cut a slow but working alert short on a busy machine.
PATIENCE = 10 * INTERVAL
AGENCY = ("webhook", LAB_AGENCY)
# The agent's interpreter on a lab server (its console script's shebang) and its push hook,
# given the push URL base and a tokens file: the token never reaches argv.
_AGENT_PUSH = 'py=$(sed -n "1s/^#!//p" "$(command -v carestack-agent)") && "$py" -c ' + shlex.quote(
    "import sys, pathlib\n"
    "from carestack_agent.hooks.kuma import push\n"
    "ok = push(sys.argv[1], pathlib.Path(sys.argv[2]), 'backup', up=True, msg='backup done (lab test)')\n"
    "sys.exit(0 if ok else 1)\n"
)


def alerts(lab: LabState) -> list[Alert]:
    assert lab.alert_log is not None
    return read_alerts(lab.alert_log.parent)


def ssh_with_input(lab: LabState, host: str, command: str, text: str) -> subprocess.CompletedProcess[str]:
    """Run a command on a lab server with `text` on its stdin (secrets go there, never into argv)."""
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), host, command],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def client_alone_on_its_server(lab: LabState) -> LabClient:
    """A lab client whose server hosts no other client: stopping its nginx touches one client only."""
    return min(lab.clients, key=lambda c: (len(lab.host(c.server).clients), c.id))


@contextlib.contextmanager
def synced(lab: LabState, plan: CarePlan, addresses: Mapping[str, str]) -> Iterator[SyncResult]:
    """The test client's monitors in the lab's Kuma while the block runs; removed afterwards."""
    assert lab.alert_url is not None
    login = lab.kuma_login()
    desired = desired_state(plan, lab_alerting(lab.alert_url), addresses)
    with connect(login) as session:
        result = sync(session, desired, report=None)
    try:
        yield result
    finally:
        with connect(login) as session:
            sync(session, nothing_desired(plan.client.id), report=None)


def heard(lab: LabState, client_id: str, monitor: str, status: str, after: float) -> dict[tuple[str, str], Alert]:
    """The alerts about `monitor` with `status` since `after`, by (channel, recipient)."""
    return {
        (str(a.channel), str(a.to)): a
        for a in alerts(lab)
        if (a.client, a.monitor, a.status) == (client_id, monitor, status) and a.received_at >= after
    }


def all_heard(
    lab: LabState, client_id: str, monitor: str, status: str, after: float, expected: set[tuple[str, str]]
) -> dict[tuple[str, str], Alert]:
    """Wait until every expected recipient heard of it; then give Kuma a moment to send anything unexpected."""
    wait_until(
        lambda: expected <= heard(lab, client_id, monitor, status, after).keys(),
        PATIENCE,
        f"the {status} alert of {monitor} to {sorted(expected)}",
    )
    time.sleep(2)
    return heard(lab, client_id, monitor, status, after)


def state_of(lab: LabState, client_id: str, monitor: str) -> str:
    with connect(lab.kuma_login()) as session:
        return monitor_states(session, client_id)[monitor]


def test_stopping_a_lab_sites_nginx_alerts_and_the_recovery_arrives(lab: LabState) -> None:
    source = client_alone_on_its_server(lab)
    real = lab.plan(source.id)
    site = real.sites[0]
    check = site.checks[0]
    plan = replace(
        real,
        client=replace(real.client, id="labdown"),
        monitoring=fast_monitoring(real.monitoring),
        sites=(replace(site, checks=(check,), jobs=()),),
    )
    server = source.server
    monitor = f"{site.id} · {check.path}"
    contacts = {
        (channel, contact.name) for channel, contact in recipients(plan.monitoring.channels, plan.client.contacts)
    }
    assert contacts
    with synced(lab, plan, {site.id: f"http://{lab.host(server).address}"}):
        wait_until(lambda: state_of(lab, "labdown", monitor) == "up", PATIENCE, "the site checked up")

        stopped = time.time()
        try:
            assert lab.ssh(server, "systemctl stop nginx").returncode == 0
            down = all_heard(lab, "labdown", monitor, "down", stopped, contacts | {AGENCY})
            assert state_of(lab, "labdown", monitor) == "down"
        finally:
            started = time.time()
            assert lab.ssh(server, "systemctl start nginx").returncode == 0
        up = all_heard(lab, "labdown", monitor, "up", started, contacts | {AGENCY})
        assert state_of(lab, "labdown", monitor) == "up"

    # Every channel of the tier reached its contacts, in plain words; the agency got Kuma's detail.
    assert set(down) == set(up) == contacts | {AGENCY}
    for recipient in contacts:
        assert down[recipient].message.startswith(f"Your website check {monitor} does not answer as it should.")
        assert up[recipient].message == f"Your website check {monitor} answers again as it should."
    assert down[AGENCY].message.startswith(f"[{monitor}] [🔴 Down]")
    assert lab.ssh(server, "systemctl is-active nginx").stdout.strip() == "active"


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
