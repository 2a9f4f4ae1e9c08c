"""A site's backups over a period, from its restic repository's snapshot list (`restic snapshots --json`).

Only complete snapshots count (the agent tags a snapshot `complete` once every part of it succeeded;
`incomplete` ones and untagged ones from before the tags existed are counted apart, never as backups).
Called for: the schedule's runs that fell in the period. Achieved RPO: the longest time without a
complete snapshot, from the last one before the period (or the period's start) to the period's end;
the plan's RPO is met when that gap is at most one backup period plus the timer's random delay.
Retention held: the oldest complete snapshot reaches back as far as the keep rules promise.
A site taken into care during the period (its monitoring began then, as the uptime section shows) is
counted from that moment: no run was due before it, and retention can reach back only that far.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from infra.plan import CarePlan
from infra.report.period import Period

# The agent's tags (agent/carestack_agent/restic_commands.py); the controller never imports the agent,
# a contract test ties the two.
COMPLETE = "complete"
INCOMPLETE = "incomplete"


class SnapshotError(ValueError):
    """A snapshot list restic would not print: names the snapshot and the field."""


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime  # aware UTC
    complete: bool
    incomplete: bool


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


@dataclass(frozen=True)
class SiteBackups:
    site: str
    called_for: int
    complete: int  # complete snapshots made in the period
    incomplete: int
    untagged: int
    times: tuple[datetime, ...]  # of the complete snapshots in the period
    worst_gap: Gap
    rpo_minutes: int
    rpo_met: bool
    gaps_over_rpo: tuple[Gap, ...]
    oldest: datetime | None
    oldest_age_days: float | None
    retention_days: int
    retention_held: bool
    counted_from: datetime | None = None  # the care began in the period: nothing before it was due


def parse_snapshots(raw: Any, where: str) -> list[Snapshot]:
    if not isinstance(raw, list):
        raise SnapshotError(f"{where}: expected restic's JSON list of snapshots, got {type(raw).__name__}")
    out = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("time"), str):
            raise SnapshotError(f"{where}: snapshot {n} has no 'time'")
        try:
            moment = datetime.fromisoformat(item["time"].replace("Z", "+00:00"))
        except ValueError as e:
            raise SnapshotError(f"{where}: snapshot {n}: 'time' {item['time']!r} is not ISO 8601 ({e})") from e
        if moment.tzinfo is None:
            raise SnapshotError(f"{where}: snapshot {n}: 'time' {item['time']!r} has no zone")
        tags = [str(t) for t in item.get("tags") or []]
        out.append(
            Snapshot(
                str(item.get("short_id") or str(item.get("id", ""))[:8]),
                moment.astimezone(UTC),
                COMPLETE in tags and INCOMPLETE not in tags,
                INCOMPLETE in tags,
            )
        )
    return sorted(out, key=lambda s: s.time)


def scheduled_runs(on_calendar: str, period: Period) -> int:
    """How many runs the backup timer's calendar (`*-*-* HH:MM:SS` daily or `*-*-* *:MM:SS` hourly) had."""
    clock = on_calendar.split()[1]
    hour, minute = clock.split(":")[:2]
    zone = ZoneInfo(period.timezone)
    runs: set[datetime] = set()
    for day in period.days():
        for h in range(24) if hour == "*" else [int(hour)]:
            wall = datetime.combine(day, time(h, int(minute)), tzinfo=zone)
            if wall.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
                continue  # a wall time the spring change skips: the timer has no such run
            moment = wall.astimezone(UTC)  # a repeated autumn hour runs once (systemd fires once)
            if period.start <= moment < period.end:
                runs.add(moment)
    return len(runs)


def site_backups(
    plan: CarePlan, site: str, snapshots: list[Snapshot], period: Period, care_from: datetime | None = None
) -> SiteBackups:
    backup = plan.backup
    counted = period if care_from is None or care_from <= period.start else replace(period, start=care_from)
    complete = [s.time for s in snapshots if s.complete and s.time < period.end]
    in_period = tuple(t for t in complete if t >= period.start)
    before = [t for t in complete if t < period.start]
    points = [before[-1] if before else counted.start, *(t for t in in_period if t > counted.start), period.end]
    gaps = [Gap(a, b) for a, b in itertools.pairwise(points)]
    worst = max(gaps, key=lambda g: g.minutes)
    allowed = backup.rpo_minutes + backup.schedule.randomized_delay_seconds / 60
    oldest = complete[0] if complete else None
    age = None if oldest is None else round((period.end - oldest).total_seconds() / 86400, 2)
    made = [s for s in snapshots if period.start <= s.time < period.end]
    if counted is period:
        held = age is not None and age >= plan.storage.retention_days
    else:  # the keep rules can reach back only to the care's start: held if the first backup followed it in time
        held = oldest is not None and (oldest - counted.start).total_seconds() / 60 <= allowed
    return SiteBackups(
        site=site,
        called_for=scheduled_runs(backup.schedule.on_calendar, counted),
        complete=len(in_period),
        incomplete=sum(s.incomplete for s in made),
        untagged=sum(not s.complete and not s.incomplete for s in made),
        times=in_period,
        worst_gap=worst,
        rpo_minutes=backup.rpo_minutes,
        rpo_met=worst.minutes <= allowed,
        gaps_over_rpo=tuple(g for g in gaps if g.minutes > allowed),
        oldest=oldest,
        oldest_age_days=age,
        retention_days=plan.storage.retention_days,
        retention_held=held,
        counted_from=None if counted is period else counted.start,
    )
