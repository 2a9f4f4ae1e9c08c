"""The weekly verdict: is a page getting slower, not only is it slow.

For each checked page, the median total time of its good samples of the last
7 days is compared with the median of the `baseline_weeks` weeks before. A
regression needs both: at least `limit_percent` slower AND at least `floor_ms`
slower (a 20 ms page taking 30 ms is +50 % of noise; a 4 s page taking 4.1 s
is 100 ms of noise). Until the history reaches back through every baseline
week the verdict says the baseline is still building and raises nothing.
Medians, not means: one request that met a cold cache or a busy moment moves
a mean, not a median.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .history import Sample

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class PageTrend:
    path: str
    week_ms: float | None  # None: no good sample in the last week
    baseline_ms: float | None  # None: no good sample in the baseline weeks
    week_samples: int
    baseline_samples: int
    regressed: bool

    @property
    def change_ms(self) -> float | None:
        if self.week_ms is None or self.baseline_ms is None:
            return None
        return self.week_ms - self.baseline_ms

    @property
    def change_percent(self) -> float | None:
        change = self.change_ms
        if change is None or not self.baseline_ms:
            return None
        return 100 * change / self.baseline_ms

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "week_ms": _round(self.week_ms),
            "baseline_ms": _round(self.baseline_ms),
            "week_samples": self.week_samples,
            "baseline_samples": self.baseline_samples,
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class Verdict:
    pages: tuple[PageTrend, ...]
    weeks_of_baseline: int  # baseline weeks the history reaches into (0..baseline_weeks)
    baseline_weeks: int

    @property
    def building(self) -> bool:
        return self.weeks_of_baseline < self.baseline_weeks

    @property
    def regressions(self) -> list[PageTrend]:
        return [p for p in self.pages if p.regressed]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def weeks_reached(samples: Sequence[Sample], now: datetime, baseline_weeks: int) -> int:
    """How many of the baseline weeks before the last 7 days hold at least one good sample."""
    week_start = now - WEEK
    reached = set()
    for s in samples:
        if s.ok and s.at < week_start:
            index = int((week_start - s.at) / WEEK)  # 0: the week just before the last 7 days
            if index < baseline_weeks:
                reached.add(index)
    return len(reached)


def judge(
    samples: Sequence[Sample],
    paths: Sequence[str],
    now: datetime,
    *,
    limit_percent: float,
    floor_ms: float,
    baseline_weeks: int,
) -> Verdict:
    """The verdict over `samples` for the checked `paths`, as of `now` (aware)."""
    week_start = now - WEEK
    baseline_start = week_start - baseline_weeks * WEEK
    weeks = weeks_reached(samples, now, baseline_weeks)
    timed = [(s.path, s.at, s.total_ms) for s in samples if s.error is None and s.total_ms is not None]
    trends = []
    for path in paths:
        week = [ms for p, at, ms in timed if p == path and week_start <= at <= now]
        base = [ms for p, at, ms in timed if p == path and baseline_start <= at < week_start]
        week_ms = statistics.median(week) if week else None
        base_ms = statistics.median(base) if base else None
        regressed = (
            weeks >= baseline_weeks
            and week_ms is not None
            and base_ms is not None
            and week_ms - base_ms >= floor_ms
            and week_ms - base_ms >= base_ms * limit_percent / 100
        )
        trends.append(PageTrend(path, week_ms, base_ms, len(week), len(base), regressed))
    return Verdict(tuple(trends), weeks, baseline_weeks)
