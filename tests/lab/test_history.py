"""The monitoring history of a real outage in the booted lab: a site's nginx stopped and started.

A test client ("labhist": a lab client's first page at Kuma's shortest interval
without retries) watches the server of the shared outage (tests/lab/outage.py),
and the history reader's timeline is compared with what was done: down from the
stop to the start, within one check interval (plus the check's timeout and
Kuma's slack), up before and after, no stretch without data.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from infra.monitors.beats import SCHEDULING_SLACK_SECONDS
from infra.timeline import State
from lab.state import LabState
from tests.lab.outage import INTERVAL, Outage

pytestmark = pytest.mark.lab


def test_a_stopped_nginx_reads_back_as_one_down_interval(lab: LabState, nginx_outage: Outage) -> None:
    outage = nginx_outage
    within = timedelta(seconds=INTERVAL + outage.labhist.monitoring.timeout_seconds + SCHEDULING_SLACK_SECONDS)
    timeline = outage.history
    downs = [i for i in timeline.intervals if i.state is State.DOWN]
    assert len(downs) == 1, timeline.intervals
    down = downs[0]
    assert outage.stopped <= down.start <= outage.stopped + within, (down, outage.stopped)
    assert outage.started <= down.end <= outage.started + within, (down, outage.started)
    assert abs(down.duration - (outage.started - outage.stopped)) <= within
    assert down.note  # Kuma's reason, e.g. "connect ECONNREFUSED 10.81.0.11:80"
    assert timeline.time_in(State.NO_DATA) == timedelta(0), timeline.intervals
    assert timeline.intervals[0].state is State.UP and timeline.intervals[-1].state is State.UP
    assert lab.ssh(outage.server, "systemctl is-active nginx").stdout.strip() == "active"
