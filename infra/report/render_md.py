"""The report document as Markdown (for e-mail bodies and tickets): the same sections as the HTML."""

from __future__ import annotations

from typing import Any

from infra.report.fmt import (
    DASH,
    active_failover_lines,
    credit_line,
    duration,
    local,
    outcome,
    percent,
    recovery_rows,
    runs_line,
)
from infra.report.text import TEXT


def _table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:]]
    return out


def render_md(doc: dict[str, Any], lang: str = "en", agency: str = "") -> str:
    w, tz = TEXT[lang], doc["period"]["timezone"]
    client = doc["client"]
    lines = [
        f"# {w['title']}: {client['name']}",
        "",
        f"{w['period']}: {doc['period']['label']} ({tz}) · {w['tier']}: {client['tier_title']}"
        + (f" · {agency}" if agency else ""),
        "",
    ]
    for site in doc["sites"]:
        lines += [f"## {site['domain']}", "", f"### {w['uptime']}", ""]
        up = site["uptime"]
        if not up["available"]:
            lines += [f"{w['unavailable']}: {up['note']}", ""]
        else:
            m, budget = up["minutes"], up["budget"]
            lines += [
                f"- {w['uptime']}: **{percent(up['percent'])}** ({w['target']} {up['target_percent']:g} %, "
                f"{outcome(up['met'], w)})",
                f"- {w['budget']}: {w['allowed']} {duration(budget['allowed_minutes'])}, {w['used']} "
                f"{duration(budget['used_minutes'])}, {w['left']} {duration(budget['left_minutes'])}",
                f"- {w['down']}: {duration(m['down'])}",
                f"- {w['no_data']}: {duration(m['no_data'])}",
                f"- {w['partial']}: {duration(up['partial_down_minutes'])}",
                f"- {w['excluded']}: {duration(m['excluded_maintenance'])}",
            ]
            if up["not_monitored"]:
                span = up["not_monitored"]
                lines.append(
                    f"- {w['not_monitored']}: {local(span['start'], tz)} {DASH} {local(span['end'], tz)} "
                    f"({duration(m['not_monitored'])})"
                )
            for window in up["maintenance_windows"]:
                lines.append(
                    f"  - {local(window['start'], tz)} {DASH} {local(window['end'], tz)}: {w['down_in_window']} "
                    f"{duration(window['down_minutes'])}"
                )
            lines += ["", f"### {w['incidents']}", ""]
            if site["incidents"]:
                rows = [[w["start"], w["end"], w["duration"], w["checks"], w["alerted"]]]
                for i in site["incidents"]:
                    end = w["ongoing"] if i["ongoing"] else local(i["end"], tz)
                    rows.append(
                        [
                            local(i["start"], tz),
                            end,
                            duration(i["minutes"]) + _in_window(i, w),
                            ", ".join(i["checks"]),
                            local(i["alerted"], tz),
                        ]
                    )
                lines += _table(rows)
            else:
                lines.append(w["no_incidents"])
            lines.append("")
        lines += [f"### {w['backups']}", ""]
        b = site["backups"]
        if not b["available"]:
            lines += [f"{w['unavailable']}: {b['note']}", ""]
        else:
            lines += [
                f"- {b['complete']} {w['complete']} / {b['called_for']} {w['called_for']}; {b['incomplete']} "
                f"{w['incomplete']}",
                *([f"- {w['counted_from']} {local(b['counted_from'], tz)}"] if b.get("counted_from") else []),
                f"- {w['rpo']}: {duration(b['achieved_rpo_minutes'])} ({w['plan_rpo']} {duration(b['rpo_minutes'])}, "
                f"{outcome(b['rpo_met'], w)})",
                f"- {w['retention']}: {outcome(b['retention_held'], w)} ({w['oldest']} "
                f"{local(b['oldest_complete'], tz)}, {b['oldest_age_days']} {w['days_back']} {b['retention_days']})",
                "",
            ]
            if b.get("failed_runs"):
                lines += [f"{w['failed_backups']}:", ""]
                lines += [f"- {local(r['ended'], tz)}: {r['message']}" for r in b["failed_runs"]] + [""]
    lines += [f"## {w['integrity']}", "", runs_line(doc["integrity_checks"], w), ""]
    lock = doc["immutability"]["object_lock_days"]
    lines += [f"## {w['immutability']}", "", f"{w['locked']}: {lock}" if lock else w["not_locked"], ""]
    lines += [f"## {w['updates']}", ""]
    upd = doc["updates"]
    if not upd["available"]:
        lines += [f"{w['unavailable']}: {upd['note']}", ""]
    else:
        for key in ("applied", "rolled_back", "pending"):
            items = upd[key]
            lines.append(f"- {w[key]}: " + ("; ".join(_change(c, tz) for c in items) if items else w["none"]))
        lines.append("")
    lines += [f"## {w['drills']}", "", runs_line(doc["drills"], w), ""]
    if doc["failovers"]["available"] and not doc["failovers"]["runs"]:
        lines += [str(doc["failovers"]["note"]), ""]
    recovery = recovery_rows(doc, w)
    if recovery:
        lines += [*_table(recovery), ""]
    active = active_failover_lines(doc, w)
    if active:
        lines += [*(f"- {line}" for line in active), ""]
    for key, title in (("security_scans", "scans"), ("performance", "perf")):
        lines += [f"## {w[title]}", "", runs_line(doc[key], w), ""]
    lines += [f"## {w['support']}", ""]
    sup = doc["support"]
    if not sup["available"]:
        lines += [f"{w['unavailable']}: {sup['note']}", ""]
    else:
        bank = sup["time_bank"]
        lines += [
            f"- {w['time_bank']} {bank['month']}: {w['included']} {duration(bank['included_minutes'])}, {w['carried']} "
            f"{duration(bank['carried_in_minutes'])}, {w['charged']} {duration(bank['charged_minutes'])}, "
            f"{w['left']} {duration(bank['left_minutes'])}, {w['over']} {duration(bank['over_minutes'])}",
            "",
        ]
        rows = [[w["severity"], w["tickets"], w["response_t"], w["fix"]]]
        for s in sup["severities"]:
            rows.append(
                [
                    s["severity"],
                    str(s["tickets"]),
                    _outcomes(s["response"], s["response_promise"], w),
                    _outcomes(s["fix"], s["fix_promise"], w),
                ]
            )
        lines += [*_table(rows), ""]
    lines += [f"## {w['credits']}", "", credit_line(doc["credits"], w), ""]
    return "\n".join(lines)


def _change(c: dict[str, Any], tz: str) -> str:
    when = f" ({local(c['when'], tz)})" if "when" in c else ""
    broke = f": {c['broke']}" if c.get("broke") else ""
    return f"{c['site']} {c['component']} {c['from']} → {c['to']}{when}{broke}"


def _outcomes(o: dict[str, int], promise: str, w: dict[str, str]) -> str:
    return f"{o['met']} {w['met']}, {o['missed']} {w['missed']}, {o['open']} {w['open']} ({promise})"


def _in_window(incident: dict[str, Any], w: dict[str, str]) -> str:
    minutes = incident["maintenance_minutes"]
    return f"; {w['in_window']}: {duration(minutes)}" if minutes else ""
