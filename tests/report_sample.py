"""A synthetic month of the studio client for the report's tests and bench: timelines, snapshots,
evidence records and the example ledger, with known events whose numbers the tests check."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from infra.evidence_record import parse_record, record_key
from infra.ledger import read_ledger
from infra.plan import CarePlan, build_plan
from infra.report.backups import parse_snapshots
from infra.report.build import Sources
from infra.report.period import Period, month_period
from infra.report.uptime import page_key
from infra.spec import ClientSpec, load_stack
from infra.timeline import Interval, MonitorTimeline, ResponseSample, State

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "stacks" / "Pulumi.studio.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def berlin(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


# The events of the sample month (the tests check the report against these).
HOME_EVENTS = [
    (berlin(10, 6, 30), berlin(10, 6, 50), State.DOWN, "502 Bad Gateway"),  # inside the Tue update window
    (berlin(12, 14, 0), berlin(12, 14, 1), State.PENDING, "connect ECONNREFUSED"),
    (berlin(12, 14, 1), berlin(12, 14, 47), State.DOWN, "connect ECONNREFUSED"),
    (berlin(20, 1, 0), berlin(20, 1, 30), State.NO_DATA, ""),
]
PROJECTS_EVENTS = [(berlin(6, 9, 0), berlin(6, 9, 30), State.DOWN, "keyword not found")]
MISSED_BACKUP = berlin(18, 3, 15)
# The cause of that missed backup, as the agent records it.
STALLED_BACKUP = (
    "restic backup: S3 endpoint s3.eu-central-1.amazonaws.com (bucket studio-backups) stalled: no progress for "
    "600 s (limit 600 s), restic stopped"
)


def studio_plan() -> CarePlan:
    spec = load_stack(STACK)
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def sample_period() -> Period:
    return month_period("2026-11", "Europe/Berlin", NOW)


def _timeline(name: str, period: Period, events: list, base_ms: float, every: int) -> MonitorTimeline:
    intervals, cursor = [], period.start
    for a, b, state, note in events:
        if a > cursor:
            intervals.append(Interval(cursor, a, State.UP))
        intervals.append(Interval(a, b, state, note))
        cursor = b
    if cursor < period.end:
        intervals.append(Interval(cursor, period.end, State.UP))
    samples = []
    moment = period.start
    while moment < period.end:
        hours = (moment - period.start).total_seconds() / 3600
        samples.append(ResponseSample(moment, base_ms + 40 * math.sin(hours / 24 * math.pi) + (hours % 7) * 3))
        moment += timedelta(seconds=every)
    return MonitorTimeline(name, period.start, period.end, intervals, samples, 60, "synthetic sample")


def sample_timelines(plan: CarePlan, period: Period, every: int = 3600) -> dict[str, MonitorTimeline]:
    """Each page's timeline, with a response sample every `every` seconds (Kuma 1.23 keeps one per check)."""
    out = {}
    for site in plan.sites:
        for n, check in enumerate(site.checks):
            key = page_key(site, check.path)
            events: list = []
            if site.id == plan.sites[0].id:
                events = HOME_EVENTS if n == 0 else PROJECTS_EVENTS
            out[key] = _timeline(key, period, events, 180 + 90 * n, every)
    return out


def sample_snapshots(plan: CarePlan, period: Period) -> dict:
    out = {}
    for site in plan.sites:
        raw, moment = [], period.start - timedelta(days=40) + timedelta(minutes=16)
        while moment < period.end:
            if not (site.id == plan.sites[0].id and abs((moment - MISSED_BACKUP).total_seconds()) < 120):
                raw.append({"short_id": f"{len(raw):08x}", "time": moment.isoformat(), "tags": ["complete"]})
            moment += timedelta(hours=1)
        out[site.id] = parse_snapshots(raw, site.id)
    return out


def _record(plan: CarePlan, site: str, job: str, ended: datetime, result: str, message: str, figures: dict) -> object:
    run_id = f"{job}-{ended:%d%H%M}"
    body = {
        "schema": 1,
        "client": plan.client.id,
        "site": site,
        "job": job,
        "run_id": run_id,
        "host": "shared-1",
        "started": (ended - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ended": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "result": result,
        "exit_code": 0 if result == "ok" else 1,
        "message": message,
        "figures": figures,
    }
    return parse_record(record_key(site, job, ended, run_id), json.dumps(body))


def sample_evidence(plan: CarePlan) -> list:
    """Records in the agent's own shapes (agent/carestack_agent/actions/update.py's figures)."""
    web, plans = plan.sites[0].id, plan.sites[1].id
    form = {"provider": "wordpress", "kind": "plugin", "name": "contact-form-7", "from": "5.9.2", "to": "5.9.3"}
    nginx = {"provider": "apt", "kind": "apt", "name": "nginx", "from": "1.22.1-9", "to": "1.22.1-9+deb12u1"}
    gallery = {"provider": "wordpress", "kind": "plugin", "name": "gallery", "from": "2.1.0", "to": "2.2.0"}
    broke = "www.studio.example/projects/: HTTP 500, expected 200"
    return [
        _record(
            plan, web, "update", berlin(3, 6, 20), "ok", "updated", {"outcome": "updated", "changes": [form, nginx]}
        ),
        _record(
            plan,
            web,
            "update",
            berlin(10, 6, 55),
            "failed",
            "rolled back: plugin gallery 2.1.0→2.2.0",
            {"outcome": "rolled back", "changes": [gallery], "rolled_back": [gallery], "broke": broke},
        ),
        _record(plan, plans, "update", berlin(3, 6, 25), "ok", "no updates", {"outcome": "nothing to do"}),
        _record(plan, web, "check", berlin(7, 4, 35), "ok", "no errors", {}),
        _record(plan, web, "backup", MISSED_BACKUP + timedelta(minutes=11), "failed", STALLED_BACKUP, {}),
        _record(plan, plans, "check", berlin(14, 4, 35), "failed", "pack 3f2a is damaged", {}),
        _record(
            plan,
            web,
            "scan",
            berlin(8, 3, 40),
            "failed",
            "2 high findings",
            {
                "critical": 0,
                "high": 2,
                "medium": 1,
                "info": 4,
                "top_findings": ["high: PHP file in an upload directory: wp-content/uploads/x.php"],
            },
        ),
    ]


def sample_recovery_evidence(plan: CarePlan) -> list:
    """A failover of the studio's first site on the 20th and its failback on the 22nd, with the figures
    infra/failover.py records: the failover's RTO within the plan, its RPO beyond it."""
    web = plan.sites[0].id
    rpo_seconds = (plan.backup.rpo_minutes + 30) * 60
    return [
        _record(
            plan,
            web,
            "failover",
            berlin(20, 10, 40),
            "ok",
            f"{web} runs on standby-1 (failover)",
            {"rto_seconds": 1260.0, "rto_target_minutes": 180, "rpo_seconds": rpo_seconds},
        ),
        _record(
            plan,
            web,
            "failback",
            berlin(22, 7, 5),
            "ok",
            f"{web} runs on shared-1 (failback)",
            {"rto_seconds": 612.4, "rto_target_minutes": 180, "rpo_seconds": 95.0},
        ),
    ]


def sample_sources(plan: CarePlan, period: Period, every: int = 3600) -> Sources:
    return Sources(
        timelines=sample_timelines(plan, period, every),
        snapshots=sample_snapshots(plan, period),
        evidence=sample_evidence(plan),  # type: ignore[arg-type]
        ledger=read_ledger(ROOT / "stacks" / "ledger.studio.csv", plan),
    )
