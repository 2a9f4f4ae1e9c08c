"""The history reader against real Kuma servers: what was done to a monitor is what the timeline says.

A push monitor the test drives (pushes up, pushes down, a maintenance window,
then silence, which Kuma turns into down after the interval) and a site check
whose Kuma is stopped for a minute (no data for that stretch, never up). Each
change of state is compared with when the test made it, within one check
interval plus the reader's tolerance.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.kuma_client import KumaSession, connect
from infra.monitors import MIN_INTERVAL_SECONDS, sync
from infra.monitors.beats import SCHEDULING_SLACK_SECONDS, parse_beats
from infra.monitors.buckets import floor_to, parse_buckets
from infra.monitors.desired import DesiredMonitor, DesiredState
from infra.monitors.history import read_monitor, read_timelines
from infra.monitors.retention import HISTORY_DAYS
from infra.monitors.retention import SETTING as RETENTION
from infra.plan import CarePlan
from infra.timeline import MonitorTimeline, State
from lab import kuma_server
from tests.kuma.conftest import BRIDGE_STAND_IN, Kuma, installed
from tests.kuma.support import client_plan, local_site, owned

pytestmark = pytest.mark.kuma

INTERVAL = MIN_INTERVAL_SECONDS
PHASE = 40  # seconds per driven state: two check intervals
PUSH_EVERY = 5
# A state change shows within one check interval of when it was made, plus Kuma's lateness.
WITHIN = timedelta(seconds=INTERVAL + SCHEDULING_SLACK_SECONDS)


def push_monitor(key: str) -> DesiredMonitor:
    return DesiredMonitor(
        key=key,
        site_id="hist",
        job="backup",
        fields={
            "type": "push",
            "name": f"history test · {key}",
            "description": "history reader test",
            "interval": INTERVAL,
            "retryInterval": INTERVAL,
            "maxretries": 0,
            "upsideDown": False,
            "resendInterval": 0,
        },
    )


def page_monitor(key: str, url: str) -> DesiredMonitor:
    return DesiredMonitor(
        key=key,
        site_id="hist",
        job=None,
        fields={
            "type": "http",
            "name": f"history test · {key}",
            "description": "history reader test",
            "url": url,
            "method": "GET",
            "accepted_statuscodes": ["200-299"],
            "interval": INTERVAL,
            "retryInterval": INTERVAL,
            "maxretries": 0,
            "timeout": 5,
            "upsideDown": False,
            "resendInterval": 0,
        },
    )


def only(client_id: str, *monitors: DesiredMonitor) -> DesiredState:
    return DesiredState(client_id, monitors, (), None, None)


def plan_of(client_id: str) -> CarePlan:
    return client_plan("studio", client_id)


class Pusher:
    """Pushes `status` to a push monitor every few seconds from a thread, until told otherwise."""

    def __init__(self, url: str, token: str) -> None:
        self.base = f"{url}/api/push/{urllib.parse.quote(token)}"
        self.status: str | None = "up"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status = self.status
            if status:
                query = urllib.parse.urlencode({"status": status, "msg": f"pushed {status}", "ping": "7"})
                with contextlib.suppress(OSError):  # Kuma away: the timeline must show it
                    urllib.request.urlopen(f"{self.base}?{query}", timeout=5).read()
            self._stop.wait(PUSH_EVERY)

    def __enter__(self) -> Pusher:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def manual_maintenance(session: KumaSession, title: str, monitor_id: int) -> int:
    """A maintenance window started by hand now (Kuma's "manual" strategy), covering one monitor."""
    fields = {
        "title": title,
        "description": "history reader test",
        "strategy": "manual",
        "active": True,
        "intervalDay": 1,
        "dateRange": [],
        "weekdays": [],
        "daysOfMonth": [],
        "timeRange": [{"hours": 0, "minutes": 0}, {"hours": 0, "minutes": 0}],
        "cron": "30 3 * * *",
        "durationMinutes": 60,
        "timezoneOption": "UTC",
    }
    maintenance_id = session.save_maintenance(fields, None)
    session.set_maintenance_monitors(maintenance_id, [monitor_id])
    return maintenance_id


def state_at(timeline: MonitorTimeline, at: datetime) -> State:
    return next(i.state for i in timeline.intervals if i.start <= at < i.end)


def change_near(timeline: MonitorTimeline, state: State, at: datetime) -> datetime:
    """When the timeline enters `state` nearest to `at`."""
    starts = [i.start for i in timeline.intervals if i.state is state]
    assert starts, f"no {state} in {timeline.intervals}"
    return min(starts, key=lambda s: abs(s - at))


def assert_change(timeline: MonitorTimeline, state: State, made: datetime) -> None:
    seen = change_near(timeline, state, made)
    assert made - timedelta(seconds=1) <= seen <= made + WITHIN, f"{state} made at {made}, shown at {seen}"


def now() -> datetime:
    return datetime.now(UTC)


def synced(kuma: Kuma, desired: DesiredState) -> dict[str, Any]:
    with connect(kuma.login) as session:
        result = sync(session, desired, report=None)
        return {"tokens": result.push_tokens, "monitors": owned(session, desired.client_id)}


def test_a_driven_push_monitor_reads_back_as_driven(kuma: Kuma) -> None:
    client = "histpush"
    done = synced(kuma, only(client, push_monitor("hist job backup")))
    token = done["tokens"]["hist"]["backup"]
    monitor_id = int(done["monitors"]["hist job backup"]["id"])
    with Pusher(kuma.login.url, token) as pusher:
        time.sleep(PUSH_EVERY / 2)  # the first push is in: the range starts with a beat
        t0 = now()
        time.sleep(PHASE)
        t_down = now()
        pusher.status = "down"
        time.sleep(PHASE)
        with connect(kuma.login) as session:
            t_maintenance = now()
            window = manual_maintenance(session, f"history test {kuma.version}", monitor_id)
            pusher.status = "up"
            time.sleep(PHASE)
            t_up = now()
            session.delete_maintenance(window)
        time.sleep(PHASE)
        t_silent = now()
        pusher.status = None
        time.sleep(2 * INTERVAL + 5)
    end = now()
    with connect(kuma.login) as session:
        timelines = read_timelines(session, plan_of(client), t0, end)
    assert list(timelines) == ["hist job backup"]
    timeline = timelines["hist job backup"]
    assert (timeline.start, timeline.end) == (t0, end)
    assert timeline.resolution_seconds == INTERVAL
    assert str(kuma.version) in timeline.source
    half = timedelta(seconds=PHASE / 2)
    assert state_at(timeline, t0 + half) is State.UP
    assert state_at(timeline, t_down + half) is State.DOWN
    assert state_at(timeline, t_maintenance + half) is State.MAINTENANCE
    assert state_at(timeline, t_up + half) is State.UP
    assert state_at(timeline, end - timedelta(seconds=1)) is State.DOWN
    assert_change(timeline, State.DOWN, t_down)
    assert_change(timeline, State.MAINTENANCE, t_maintenance)
    assert_change(timeline, State.UP, t_up)
    # Silence turns the monitor down once the push was due: within one interval after it was due.
    went_down = change_near(timeline, State.DOWN, t_silent + timedelta(seconds=INTERVAL))
    assert t_silent <= went_down <= t_silent + timedelta(seconds=INTERVAL) + WITHIN
    assert timeline.time_in(State.NO_DATA) == timedelta(0), timeline.intervals
    assert timeline.response_times and all(s.ms == 7 for s in timeline.response_times)
    with connect(kuma.login) as session:
        if not session.version.keeps_every_beat:
            assert_what_2x_keeps_past_a_day(session, monitor_id, t0, end, [t_down, t_maintenance, t_up])
            assert_read_as_if_two_days_later(session, done["monitors"]["hist job backup"], t0, end)


def assert_what_2x_keeps_past_a_day(
    session: KumaSession, monitor_id: int, t0: datetime, end: datetime, made: list[datetime]
) -> None:
    """What the reader relies on beyond 24 h on 2.x: each change kept as an important beat at its time,
    and the hourly counts holding every beat."""
    changes = [b for b in parse_beats(session.important_beats(monitor_id, 0, 100)) if t0 <= b.at < end]
    assert [b.state for b in changes] == [State.DOWN, State.MAINTENANCE, State.UP, State.DOWN], changes
    for change, at in zip(changes, made, strict=False):
        assert at - timedelta(seconds=1) <= change.at <= at + WITHIN, (change, at)
    beats = [b for b in parse_beats(session.beats(monitor_id, 1)) if b.at >= floor_to(t0, 3600)]
    hours = parse_buckets(session.chart_data(monitor_id, 720))
    counted = sum(b.beats for at, b in hours.items() if at >= floor_to(t0, 3600))
    assert counted >= len(beats) > 0, (counted, len(beats))


def assert_read_as_if_two_days_later(
    session: KumaSession, monitor: dict[str, Any], t0: datetime, end: datetime
) -> None:
    """The same stretch read as the reader reads it once the beats are gone: from the status changes and
    the hourly counts, at an hour's resolution; the hour before the monitor existed is not monitored (its
    first status change says when it began), never up."""
    hour = floor_to(t0, 3600)
    later = read_monitor(session, monitor, "k", hour - timedelta(hours=1), end, now=now() + timedelta(days=2))
    assert later.resolution_seconds == 3600 and "stat_hourly" in later.source, later.source
    assert state_at(later, hour - timedelta(minutes=30)) is State.NOT_MONITORED


def restart_kuma(kuma: Kuma, away: float) -> tuple[datetime, datetime]:
    """Stop the Kuma process, wait `away` seconds, start it again: (stopped, answering again)."""
    kuma_server.stop(kuma.state_dir)
    stopped = now()
    time.sleep(away)
    kuma_server.start(
        kuma.state_dir,
        port=kuma.server.port,
        bridge_host=BRIDGE_STAND_IN,
        package=installed(kuma.version),
    )
    return stopped, now()


def test_kuma_stopped_for_a_minute_is_no_data_for_that_stretch(kuma: Kuma) -> None:
    client = "histstop"
    key = "hist page /"
    with local_site({"/": "history"}) as site:
        done = synced(kuma, only(client, page_monitor(key, site.address + "/")))
        monitor = done["monitors"][key]
        t0 = now()
        time.sleep(2 * INTERVAL + 5)
        stopped, back = restart_kuma(kuma, away=60)
        time.sleep(2 * INTERVAL + 5)
        end = now()
        with connect(kuma.login) as session:
            timeline = read_monitor(session, monitor, key, t0, end)
    gaps = [i for i in timeline.intervals if i.state is State.NO_DATA]
    assert len(gaps) == 1, timeline.intervals
    gap = gaps[0]
    # The gap opens once the beat after the last one before the stop was due, and closes at the
    # first beat after Kuma answers again (Kuma checks its monitors as it starts).
    assert stopped - timedelta(seconds=INTERVAL) <= gap.start <= stopped + WITHIN + timedelta(seconds=5), gap
    assert back - timedelta(seconds=1) <= gap.end <= back + WITHIN, (gap, back)
    assert state_at(timeline, t0 + timedelta(seconds=INTERVAL)) is State.UP
    assert state_at(timeline, end - timedelta(seconds=1)) is State.UP
    assert timeline.time_in(State.DOWN) == timedelta(0)


def test_a_new_monitor_read_from_before_it_existed_starts_not_monitored(kuma: Kuma) -> None:
    client = "histnew"
    key = "new page /"
    with local_site({"/": "new"}) as site:
        before = now()
        time.sleep(5)
        created = now()
        done = synced(kuma, only(client, page_monitor(key, site.address + "/")))
        time.sleep(2 * INTERVAL + 5)
        end = now()
        with connect(kuma.login) as session:
            timeline = read_monitor(session, done["monitors"][key], key, before, end)
    opening, *rest = timeline.intervals
    assert opening.state is State.NOT_MONITORED and opening.start == before, timeline.intervals
    # Monitoring began at the first beat, which Kuma makes as the monitor is added.
    assert created <= opening.end <= created + WITHIN + timedelta(seconds=10), (opening, created)
    assert rest and rest[0].state is State.UP, timeline.intervals
    assert state_at(timeline, end - timedelta(seconds=1)) is State.UP
    assert timeline.time_in(State.NO_DATA) == timedelta(0), timeline.intervals
    assert timeline.time_in(State.DOWN) == timedelta(0), timeline.intervals


def test_the_sync_keeps_history_long_enough_for_the_report_and_never_shortens_it(kuma: Kuma) -> None:
    desired = only("histkeep", push_monitor("keep job backup"))
    with connect(kuma.login) as session:
        before = session.settings()
        session.save_settings({**before, RETENTION: 7})  # an agency that kept one week
    try:
        with connect(kuma.login) as session:
            lines: list[str] = []
            sync(session, desired, report=lines.append)
        assert any(line.startswith(f"~ setting {RETENTION}: 7 → {HISTORY_DAYS} days") for line in lines), lines
        with connect(kuma.login) as session:
            assert int(session.settings()[RETENTION]) == HISTORY_DAYS
            assert sync(session, desired, report=None).writes == 0
        for longer in (HISTORY_DAYS + 300, 0):  # a longer history, or none ever deleted: the agency's choice
            with connect(kuma.login) as session:
                session.save_settings({**session.settings(), RETENTION: longer})
            with connect(kuma.login) as session:
                assert sync(session, desired, report=None).writes == 0
                assert int(session.settings()[RETENTION]) == longer
    finally:
        with connect(kuma.login) as session:
            session.save_settings({**session.settings(), RETENTION: before.get(RETENTION)})
