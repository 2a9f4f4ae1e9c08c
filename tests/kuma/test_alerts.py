"""The alert path end to end with a real Kuma and the alert receiver: who hears what, in which words.

- A job that stops pushing: its push monitor goes down and only the agency hears of it.
- A site that goes down and comes back: the client's contacts (every channel of the tier) and the
  agency hear of both; the contacts in plain words, the agency with Kuma's detail.

Plans here are test-built variants (Kuma's shortest interval, no retries), so a test waits tens
of seconds rather than the tier's minutes; the catalog is untouched. How long an alert takes is
measured in bench/, not asserted here: the waits below only bound a test that would otherwise hang.
The lab-level version (stop a lab site's nginx) lives with the lab tests.
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import replace
from typing import Any

import pytest

from infra.alerting import LAB_AGENCY, recipients
from infra.kuma_client import KumaSession, connect
from infra.monitors import MIN_INTERVAL_SECONDS, desired_state, monitor_states, sync
from infra.monitors.states import public_monitor_states
from lab.alert_receiver import Alert
from lab.services import lab_alerting
from tests.kuma.conftest import Kuma, Receiver
from tests.kuma.support import client_plan, fast_monitoring, local_site, owned, wait_until

pytestmark = pytest.mark.kuma

INTERVAL = MIN_INTERVAL_SECONDS
# Long enough never to cut a slow but working alert short on a busy machine.
PATIENCE = 10 * INTERVAL
AGENCY = ("webhook", LAB_AGENCY)


def state(session: KumaSession, client_id: str, monitor: dict[str, Any]) -> str:
    return monitor_states(session, client_id)[monitor["name"]]


def alerts_about(
    receiver: Receiver, client_id: str, monitor: str, status: str, after: float
) -> dict[tuple[str, str], Alert]:
    """The alerts about `monitor` with `status` since `after`, by (channel, recipient)."""
    return {
        (str(a.channel), str(a.to)): a
        for a in receiver.alerts(client_id)
        if (a.monitor, a.status) == (monitor, status) and a.received_at >= after
    }


def all_of(
    receiver: Receiver, client_id: str, monitor: str, status: str, after: float, expected: set[tuple[str, str]]
) -> dict[tuple[str, str], Alert]:
    """Wait until every expected recipient heard of it; then give Kuma a moment to send anything unexpected."""
    wait_until(
        lambda: expected <= alerts_about(receiver, client_id, monitor, status, after).keys(),
        PATIENCE,
        f"the {status} alert of {monitor} to {sorted(expected)}",
    )
    time.sleep(2)
    return alerts_about(receiver, client_id, monitor, status, after)


def test_a_job_that_stops_pushing_alerts_the_agency_only(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "silent")
    site = plan.sites[0]
    backup = replace(site.job("backup"), push_interval_seconds=INTERVAL)
    plan = replace(plan, sites=(replace(site, checks=(), jobs=(backup,)),))
    assert plan.client.contacts  # the client has contacts; none of them is to hear of a job
    with connect(kuma.login) as session:
        result = sync(session, desired_state(plan, lab_alerting(receiver.url)), report=None)
    token = result.push_tokens[site.id]["backup"]
    with connect(kuma.login) as session:
        monitor = owned(session, "silent")[f"{site.id} job backup"]

        # The job reports once, through the bridge address as the lab's servers do ...
        assert kuma.server.bridge_url is not None
        with urllib.request.urlopen(
            f"{kuma.server.bridge_url}/api/push/{token}?status=up&msg=OK&ping=", timeout=10
        ) as r:
            assert r.status == 200
        wait_until(lambda: state(session, "silent", monitor) == "up", PATIENCE, "the push to count")
        pushed = time.time()

        # ... and then stays silent: the monitor goes down and the agency, only the agency, hears of it.
        down = all_of(receiver, "silent", monitor["name"], "down", pushed, {AGENCY})
        assert state(session, "silent", monitor) == "down"
        assert public_monitor_states(kuma.login.url, "silent") == {monitor["name"]: "down"}
    assert public_monitor_states(kuma.login.url, "nobody") == {}  # no status page: no monitors
    assert set(down) == {AGENCY}
    assert "No heartbeat" in down[AGENCY].message  # the agency gets Kuma's own detail


def test_a_site_going_down_and_up_alerts_the_clients_contacts_in_plain_words_and_the_agency(
    kuma: Kuma, receiver: Receiver
) -> None:
    plan = client_plan("studio", "outage")
    site = plan.sites[0]
    check = site.checks[0]
    plan = replace(plan, monitoring=fast_monitoring(plan.monitoring), sites=(replace(site, checks=(check,), jobs=()),))
    contacts = {
        (channel, contact.name) for channel, contact in recipients(plan.monitoring.channels, plan.client.contacts)
    }
    assert {channel for channel, _ in contacts} == {"email", "sms", "webhook"}
    with local_site({check.path: f"Willkommen bei {check.keyword}"}) as web:
        with connect(kuma.login) as session:
            sync(session, desired_state(plan, lab_alerting(receiver.url), {site.id: web.address}), report=None)
        with connect(kuma.login) as session:
            monitor = owned(session, "outage")[f"{site.id} page {check.path}"]
            name = monitor["name"]
            wait_until(lambda: state(session, "outage", monitor) == "up", PATIENCE, "the site up")
            assert site.domain in web.hosts  # Kuma asked for the site by its domain

            web.stop()
            stopped = time.time()
            down = all_of(receiver, "outage", name, "down", stopped, contacts | {AGENCY})
            assert state(session, "outage", monitor) == "down"
            # `lab status` reads the same states from the client's public status page, without a login.
            assert (
                public_monitor_states(kuma.login.url, "outage") == monitor_states(session, "outage") == {name: "down"}
            )

            web.start()
            started = time.time()
            up = all_of(receiver, "outage", name, "up", started, contacts | {AGENCY})
            assert state(session, "outage", monitor) == "up"
            assert public_monitor_states(kuma.login.url, "outage") == {name: "up"}
    assert set(down) == set(up) == contacts | {AGENCY}
    for recipient in contacts:
        assert down[recipient].message == (
            f"Your website check {name} does not answer as it should. We have been alerted and are looking into it."
        )
        assert up[recipient].message == f"Your website check {name} answers again as it should."
    assert down[AGENCY].message.startswith(f"[{name}] [🔴 Down]")
    assert up[AGENCY].message.startswith(f"[{name}] [✅ Up]")
