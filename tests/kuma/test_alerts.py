"""The alert path end to end with a real Kuma: a job that stops pushing, a site that goes down and comes back.

Plans here are test-built variants (Kuma's shortest interval, no retries), so a
test waits tens of seconds rather than the tier's minutes; the catalog is untouched.
The lab-level version (stop a lab site's nginx) lives with the lab tests.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import replace
from typing import Any

import pytest

from infra.kuma import MIN_INTERVAL_SECONDS, desired_state, monitor_states, sync
from infra.kuma_client import KumaSession, connect
from lab.alert_receiver import Alert
from lab.services import lab_alerting
from tests.kuma.conftest import Kuma, Receiver
from tests.kuma.support import client_plan, fast_monitoring, first_alert, local_site, owned, wait_until

pytestmark = pytest.mark.kuma

INTERVAL = MIN_INTERVAL_SECONDS


def state(session: KumaSession, client_id: str, monitor: dict[str, Any]) -> str:
    return monitor_states(session, client_id)[monitor["name"]]


def alert(receiver: Receiver, client_id: str, monitor: str, status: str, after: float) -> Alert | None:
    return first_alert(receiver.alerts(client_id), client_id, monitor, status, after)


def test_push_monitor_goes_down_when_its_job_stops_pushing(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("bakery", "silent")
    site = plan.sites[0]
    backup = replace(site.job("backup"), push_interval_seconds=INTERVAL)
    plan = replace(plan, sites=(replace(site, checks=(), jobs=(backup,)),))
    with connect(kuma.login) as session:
        token = sync(session, desired_state(plan, lab_alerting(receiver.url)), report=None).push_tokens[site.id][
            "backup"
        ]
    with connect(kuma.login) as session:
        monitor = owned(session, "silent")[f"{site.id} job backup"]

        # The job reports once, through the bridge address as the lab's servers do ...
        assert kuma.server.bridge_url is not None
        with urllib.request.urlopen(
            f"{kuma.server.bridge_url}/api/push/{token}?status=up&msg=OK&ping=", timeout=10
        ) as r:
            assert r.status == 200
        wait_until(lambda: state(session, "silent", monitor) == "up", 30, "the push to count")
        pushed = time.time()

        # ... and then stays silent: the monitor goes down and the contact is alerted.
        down = wait_until(
            lambda: alert(receiver, "silent", monitor["name"], "down", pushed), 4 * INTERVAL, "the missed push alert"
        )
        assert state(session, "silent", monitor) == "down"
    assert (down.channel, down.to) == ("email", plan.client.contacts[0].name)
    assert down.received_at - pushed <= 3 * INTERVAL


def test_site_down_alerts_and_recovery_arrives(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("bakery", "outage")
    site = plan.sites[0]
    check = site.checks[0]
    fast = fast_monitoring(plan.monitoring)
    plan = replace(plan, monitoring=fast, sites=(replace(site, jobs=()),))
    with local_site({check.path: f"Willkommen bei {check.keyword}"}) as web:
        with connect(kuma.login) as session:
            sync(session, desired_state(plan, lab_alerting(receiver.url), {site.id: web.address}), report=None)
        with connect(kuma.login) as session:
            monitor = owned(session, "outage")[f"{site.id} page {check.path}"]
            wait_until(lambda: state(session, "outage", monitor) == "up", 2 * INTERVAL, "the site up")
            assert site.domain in web.hosts  # Kuma asked for the site by its domain

            web.stop()
            stopped = time.time()
            down = wait_until(lambda: alert(receiver, "outage", monitor["name"], "down", stopped), 3 * INTERVAL, "down")
            assert state(session, "outage", monitor) == "down"

            web.start()
            started = time.time()
            up = wait_until(lambda: alert(receiver, "outage", monitor["name"], "up", started), 3 * INTERVAL, "recovery")
            assert state(session, "outage", monitor) == "up"
    assert down.received_at - stopped <= 2 * INTERVAL + fast.timeout_seconds
    assert up.received_at - started <= 2 * INTERVAL
    assert (down.client, down.channel) == ("outage", "email")
