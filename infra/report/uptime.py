"""A site's uptime over a period, against the plan's target, from its page monitors' timelines.

Rules (docs/report.md says them to the reader):
- The site's uptime is its home check's (the site's first checked page): whole-site downtime. Another
  page down while the home page answers is partial downtime, reported apart and not charged.
- Minutes inside the plan's maintenance windows, or that Kuma marked as maintenance, are excluded
  from the period (listed with what happened in them). Everything else counts.
- Down and pending (a failed check Kuma is retrying) are downtime; no data (monitoring itself was
  down) is never up: it is shown apart and uses the downtime budget like downtime does.
- Minutes before the site's first monitoring (its home monitor did not exist yet) are not yet
  monitored: shown apart, never downtime, never no data, and outside the accounted period.
- uptime % = up / (period - excluded - not monitored); budget = (100 - target) % of the same
  monitored minutes (a site onboarded mid-month gets a prorated budget), so the target is met
  exactly when the budget is not overrun.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from infra.plan import CarePlan, SitePlan
from infra.report.period import Period
from infra.report.windows import Span, clip, cut, inside, maintenance_windows
from infra.timeline import Interval, MonitorTimeline, State

DOWNTIME = (State.DOWN, State.PENDING)


def page_key(site: SitePlan, path: str) -> str:
    """The desired monitor's key of one checked page (infra/monitors/desired.py names them so)."""
    return f"{site.id} page {path}"


@dataclass(frozen=True)
class Minutes:
    up: float = 0.0
    down: float = 0.0
    no_data: float = 0.0
    excluded: float = 0.0  # maintenance
    not_monitored: float = 0.0  # before the home monitor existed

    @property
    def counted(self) -> float:
        return self.up + self.down + self.no_data

    def percent(self) -> float | None:
        return None if self.counted <= 0 else round(100 * self.up / self.counted, 4)


@dataclass(frozen=True)
class WindowUse:
    """One maintenance window: how long it was, and what the home check saw in it (excluded)."""

    start: datetime
    end: datetime
    minutes: float
    down_minutes: float


@dataclass(frozen=True)
class DayUptime:
    day: str  # local YYYY-MM-DD
    minutes: Minutes


@dataclass(frozen=True)
class SiteUptime:
    site: str
    home: str  # the home check's path
    minutes: Minutes
    partial_down_minutes: float
    uptime_percent: float | None
    target_percent: float
    budget_minutes: float
    budget_used_minutes: float
    met: bool | None  # None: nothing was measured
    not_monitored: tuple[datetime, datetime] | None  # the stretch before the first monitoring, if any
    windows: tuple[WindowUse, ...]
    days: tuple[DayUptime, ...]
    source: str
    resolution_seconds: int


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60


def account(intervals: list[Interval], windows: list[Span]) -> Minutes:
    """Minutes per kind over intervals already cut at the windows' edges."""
    up = down = no_data = excluded = not_monitored = 0.0
    for i in intervals:
        length = _minutes(i.start, i.end)
        if i.state is State.NOT_MONITORED:
            not_monitored += length
        elif i.state is State.MAINTENANCE or inside(i.start, windows):
            excluded += length
        elif i.state is State.NO_DATA:
            no_data += length
        elif i.state in DOWNTIME:
            down += length
        else:
            up += length
    return Minutes(up, down, no_data, excluded, not_monitored)


def _not_monitored(home: list[Interval]) -> tuple[datetime, datetime] | None:
    """The leading stretch before the home monitor existed (the reader puts it only at the start)."""
    spans = [i for i in home if i.state is State.NOT_MONITORED]
    return (spans[0].start, spans[-1].end) if spans else None


def _partial(home: list[Interval], others: list[MonitorTimeline], windows: list[Span], period: Period) -> float:
    """Minutes in which another page was down while the home page was up (outside maintenance)."""
    edges = {i.start for t in others for i in t.intervals} | {i.end for t in others for i in t.intervals}
    total = 0.0
    for piece in cut(home, [*edges, *(w for s in windows for w in s)]):
        if piece.state is not State.UP or inside(piece.start, windows):
            continue
        for other in others:
            state = next((i.state for i in other.intervals if i.start <= piece.start < i.end), None)
            if state in DOWNTIME:
                total += _minutes(piece.start, piece.end)
                break
    return total


def site_uptime(plan: CarePlan, site: SitePlan, timelines: Mapping[str, MonitorTimeline], period: Period) -> SiteUptime:
    target = plan.sla.uptime_target_percent
    home_path = site.checks[0].path
    home_timeline = timelines[page_key(site, home_path)]
    windows = maintenance_windows(plan.monitoring.maintenance, plan.client.timezone, period.start, period.end)
    day_edges = [edge for day in period.days() for edge in period.day_bounds(day)]
    edges = [*day_edges, *(w for s in windows for w in s)]
    home = cut(clip(home_timeline.intervals, period.start, period.end), edges)
    minutes = account(home, windows)
    others = [
        MonitorTimeline(t.monitor, period.start, period.end, clip(t.intervals, period.start, period.end))
        for c in site.checks[1:]
        if (t := timelines.get(page_key(site, c.path))) is not None
    ]
    days = []
    for day in period.days():
        a, b = period.day_bounds(day)
        days.append(DayUptime(day.isoformat(), account([i for i in home if a <= i.start < b], windows)))
    uses = []
    for a, b in windows:
        inside_window = [i for i in home if a <= i.start < b]
        down = sum(_minutes(i.start, i.end) for i in inside_window if i.state in DOWNTIME)
        uses.append(WindowUse(a, b, round(_minutes(a, b), 2), round(down, 2)))
    percent = minutes.percent()
    budget = (100 - target) / 100 * minutes.counted
    return SiteUptime(
        site=site.id,
        home=home_path,
        minutes=minutes,
        partial_down_minutes=round(_partial(home, others, windows, period), 2),
        uptime_percent=percent,
        target_percent=target,
        budget_minutes=round(budget, 2),
        budget_used_minutes=round(minutes.down + minutes.no_data, 2),
        not_monitored=_not_monitored(home),
        met=None if percent is None else minutes.down + minutes.no_data <= budget + 1e-9,
        windows=tuple(uses),
        days=tuple(days),
        source=home_timeline.source,
        resolution_seconds=home_timeline.resolution_seconds,
    )
