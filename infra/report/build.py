"""The report document: every section of one client's period as JSON-ready data (docs/report.md).

This is the source of every format (Markdown, HTML, PDF): renderers word and draw it, they never
compute. A source that is missing leaves its sections with `available: false` and a note saying why;
nothing is filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import mean
from typing import Any

from infra.evidence_record import EvidenceRecord
from infra.ledger import Ledger
from infra.plan import CarePlan, SitePlan
from infra.report.backups import SiteBackups, Snapshot, site_backups
from infra.report.incidents import Incident, site_incidents
from infra.report.job_results import Change, Run, in_period, updates
from infra.report.period import Period
from infra.report.uptime import Minutes, SiteUptime, page_key, site_uptime
from infra.report.windows import maintenance_windows
from infra.sla_terms import Credit, credit_for, month_credit
from infra.support_stats import severity_results, time_bank
from infra.timeline import MonitorTimeline

SCHEMA = 1


@dataclass
class Sources:
    """What was read for the period; None where a source could not be read, with the reason in `notes`."""

    timelines: dict[str, MonitorTimeline] | None = None
    snapshots: dict[str, list[Snapshot]] = field(default_factory=dict)  # by site id; a site absent: see notes
    evidence: list[EvidenceRecord] | None = None
    ledger: Ledger | None = None
    notes: dict[str, str] = field(default_factory=dict)  # "monitoring", "evidence", "ledger", "backups:<site>"
    evidence_problems: list[str] = field(default_factory=list)  # objects that are no readable record: "key: why"


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _r(value: float) -> float:
    return round(value, 2)


def _minutes(m: Minutes) -> dict[str, float]:
    return {
        "up": _r(m.up),
        "down": _r(m.down),
        "no_data": _r(m.no_data),
        "excluded_maintenance": _r(m.excluded),
        "not_monitored": _r(m.not_monitored),
        "counted": _r(m.counted),
    }


def _uptime(u: SiteUptime) -> dict[str, Any]:
    return {
        "available": True,
        "home_check": u.home,
        "percent": u.uptime_percent,
        "target_percent": u.target_percent,
        "met": u.met,
        "minutes": _minutes(u.minutes),
        "partial_down_minutes": u.partial_down_minutes,
        "not_monitored": (
            None if u.not_monitored is None else {"start": iso(u.not_monitored[0]), "end": iso(u.not_monitored[1])}
        ),
        "budget": {
            "allowed_minutes": u.budget_minutes,
            "used_minutes": u.budget_used_minutes,
            "left_minutes": _r(u.budget_minutes - u.budget_used_minutes),
        },
        "maintenance_windows": [
            {"start": iso(w.start), "end": iso(w.end), "minutes": w.minutes, "down_minutes": w.down_minutes}
            for w in u.windows
        ],
        "days": [{"day": d.day, "percent": d.minutes.percent(), **_minutes(d.minutes)} for d in u.days],
        "source": u.source,
        "resolution_seconds": u.resolution_seconds,
    }


def _incident(i: Incident) -> dict[str, Any]:
    return {
        "start": iso(i.start),
        "end": iso(i.end),
        "minutes": _r(i.minutes),
        "ongoing": i.ongoing,
        "checks": list(i.checks),
        "whole_site": i.whole_site,
        "alerted": iso(i.alerted),
        "messages": list(i.messages),
        "maintenance_minutes": i.maintenance_minutes,
    }


def _response_times(site: SitePlan, timelines: dict[str, MonitorTimeline], period: Period) -> list[dict[str, Any]]:
    """Per checked page, the daily mean and peak response time (local days); one pass over the samples."""
    zone = period.zone
    out = []
    for check in site.checks:
        timeline = timelines.get(page_key(site, check.path))
        by_day: dict[str, list[float]] = {}
        for s in [] if timeline is None else timeline.response_times:
            if period.start <= s.at < period.end:
                by_day.setdefault(s.at.astimezone(zone).date().isoformat(), []).append(s.ms)
        days = [
            {"day": day, "mean_ms": round(mean(ms), 1), "max_ms": round(max(ms), 1), "samples": len(ms)}
            for day, ms in sorted(by_day.items())
        ]
        out.append({"check": check.path, "days": days})
    return out


def _backups(b: SiteBackups) -> dict[str, Any]:
    return {
        "available": True,
        "called_for": b.called_for,
        "complete": b.complete,
        "incomplete": b.incomplete,
        "untagged": b.untagged,
        "snapshots": [iso(t) for t in b.times],
        "achieved_rpo_minutes": _r(b.worst_gap.minutes),
        "worst_gap": {"start": iso(b.worst_gap.start), "end": iso(b.worst_gap.end)},
        "rpo_minutes": b.rpo_minutes,
        "rpo_met": b.rpo_met,
        "gaps_over_rpo": [
            {"start": iso(g.start), "end": iso(g.end), "minutes": _r(g.minutes)} for g in b.gaps_over_rpo
        ],
        "oldest_complete": iso(b.oldest),
        "oldest_age_days": b.oldest_age_days,
        "retention_days": b.retention_days,
        "retention_held": b.retention_held,
        "counted_from": iso(b.counted_from),
    }


def _failed_backups(evidence: list[EvidenceRecord] | None, period: Period, site: str) -> list[dict[str, Any]] | None:
    """The site's backup jobs that failed in the period, each with the cause the agent recorded; None when
    the evidence was not read (a missed backup then shows only as a gap between snapshots)."""
    if evidence is None:
        return None
    failed = [r for r in in_period(evidence, period, ("backup",)) if r.site == site and not r.ok]
    return [{"started": iso(r.started), "ended": iso(r.ended), "message": r.message} for r in failed]


def _run(r: Run) -> dict[str, Any]:
    return {
        "site": r.site,
        "job": r.job,
        "started": iso(r.started),
        "ended": iso(r.ended),
        "result": "ok" if r.ok else "failed",
        "message": r.message,
    }


def _change(when: datetime | None, site: str, c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"site": site, "component": c.component, "from": c.before, "to": c.after}
    if when is not None:
        out["when"] = iso(when)
    if c.broke:
        out["broke"] = c.broke
    return out


def _unavailable(note: str) -> dict[str, Any]:
    return {"available": False, "note": note}


def _job_section(
    evidence: list[EvidenceRecord] | None, period: Period, jobs: tuple[str, ...], empty: str, missing: str
) -> dict[str, Any]:
    if evidence is None:
        return _unavailable(missing)
    runs = in_period(evidence, period, jobs)
    return {
        "available": True,
        "runs": [{**_run(r), "figures": r.figures} for r in runs],
        "ok": sum(r.ok for r in runs),
        "failed": sum(not r.ok for r in runs),
        "note": "" if runs else empty,
    }


def _recovery_section(section: dict[str, Any], plan: CarePlan) -> dict[str, Any]:
    """Each drill, failover and failback run with its measured RTO and RPO beside the plan's: the RTO
    against the failover promise (a drill's deadline is that promise too), the RPO against the backup
    plan's. A run that did not measure one (it failed first) has None there, never a made-up figure."""
    if not section.get("available"):
        return section
    rto_target = None if plan.sla.failover is None else plan.sla.failover.rto_minutes
    rpo_target = plan.backup.rpo_minutes
    runs = []
    for run in section["runs"]:
        figures = run["figures"]
        rto = _seconds_as_minutes(figures.get("rto_seconds"))
        rpo = _seconds_as_minutes(figures.get("rpo_seconds"))
        runs.append(
            {
                **run,
                "rto_minutes": rto,
                "rto_target_minutes": rto_target,
                "rto_met": None if rto is None or rto_target is None else rto <= rto_target,
                "rpo_minutes": rpo,
                "rpo_target_minutes": rpo_target,
                "rpo_met": None if rpo is None else rpo <= rpo_target,
            }
        )
    return {**section, "runs": runs}


def _active_failovers(evidence: list[EvidenceRecord] | None, plan: CarePlan, until: datetime) -> list[dict[str, Any]]:
    """Sites still on the standby at `until`: their latest failover or failback record (from any time
    before, not only the period) is a successful failover. Its age stands against the plan's limit."""
    if evidence is None or plan.sla.failover is None:
        return []
    latest: dict[str, EvidenceRecord] = {}
    for record in sorted(evidence, key=lambda r: r.ended):
        if record.job in ("failover", "failback") and record.ok and record.ended < until:
            latest[record.site] = record
    return [
        {
            "site": site,
            "since": iso(record.ended),
            "days": round((until - record.ended).total_seconds() / 86400, 1),
            "max_days": plan.sla.failover.max_days,
        }
        for site, record in sorted(latest.items())
        if record.job == "failover"
    ]


def _seconds_as_minutes(seconds: Any) -> float | None:
    return round(float(seconds) / 60, 1) if isinstance(seconds, int | float) else None


def _credit(c: Credit) -> dict[str, Any]:
    return {
        "band_below_percent": None if c.band is None else c.band.below_percent,
        "percent": c.percent,
        "amount": c.amount,
    }


def _support(plan: CarePlan, ledger: Ledger | None, period: Period, note: str) -> dict[str, Any]:
    if ledger is None:
        return _unavailable(note)
    last = period.last_day
    bank = time_bank(ledger.entries, plan, (last.year, last.month))
    severities = severity_results(ledger.entries, plan, period.start, period.end)
    promised = {s.name: s for s in plan.sla.severities}
    return {
        "available": True,
        "ledger": ledger.source,
        "time_bank": {
            "month": f"{bank.month[0]:04d}-{bank.month[1]:02d}",
            "included_minutes": bank.included_minutes,
            "carried_in_minutes": bank.carried_in_minutes,
            "charged_minutes": bank.charged_minutes,
            "free_minutes": bank.free_minutes,
            "left_minutes": bank.left_minutes,
            "over_minutes": bank.over_minutes,
            "expired_minutes": bank.expired_minutes,
            "small_jobs": bank.small_jobs,
            "rollover_months": plan.sla.time_bank.rollover_months,
        },
        "severities": [
            {
                "severity": s.severity,
                "response_promise": promised[s.severity].response,
                "fix_promise": promised[s.severity].fix,
                "tickets": s.tickets,
                "response": {"met": s.response.met, "missed": s.response.missed, "open": s.response.open},
                "fix": {"met": s.fix.met, "missed": s.fix.missed, "open": s.fix.open},
            }
            for s in severities
        ],
    }


def build_report(plan: CarePlan, period: Period, sources: Sources, generated: datetime) -> dict[str, Any]:
    notes = sources.notes
    windows = maintenance_windows(plan.monitoring.maintenance, plan.client.timezone, period.start, period.end)
    sites = []
    credits: list[Credit] = []
    site_credits = []
    for site in plan.sites:
        entry: dict[str, Any] = {
            "id": site.id,
            "name": site.name,
            "domain": site.domain,
            "checks": [c.path for c in site.checks],
        }
        timelines = sources.timelines
        care_from = None
        home = None if timelines is None else timelines.get(page_key(site, site.checks[0].path))
        if timelines is None or home is None:
            why = notes.get("monitoring", "") if timelines is None else f"Kuma has no history of {site.id}'s home check"
            entry["uptime"] = _unavailable(why)
            entry["incidents"] = None
            entry["response_times"] = None
        else:
            uptime = site_uptime(plan, site, timelines, period)
            care_from = uptime.not_monitored[1] if uptime.not_monitored else None
            entry["uptime"] = _uptime(uptime)
            entry["incidents"] = [_incident(i) for i in site_incidents(site, timelines, period, windows)]
            entry["response_times"] = _response_times(site, timelines, period)
            if uptime.uptime_percent is not None:
                credit = credit_for(plan.sla.credits, uptime.uptime_percent)
                credits.append(credit)
                site_credits.append({"site": site.id, **_credit(credit)})
        if site.id in sources.snapshots:
            entry["backups"] = _backups(site_backups(plan, site.id, sources.snapshots[site.id], period, care_from))
            entry["backups"]["failed_runs"] = _failed_backups(sources.evidence, period, site.id)
        else:
            entry["backups"] = _unavailable(notes.get(f"backups:{site.id}", "the repository was not read"))
        sites.append(entry)

    evidence = sources.evidence
    missing_evidence = notes.get("evidence", "the evidence records were not read")
    if evidence is None:
        update_section = _unavailable(missing_evidence)
    else:
        u = updates(evidence, period)
        update_section = {
            "available": True,
            "runs": [_run(r) for r in u.runs],
            "applied": [_change(w, s, c) for w, s, c in u.applied],
            "rolled_back": [_change(w, s, c) for w, s, c in u.rolled_back],
            "pending": [_change(None, s, c) for s, c in u.pending],
        }
    sla = plan.sla
    return {
        "schema": SCHEMA,
        "generated": iso(generated),
        "period": {
            "label": period.label,
            "start": iso(period.start),
            "end": iso(period.end),
            "timezone": period.timezone,
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_day.isoformat(),
            "minutes": _r(period.minutes),
        },
        "client": {
            "id": plan.client.id,
            "name": plan.client.name,
            "tier": plan.client.tier,
            "tier_title": plan.client.tier_title,
        },
        "targets": {
            "uptime_percent": sla.uptime_target_percent,
            "rpo_minutes": plan.backup.rpo_minutes,
            "retention_days": plan.storage.retention_days,
            "check_interval_seconds": plan.monitoring.interval_seconds,
            "alert_within_seconds": plan.monitoring.alert_within_seconds,
            "maintenance": {
                "weekday": plan.monitoring.maintenance.weekday,
                "start": plan.monitoring.maintenance.start,
                "minutes": plan.monitoring.maintenance.duration_minutes,
            },
            "failover_rto_minutes": None if sla.failover is None else sla.failover.rto_minutes,
            "restore_drill": None if sla.restore_drill is None else sla.restore_drill.on_calendar,
        },
        "sources": {
            "monitoring": {"available": sources.timelines is not None, "note": notes.get("monitoring", "")},
            "evidence": {
                "available": evidence is not None,
                "note": "" if evidence is not None else missing_evidence,
                "problems": list(sources.evidence_problems),
            },
            "ledger": {"available": sources.ledger is not None, "note": notes.get("ledger", "")},
        },
        "sites": sites,
        "integrity_checks": _job_section(
            evidence, period, ("check",), "no integrity check ran in the period", missing_evidence
        ),
        "immutability": {
            "object_lock_days": plan.storage.object_lock_days,
            "versioning": plan.storage.versioning,
        },
        "updates": update_section,
        "drills": _recovery_section(
            _job_section(
                evidence,
                period,
                ("drill",),
                "no restore drill ran in the period"
                if sla.restore_drill is not None
                else "the tier schedules no restore drill",
                missing_evidence,
            ),
            plan,
        ),
        "failovers": {
            **_recovery_section(
                _job_section(evidence, period, ("failover", "failback"), "no failover in the period", missing_evidence),
                plan,
            ),
            "active": _active_failovers(evidence, plan, min(generated, period.end)),
        },
        "security_scans": _job_section(evidence, period, ("scan",), "not run", missing_evidence),
        "performance": _job_section(evidence, period, ("perf",), "not run", missing_evidence),
        "support": _support(plan, sources.ledger, period, notes.get("ledger", "no support ledger")),
        "credits": {
            "available": bool(credits),
            "currency": sla.credits.currency,
            "claim": sla.credits.claim,
            "cap_percent": sla.credits.cap_percent,
            "per_site": site_credits,
            "total": _credit(month_credit(sla.credits, credits)) if credits else None,
        },
    }
