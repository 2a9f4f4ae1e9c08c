"""A client's monitoring history read from Uptime Kuma: one timeline per monitor over any time range.

Read over Kuma's socket API as an operator has it (production Kuma may run on
another host: no database file is read). What each version offers:

- 1.23 and the 2.0.0-dev.0 snapshot keep every heartbeat for the retention
  setting (`keepDataPeriodDays`); `getMonitorBeats(id, hours)` sends all of the
  last `hours`. The timeline is exact to one check interval.
- 2.x stable keeps ordinary heartbeats for 24 h (`Database.clearHeartbeatData`),
  status changes ("important" beats) for the retention setting, per-hour counts
  for 30 days and per-day counts for the retention setting (`UptimeCalculator`).
  The last day is read from the beats as on 1.23; older stretches from the status
  changes (exact times) and the counts (how much had beats), at one hour's or
  one day's resolution and marked so (`infra.monitors.buckets` says how).

How long each version keeps what: `infra.monitors.retention`.

Kuma's monitor list carries no creation time on any supported version, so a
monitor's first monitoring is its first-ever beat (always kept: every beat on
1.23/dev, status changes on 2.x, and Kuma marks a first beat important). It
counts only when younger than the retention the sync enforces (`HISTORY_DAYS`):
an older first beat may be what retention left, and then nothing is marked.
The stretch before it is `NOT_MONITORED`; a gap after it stays no data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.kuma_client import KumaSession
from infra.monitors.beats import Beat, Cadence, beat_intervals, cadence_of, parse_beats, response_samples
from infra.monitors.buckets import Bucket, bucket_intervals, bucket_samples, ceil_to, floor_to, parse_buckets
from infra.monitors.ownership import KEY_TAG, is_owned, tag_value
from infra.monitors.retention import HISTORY_DAYS
from infra.plan import CarePlan
from infra.timeline import Interval, MonitorTimeline, ResponseSample, State, merged

HOUR = 3600
DAY = 86400
# 2.x stable: ordinary beats younger than this are never deleted; hourly counts are kept 720 hours.
RAW_BEATS_KEPT = timedelta(hours=24)
HOURLY_KEPT_HOURS = 720
_IMPORTANT_PAGE = 100
_READERS = 4


class HistoryRangeError(ValueError):
    """The asked time range cannot be read (the message says which bound and why)."""


def _check_range(start: datetime, end: datetime) -> None:
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise HistoryRangeError(f"{name} {value.isoformat()} has no time zone; give an aware time (UTC)")
    if end <= start:
        raise HistoryRangeError(f"end {end.isoformat()} is not after start {start.isoformat()}")


def _hours_back(start: datetime, now: datetime) -> int:
    """Hours of beats to ask for so that the beat in force at `start` is among them (one interval before)."""
    return max(1, math.ceil((now - start).total_seconds() / HOUR) + 1)


def _read_every_beat(
    session: KumaSession, monitor: Mapping[str, Any], key: str, start: datetime, end: datetime, now: datetime
) -> MonitorTimeline:
    beats = parse_beats(session.beats(int(monitor["id"]), _hours_back(start, now)))
    return _from_beats(session, beats, cadence_of(monitor), key, start, end)


def _from_beats(
    session: KumaSession, beats: list[Beat], cadence: Cadence, key: str, start: datetime, end: datetime
) -> MonitorTimeline:
    return MonitorTimeline(
        monitor=key,
        start=start,
        end=end,
        intervals=merged(beat_intervals(beats, cadence, start, end)),
        response_times=response_samples(beats, start, end),
        resolution_seconds=cadence.interval,
        source=f"Uptime Kuma {session.version} heartbeats",
    )


def _changes_since(session: KumaSession, monitor_id: int, start: datetime, known: list[Beat]) -> list[Beat]:
    """Every status change from the last one at or before `start` on, oldest first."""
    if any(b.at <= start for b in known):
        return known
    found: list[Beat] = []
    offset = 0
    while True:
        page = parse_beats(session.important_beats(monitor_id, offset, _IMPORTANT_PAGE))
        found += page
        if not page or page[0].at <= start or len(page) < _IMPORTANT_PAGE:
            break
        offset += _IMPORTANT_PAGE
    by_time = {b.at: b for b in found + known}
    return [by_time[at] for at in sorted(by_time)]


def _read_aggregated(
    session: KumaSession, monitor: Mapping[str, Any], key: str, start: datetime, end: datetime, now: datetime
) -> MonitorTimeline:
    cadence = cadence_of(monitor)
    monitor_id = int(monitor["id"])
    beats = parse_beats(session.beats(monitor_id, _hours_back(start, now)))
    ordinary = [b for b in beats if not b.important]
    # Every beat is still there after the oldest ordinary one, and always for the last 24 h: from the next
    # full hour on, the beats are read as on 1.23; before it, the status changes and the counts.
    raw_from = min(now - RAW_BEATS_KEPT, ordinary[0].at if ordinary else now)
    raw_from = ceil_to(raw_from, HOUR)
    if start >= raw_from:
        return _from_beats(session, beats, cadence, key, start, end)
    changes = _changes_since(session, monitor_id, start, [b for b in beats if b.important])
    hourly_from = ceil_to(floor_to(now, HOUR) - timedelta(hours=HOURLY_KEPT_HOURS - 1), DAY)
    intervals: list[Interval] = []
    samples: list[ResponseSample] = []
    resolution = HOUR
    older_end = min(raw_from, end)
    if start < hourly_from:
        resolution = DAY
        daily = parse_buckets(session.chart_data(monitor_id, 365 * 24))
        intervals += _buckets_over(daily, DAY, changes, cadence, start, min(hourly_from, older_end))
        samples += bucket_samples(daily, start, min(hourly_from, older_end))
    if older_end > hourly_from:
        hourly = parse_buckets(session.chart_data(monitor_id, HOURLY_KEPT_HOURS))
        h_start = max(start, hourly_from)
        intervals += _buckets_over(hourly, HOUR, changes, cadence, h_start, older_end)
        samples += bucket_samples(hourly, h_start, older_end)
    if end > raw_from:
        intervals += beat_intervals(beats, cadence, raw_from, end)
        samples += response_samples(beats, raw_from, end)
    tables = "stat_daily" if resolution == DAY else "stat_hourly"
    return MonitorTimeline(
        monitor=key,
        start=start,
        end=end,
        intervals=merged(intervals),
        response_times=samples,
        resolution_seconds=resolution,
        source=(
            f"Uptime Kuma {session.version} status changes and {tables} counts before "
            f"{raw_from.isoformat()} (estimated), heartbeats after"
        ),
    )


def _buckets_over(
    buckets: Mapping[datetime, Bucket], seconds: int, changes: list[Beat], cadence: Cadence, a: datetime, b: datetime
) -> list[Interval]:
    return bucket_intervals(buckets, seconds, changes, cadence, a, b) if b > a else []


def first_beat(session: KumaSession, monitor_id: int, now: datetime) -> datetime | None:
    """When the monitor first beat, if that is provably its first ever (younger than the kept history)."""
    kept_from = now - timedelta(days=HISTORY_DAYS)
    if session.version.keeps_every_beat:
        beats = parse_beats(session.beats(monitor_id, HISTORY_DAYS * 24))
    else:
        beats = []
        offset = 0
        while True:
            page = parse_beats(session.important_beats(monitor_id, offset, _IMPORTANT_PAGE))
            beats += page
            if len(page) < _IMPORTANT_PAGE:
                break
            offset += _IMPORTANT_PAGE
    first = min((b.at for b in beats), default=None)
    return first if first is not None and first > kept_from else None


def not_monitored_before(timeline: MonitorTimeline, began: datetime) -> MonitorTimeline:
    """The timeline with its stretch before `began` (the monitor's first beat) marked not monitored."""
    if began <= timeline.start:
        return timeline
    cut_at = min(began, timeline.end)
    rest = [Interval(max(i.start, cut_at), i.end, i.state, i.note) for i in timeline.intervals if i.end > cut_at]
    return MonitorTimeline(
        monitor=timeline.monitor,
        start=timeline.start,
        end=timeline.end,
        intervals=[Interval(timeline.start, cut_at, State.NOT_MONITORED), *rest],
        response_times=timeline.response_times,
        resolution_seconds=timeline.resolution_seconds,
        source=timeline.source,
    )


def _with_first_monitoring(
    session: KumaSession, timeline: MonitorTimeline, monitor_id: int, now: datetime
) -> MonitorTimeline:
    # Only a timeline that does not open on a beat can start before the monitor existed.
    opening = timeline.intervals[0]
    if opening.state is not State.NO_DATA:
        return timeline
    began = first_beat(session, monitor_id, now)
    if began is None or (began > opening.end and opening.end < timeline.end):
        # The first beat is not where the opening gap ends: the gap is after the monitor existed.
        return timeline
    return not_monitored_before(timeline, began)


def read_monitor(
    session: KumaSession,
    monitor: Mapping[str, Any],
    key: str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
) -> MonitorTimeline:
    """One Kuma monitor's timeline over `[start, end)` (its record as `session.monitors()` lists it)."""
    _check_range(start, end)
    now = now or datetime.now(UTC)
    if session.version.keeps_every_beat:
        timeline = _read_every_beat(session, monitor, key, start, end, now)
    else:
        timeline = _read_aggregated(session, monitor, key, start, end, now)
    return _with_first_monitoring(session, timeline, int(monitor["id"]), now)


def read_timelines(session: KumaSession, plan: CarePlan, start: datetime, end: datetime) -> dict[str, MonitorTimeline]:
    """The timeline over `[start, end)` of each of the client's monitors in Kuma, by its key
    (the `carestack-key` tag, e.g. "studio-web page /projects/").

    Only monitors that exist in Kuma have a timeline: a desired monitor that was never
    synced has no history to read. A range reaching into the future ends in no data.
    """
    _check_range(start, end)
    now = datetime.now(UTC)
    owned = {}
    for monitor in session.monitors():
        key = tag_value(monitor, KEY_TAG) if is_owned(monitor, plan.client.id) else None
        if key:
            owned[key] = monitor
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        futures = {key: pool.submit(read_monitor, session, m, key, start, end, now) for key, m in owned.items()}
        return {key: future.result() for key, future in sorted(futures.items())}
