"""The plan's maintenance windows as real instants, and cutting timelines at any instants.

The update window recurs weekly at a wall-clock time in the client's zone, so its UTC start moves with
daylight saving time; a window that starts before the period (late on the day before) still counts for
the part inside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from infra.plan import UpdateWindowPlan
from infra.timeline import Interval
from infra.units import WEEKDAYS, parse_time_of_day

Span = tuple[datetime, datetime]


def maintenance_windows(window: UpdateWindowPlan, timezone: str, start: datetime, end: datetime) -> list[Span]:
    """The plan's windows that overlap [start, end), clipped to it, in time order."""
    zone = ZoneInfo(timezone)
    hour, minute = parse_time_of_day(window.start)
    day = start.astimezone(zone).date() - timedelta(days=(window.duration_minutes // 1440) + 1)
    last = end.astimezone(zone).date()
    spans: list[Span] = []
    while day <= last:
        if WEEKDAYS[day.weekday()] == window.weekday:
            opens = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
            closes = opens + timedelta(minutes=window.duration_minutes)
            a, b = max(opens, start), min(closes, end)
            if a < b:
                spans.append((a, b))
        day += timedelta(days=1)
    return spans


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    out = []
    for i in intervals:
        a, b = max(i.start, start), min(i.end, end)
        if a < b:
            out.append(Interval(a, b, i.state, i.note))
    return out


def cut(intervals: Iterable[Interval], instants: Iterable[datetime]) -> list[Interval]:
    """The intervals split at every instant that falls strictly inside one."""
    points = sorted(set(instants))
    out = []
    for i in intervals:
        a = i.start
        for p in points:
            if a < p < i.end:
                out.append(Interval(a, p, i.state, i.note))
                a = p
        out.append(Interval(a, i.end, i.state, i.note))
    return out


def inside(moment: datetime, spans: Iterable[Span]) -> bool:
    return any(a <= moment < b for a, b in spans)


def overlap_minutes(a: Span, spans: Iterable[Span]) -> float:
    return sum(max(0.0, (min(a[1], b) - max(a[0], s)).total_seconds()) for s, b in spans) / 60
