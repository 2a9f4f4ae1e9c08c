"""The alert path end to end in the booted lab (the lab's Kuma, alert receiver, servers and agent).

- A lab server's nginx stops: Kuma marks the site's page down and the alert
  receiver gets the notification; nginx starts again: the recovery arrives.
- A push monitor goes down when its job's heartbeats stop: the agent's own push
  code, run on the lab server, reports once through the bridge, then nothing.

The monitors belong to test clients ("labdown", "labpush"): variants of a lab
client's plan at Kuma's shortest interval without retries (`fast_monitoring`),
synced into the lab's Kuma for the test and removed afterwards; the catalog and
the lab clients' own monitors are untouched. The site is one on a server of
its own, and nginx is started again as soon as the alert is in: its real
client's monitors retry for longer than that outage, so they do not alert.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest

from infra.alerting import recipients
from infra.kuma import MIN_INTERVAL_SECONDS, SyncResult, desired_state, monitor_states, nothing_desired, sync
from infra.kuma_client import connect
from infra.plan import CarePlan
from lab.alert_receiver import Alert, read_alerts
from lab.services import lab_alerting
from lab.state import LabClient, LabState
from tests.kuma.support import fast_monitoring, first_alert, wait_until

pytestmark = pytest.mark.lab

INTERVAL = MIN_INTERVAL_SECONDS
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
    with synced(lab, plan, {site.id: f"http://{lab.host(server).address}"}):
        wait_until(lambda: state_of(lab, "labdown", monitor) == "up", 3 * INTERVAL, "the site checked up")

        stopped = time.time()
        try:
            assert lab.ssh(server, "systemctl stop nginx").returncode == 0
            down = wait_until(
                lambda: first_alert(alerts(lab), "labdown", monitor, "down", stopped), 3 * INTERVAL, "the down alert"
            )
            assert state_of(lab, "labdown", monitor) == "down"
        finally:
            started = time.time()
            assert lab.ssh(server, "systemctl start nginx").returncode == 0
        up = wait_until(
            lambda: first_alert(alerts(lab), "labdown", monitor, "up", started), 3 * INTERVAL, "the recovery"
        )
        assert state_of(lab, "labdown", monitor) == "up"

    assert down.received_at - stopped <= 2 * INTERVAL + plan.monitoring.timeout_seconds
    assert up.received_at - started <= 2 * INTERVAL
    # Every channel of the tier reached its contacts, each as the receiver records it.
    downs = [a for a in alerts(lab) if (a.client, a.monitor, a.status) == ("labdown", monitor, "down")]
    assert {(a.channel, a.to) for a in downs if a.received_at >= stopped} == {
        (channel, contact.name) for channel, contact in recipients(plan.monitoring.channels, plan.client.contacts)
    }
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
        wait_until(lambda: state_of(lab, "labpush", monitor) == "up", 2 * INTERVAL, "the push to count")

        # ... and then never again: the monitor goes down and the contacts are alerted.
        down = wait_until(
            lambda: first_alert(alerts(lab), "labpush", monitor, "down", pushed), 4 * INTERVAL, "the missed push alert"
        )
        assert state_of(lab, "labpush", monitor) == "down"
    assert down.received_at - pushed <= 3 * INTERVAL
    assert "No heartbeat" in down.message
