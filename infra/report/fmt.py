"""Formatting the document's values for people: local times, durations, percentages, outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

# A scan's figures count its findings per severity (docs/evidence.md).
SEVERITIES = ("critical", "high", "medium", "info")
DASH = "\u2013"  # en dash: no value, and ranges
MINUS = "\u2212"


def local(stamp: str | None, timezone: str) -> str:
    if not stamp:
        return DASH
    return (
        datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")
    )


def duration(minutes: float | None) -> str:
    if minutes is None:
        return DASH
    if minutes < 0:
        return MINUS + duration(-minutes)
    if minutes < 60:
        return f"{minutes:.0f} min" if minutes >= 1 or minutes == 0 else f"{minutes * 60:.0f} s"
    hours, rest = divmod(round(minutes), 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f} %"


def outcome(ok: bool | None, words: dict[str, str]) -> str:
    return DASH if ok is None else (words["met"] if ok else words["missed"])


def runs_line(section: dict[str, Any], words: dict[str, str]) -> str:
    if not section["available"]:
        return f"{words['unavailable']}: {section['note']}"
    if not section["runs"]:
        return str(section["note"])
    line = (
        f"{len(section['runs'])} {words['runs']}: {section['ok']} {words['ok']}, {section['failed']} {words['failed']}"
    )
    counts = {k: v for k, v in section["runs"][-1]["figures"].items() if k in SEVERITIES and isinstance(v, int)}
    if counts:  # a scan: the latest run's findings per severity
        line += "; " + ", ".join(f"{k} {counts[k]}" for k in SEVERITIES if k in counts)
    return line


def recovery_rows(doc: dict[str, Any], words: dict[str, str]) -> list[list[str]]:
    """The drills', failovers' and failbacks' runs as table rows (header first), oldest first; empty
    when none ran. Each measured RTO and RPO stands beside the plan's with whether it was met."""
    runs = [r for key in ("drills", "failovers") if doc[key]["available"] for r in doc[key]["runs"]]
    if not runs:
        return []
    tz = doc["period"]["timezone"]

    def measure(value: float | None, target: float | None, met: bool | None) -> str:
        planned = f" ({duration(target)})" if target is not None else ""
        return f"{duration(value)}{planned}" + (f", {outcome(met, words)}" if met is not None else "")

    rows = [
        [
            words["recovery_when"],
            words["site"],
            words["recovery_what"],
            words["recovery_result"],
            words["rto_plan"],
            words["rpo_plan"],
        ]
    ]
    for r in sorted(runs, key=lambda r: r["ended"]):
        rows.append(
            [
                local(r["ended"], tz),
                r["site"],
                words.get(f"job_{r['job']}", r["job"]),
                words["ok"] if r["result"] == "ok" else f"{words['failed']}: {r['message']}",
                measure(r["rto_minutes"], r["rto_target_minutes"], r["rto_met"]),
                measure(r["rpo_minutes"], r["rpo_target_minutes"], r["rpo_met"]),
            ]
        )
    return rows


def active_failover_lines(doc: dict[str, Any], words: dict[str, str]) -> list[str]:
    """One sentence per site still on the standby, its age against the plan's limit."""
    tz = doc["period"]["timezone"]
    return [
        words["active_failover"].format(
            site=a["site"], since=local(a["since"], tz), days=a["days"], max_days=a["max_days"]
        )
        for a in doc["failovers"].get("active", [])
    ]


def credit_line(credits: dict[str, Any], words: dict[str, str]) -> str:
    if not credits["available"]:
        return words["unavailable"]
    total = credits["total"]
    if not total or not total["percent"]:
        return words["credit_none"]
    amount = f" = {total['amount']:.2f} {credits['currency']}" if total["amount"] is not None else ""
    return f"{words['credit_owed']}: {total['percent']:g} % {words['of_fee']}{amount} ({credits['claim']})"
