"""A site's incidents: stretches in which one or more of its pages failed, merged across pages.

An incident is a run of failed checks (pending then down) on a page that Kuma confirmed down at least
once; pending-only blips count as downtime (infra/report/uptime.py) but are no incident. Runs of
several pages that overlap or touch are one incident. The alert time is when Kuma confirmed the first
page down: Kuma notifies on that transition (the report has no record of the delivery itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from infra.plan import SitePlan
from infra.report.period import Period
from infra.report.uptime import DOWNTIME, page_key
from infra.report.windows import Span, clip, overlap_minutes
from infra.timeline import Interval, MonitorTimeline, State


@dataclass(frozen=True)
class Incident:
    site: str
    start: datetime
    end: datetime
    ongoing: bool  # still down when the period ended
    checks: tuple[str, ...]  # paths of the pages that failed
    whole_site: bool  # the home page was among them
    alerted: datetime | None
    messages: tuple[str, ...]  # Kuma's messages (e.g. "connect ECONNREFUSED")
    maintenance_minutes: float  # of its duration, inside maintenance (excluded from uptime)

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60


@dataclass(frozen=True)
class _Run:
    path: str
    start: datetime
    end: datetime
    alerted: datetime | None
    messages: tuple[str, ...]


def _runs(path: str, intervals: list[Interval]) -> list[_Run]:
    runs: list[_Run] = []
    current: list[Interval] = []
    for interval in [*intervals, None]:
        if interval is not None and interval.state in DOWNTIME:
            current.append(interval)
            continue
        downs = [i for i in current if i.state is State.DOWN]
        if downs:
            notes = tuple(dict.fromkeys(i.note for i in current if i.note))
            runs.append(_Run(path, current[0].start, current[-1].end, downs[0].start, notes))
        current = []
    return runs


def site_incidents(
    site: SitePlan, timelines: Mapping[str, MonitorTimeline], period: Period, windows: list[Span]
) -> list[Incident]:
    runs: list[_Run] = []
    for check in site.checks:
        timeline = timelines.get(page_key(site, check.path))
        if timeline is not None:
            runs += _runs(check.path, clip(timeline.intervals, period.start, period.end))
    runs.sort(key=lambda r: r.start)
    groups: list[list[_Run]] = []
    for run in runs:
        if groups and run.start <= max(r.end for r in groups[-1]):
            groups[-1].append(run)
        else:
            groups.append([run])
    home = site.checks[0].path
    incidents = []
    for group in groups:
        start, end = group[0].start, max(r.end for r in group)
        alerts = [r.alerted for r in group if r.alerted is not None]
        incidents.append(
            Incident(
                site=site.id,
                start=start,
                end=end,
                ongoing=end >= period.end,
                checks=tuple(dict.fromkeys(r.path for r in group)),
                whole_site=any(r.path == home for r in group),
                alerted=min(alerts) if alerts else None,
                messages=tuple(dict.fromkeys(m for r in group for m in r.messages)),
                maintenance_minutes=round(overlap_minutes((start, end), windows), 2),
            )
        )
    return incidents
