"""A monitor's history as carestack accounts with it: contiguous intervals, each in one state.

This is the hand-off between the monitoring history reader (which knows each Kuma version's tables)
and everything that accounts with the history (the SLA report, the perf chart). Intervals are
half-open `[start, end)`, timezone-aware UTC, sorted, gap-free and cover the asked range exactly;
a stretch where no beats exist where beats were due is `NO_DATA`, never `UP`. The stretch before
the monitor existed at all (its first-ever beat) is `NOT_MONITORED`: nobody was watching yet, so it
is neither an outage nor a gap in monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class State(StrEnum):
    UP = "up"
    DOWN = "down"
    MAINTENANCE = "maintenance"
    PENDING = "pending"
    NO_DATA = "no_data"
    NOT_MONITORED = "not_monitored"  # before the monitor existed (only ever at the timeline's start)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    state: State
    note: str = ""  # e.g. Kuma's message for a down beat ("connect ECONNREFUSED"), the maintenance title

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class ResponseSample:
    at: datetime
    ms: float


@dataclass
class MonitorTimeline:
    """One monitor over `[start, end)`: `monitor` is the desired monitor's name (its ownership tag)."""

    monitor: str
    start: datetime
    end: datetime
    intervals: list[Interval]
    response_times: list[ResponseSample] = field(default_factory=list)
    # How fine the history is where it came from, in seconds (one check interval for raw beats, 60 for
    # 2.x's minutely table, 3600 for hourly...): the report says how exact its numbers can be.
    resolution_seconds: int = 0
    source: str = ""  # e.g. "Uptime Kuma 1.23.16 heartbeats", "Uptime Kuma 2.5.3 stat_hourly"

    def __post_init__(self) -> None:
        problems = timeline_problems(self)
        if problems:
            raise ValueError(f"timeline of {self.monitor!r} is not well-formed: " + "; ".join(problems))

    def time_in(self, state: State) -> timedelta:
        return sum((i.duration for i in self.intervals if i.state is state), timedelta())


def _aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def timeline_problems(timeline: MonitorTimeline) -> list[str]:
    """What breaks the contract (empty when well-formed): aware times, sorted, contiguous, covering the range."""
    problems: list[str] = []
    if not (_aware(timeline.start) and _aware(timeline.end)):
        problems.append("start and end must be timezone-aware")
        return problems
    if timeline.end <= timeline.start:
        problems.append(f"end {timeline.end.isoformat()} is not after start {timeline.start.isoformat()}")
        return problems
    cursor = timeline.start
    for n, interval in enumerate(timeline.intervals):
        if not (_aware(interval.start) and _aware(interval.end)):
            problems.append(f"interval {n} has a naive time")
            break
        if interval.start != cursor:
            problems.append(f"interval {n} starts at {interval.start.isoformat()}, expected {cursor.isoformat()}")
            break
        if interval.end <= interval.start:
            problems.append(f"interval {n} is empty or reversed")
            break
        cursor = interval.end
    else:
        if cursor != timeline.end:
            problems.append(f"intervals end at {cursor.isoformat()}, expected {timeline.end.isoformat()}")
    return problems


def merged(intervals: list[Interval]) -> list[Interval]:
    """Adjacent intervals in the same state (and with the same note) joined into one."""
    out: list[Interval] = []
    for interval in intervals:
        last = out[-1] if out else None
        if last and last.state is interval.state and last.note == interval.note and last.end == interval.start:
            out[-1] = Interval(last.start, interval.end, last.state, last.note)
        else:
            out.append(interval)
    return out
