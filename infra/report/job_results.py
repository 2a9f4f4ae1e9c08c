"""What the agent's evidence records say about a period: integrity checks, updates, drills, scans, perf.

Pure functions over parsed records (infra/evidence_record.py). A job's figures are read where the agent
writes them (docs/report.md lists the keys); a record without them still counts by its result and
message. Records are taken by when they ended.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.evidence_record import EvidenceRecord
from infra.report.period import Period


@dataclass(frozen=True)
class Change:
    component: str
    before: str
    after: str
    broke: str = ""


@dataclass(frozen=True)
class Run:
    site: str
    job: str
    started: datetime
    ended: datetime
    ok: bool
    message: str
    figures: dict[str, Any]


@dataclass(frozen=True)
class Updates:
    runs: tuple[Run, ...]
    applied: tuple[tuple[datetime, str, Change], ...]  # (when, site, change)
    rolled_back: tuple[tuple[datetime, str, Change], ...]
    pending: tuple[tuple[str, Change], ...]  # as the site's latest update run left them


def in_period(records: Iterable[EvidenceRecord], period: Period, jobs: tuple[str, ...]) -> list[Run]:
    runs = [
        Run(r.site, r.job, r.started, r.ended, r.ok, r.message, r.figures)
        for r in records
        if r.job in jobs and period.start <= r.ended < period.end
    ]
    return sorted(runs, key=lambda r: r.ended)


def _label(item: dict[str, Any]) -> str:
    """`plugin akismet/akismet.php`, `apt nginx`, `release`: kind and name as the agent names them."""
    if item.get("label"):
        return str(item["label"])
    kind, name = str(item.get("kind") or ""), str(item.get("name") or "")
    return " ".join(p for p in (kind, name) if p) or str(item.get("provider", "?"))


def _changes(raw: Any, broke: str = "") -> list[Change]:
    """Changes as the agent's update figures hold them: {provider, kind, name, from, to} (a provider's
    change) or {component, label, from, version, broke} (a version held back after a rollback)."""
    if not isinstance(raw, list):
        return []
    out = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        after = item.get("to", item.get("version"))
        out.append(
            Change(_label(item), str(item.get("from") or "(none)"), str(after or "?"), str(item.get("broke") or broke))
        )
    return out


def updates(records: Iterable[EvidenceRecord], period: Period) -> Updates:
    """Applied: the changes of runs that ended `updated`; rolled back: those of runs that rolled back,
    with what broke; pending: what each site's latest update run left held back after a rollback."""
    runs = in_period(records, period, ("update", "rollback"))
    applied: list[tuple[datetime, str, Change]] = []
    rolled_back: list[tuple[datetime, str, Change]] = []
    latest: dict[str, Run] = {}
    for run in runs:
        figures = run.figures
        if run.job == "update":
            latest[run.site] = run
            if figures.get("outcome") == "updated":
                applied += [(run.ended, run.site, c) for c in _changes(figures.get("changes"))]
        broke = str(figures.get("broke") or "")
        rolled_back += [(run.ended, run.site, c) for c in _changes(figures.get("rolled_back"), broke)]
    pending: list[tuple[str, Change]] = []
    for site, run in sorted(latest.items()):
        held = _changes(run.figures.get("still_rolled_back"))
        if str(run.figures.get("outcome", "")).startswith("rolled back"):
            held += _changes(run.figures.get("rolled_back"), str(run.figures.get("broke") or ""))
        pending += [(site, c) for c in held]
    return Updates(tuple(runs), tuple(applied), tuple(rolled_back), tuple(pending))
