"""One real outage in the booted lab, shared by the tests that read it back.

A lab client alone on its server has its nginx stopped long enough for its own monitors to confirm
the sites down (the plan's retries), then started again. Meanwhile two test clients watch the same
server at Kuma's shortest interval without retries (`fast_monitoring`): "labdown", whose alerts the
alert-path test reads, and "labhist", whose history the history test reads. The report test reads the
real client's report over the same stretch. One outage instead of three keeps the lab's share of
the suite's time down; each test still asserts on its own part of the record.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from infra.alerting import LAB_AGENCY, recipients
from infra.kuma_client import connect
from infra.monitors import MIN_INTERVAL_SECONDS, SyncResult, desired_state, monitor_states, nothing_desired, sync
from infra.monitors.history import read_timelines
from infra.plan import CarePlan
from infra.timeline import MonitorTimeline
from lab.alert_receiver import Alert, read_alerts
from lab.services import lab_alerting
from lab.state import LabClient, LabState
from tests.kuma.support import fast_monitoring, wait_until

INTERVAL = MIN_INTERVAL_SECONDS
# Long enough never to cut a slow but working alert short on a busy machine.
PATIENCE = 10 * INTERVAL
AGENCY = ("webhook", LAB_AGENCY)
# Kuma's checks start late on a busy machine.
SLACK_SECONDS = 15


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


def watcher(real: CarePlan, client_id: str) -> CarePlan:
    """A test client watching the real client's first page at Kuma's shortest interval, without retries."""
    site = real.sites[0]
    return replace(
        real,
        client=replace(real.client, id=client_id),
        monitoring=fast_monitoring(real.monitoring),
        sites=(replace(site, checks=(site.checks[0],), jobs=()),),
    )


def page_monitor(plan: CarePlan) -> str:
    site = plan.sites[0]
    return f"{site.id} · {site.checks[0].path}"


@dataclass(frozen=True)
class Outage:
    client: str  # the real client alone on the server
    server: str
    begin: datetime  # every watcher checked up, and the real client's monitors had a check since
    stopped: datetime
    started: datetime
    end: datetime  # every watcher saw the recovery, and the real client's monitors too
    labdown: CarePlan
    contacts: set[tuple[str, str]]  # labdown's recipients besides the agency
    down_alerts: dict[tuple[str, str], Alert]
    up_alerts: dict[tuple[str, str], Alert]
    states: tuple[str, str]  # labdown's page as Kuma showed it while stopped, then after the start
    labhist: CarePlan
    history: MonitorTimeline  # labhist's page, read from begin to end


def outage_seconds(real: CarePlan) -> float:
    """Long enough for the real client's monitors to confirm the sites down through all their retries."""
    m = real.monitoring
    return m.interval_seconds + (m.retries + 1) * m.retry_interval_seconds + SLACK_SECONDS


def run_outage(lab: LabState) -> Outage:
    source = client_alone_on_its_server(lab)
    real = lab.plan(source.id)
    server = source.server
    address = {real.sites[0].id: f"http://{lab.host(server).address}"}
    labdown, labhist = watcher(real, "labdown"), watcher(real, "labhist")
    contacts = {
        (channel, contact.name) for channel, contact in recipients(labdown.monitoring.channels, labdown.client.contacts)
    }
    page = page_monitor(labdown)
    with synced(lab, labdown, address), synced(lab, labhist, address):
        wait_until(
            lambda: all(state_of(lab, w, page) == "up" for w in ("labdown", "labhist")),
            PATIENCE,
            "the watchers' page checked up",
        )
        begin = datetime.now(UTC)
        time.sleep(max(real.monitoring.interval_seconds, INTERVAL) + 5)
        stopped = datetime.now(UTC)
        try:
            assert lab.ssh(server, "systemctl stop nginx").returncode == 0
            down_alerts = all_heard(lab, "labdown", page, "down", stopped.timestamp(), contacts | {AGENCY})
            while_stopped = state_of(lab, "labdown", page)
            time.sleep(max(0.0, outage_seconds(real) - (datetime.now(UTC) - stopped).total_seconds()))
        finally:
            started = datetime.now(UTC)
            assert lab.ssh(server, "systemctl start nginx").returncode == 0
        up_alerts = all_heard(lab, "labdown", page, "up", started.timestamp(), contacts | {AGENCY})
        after_start = state_of(lab, "labdown", page)
        m = real.monitoring
        settle = max(2 * INTERVAL + 5, 2 * m.interval_seconds + m.retry_interval_seconds)
        time.sleep(max(0.0, settle - (datetime.now(UTC) - started).total_seconds()))
        end = datetime.now(UTC)
        with connect(lab.kuma_login()) as session:
            key = f"{labhist.sites[0].id} page {labhist.sites[0].checks[0].path}"
            history = read_timelines(session, labhist, begin, end)[key]
    return Outage(
        client=source.id,
        server=server,
        begin=begin,
        stopped=stopped,
        started=started,
        end=end,
        labdown=labdown,
        contacts=contacts,
        down_alerts=down_alerts,
        up_alerts=up_alerts,
        states=(while_stopped, after_start),
        labhist=labhist,
        history=history,
    )
