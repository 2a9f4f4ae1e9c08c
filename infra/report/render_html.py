"""The report document as one self-contained HTML file: inline CSS and SVG, no script, no external URL.

It prints to A4 (the @page rule and widths in the page's own terms); the agency's logo is embedded
as a data: URI from the branding file (infra/report/branding.py).
"""

from __future__ import annotations

from html import escape
from typing import Any

from infra.report.branding import Branding
from infra.report.charts import backup_timeline, response_lines, uptime_bars
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

CSS = """
@page { size: A4; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10pt; color: #222; margin: 0 auto;
       max-width: 186mm; padding: 6mm 0; }
header { display: flex; align-items: center; justify-content: space-between; border-bottom: 2px solid var(--accent);
         padding-bottom: 4mm; margin-bottom: 4mm; }
header img { max-height: 14mm; max-width: 50mm; }
h1 { font-size: 16pt; margin: 0 0 1mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm; color: var(--accent); }
h3 { font-size: 11pt; margin: 4mm 0 1.5mm; }
.meta { color: #555; font-size: 9pt; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; font-size: 9pt; table-layout: fixed; }
th, td { border-bottom: 1px solid #ddd; padding: 1mm 1.5mm; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f4f4f4; }
.ok { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
.note { color: #666; font-style: italic; }
svg.chart { width: 100%; height: auto; display: block; margin: 1mm 0 3mm; }
section.site { break-inside: auto; }
figure { margin: 0; break-inside: avoid; } figcaption { font-size: 8.5pt; color: #555; }
ul { margin: 1mm 0 3mm; padding-left: 5mm; }
"""


def _status(ok: bool | None, w: dict[str, str]) -> str:
    if ok is None:
        return DASH
    return f'<span class="{"ok" if ok else "bad"}">{escape(outcome(ok, w))}</span>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    out = "<table>"
    if any(head):
        out += "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
    for row in rows:
        out += "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
    return out + "</table>"


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _site(site: dict[str, Any], doc: dict[str, Any], w: dict[str, str]) -> str:
    tz, period = doc["period"]["timezone"], doc["period"]
    parts = [f'<section class="site"><h2>{escape(site["domain"])}</h2><h3>{w["uptime"]}</h3>']
    up = site["uptime"]
    if not up["available"]:
        parts.append(_note(f"{w['unavailable']}: {up['note']}"))
    else:
        m, budget = up["minutes"], up["budget"]
        rows = [
            [
                w["uptime"],
                f"<b>{percent(up['percent'])}</b> ({w['target']} {up['target_percent']:g} %) " + _status(up["met"], w),
            ],
            [
                w["budget"],
                f"{w['allowed']} {duration(budget['allowed_minutes'])} · {w['used']} "
                f"{duration(budget['used_minutes'])} · {w['left']} {duration(budget['left_minutes'])}",
            ],
            [w["down"], duration(m["down"])],
            [w["no_data"], duration(m["no_data"])],
            [w["partial"], duration(up["partial_down_minutes"])],
            [
                w["excluded"],
                duration(m["excluded_maintenance"])
                + "".join(
                    f"<br>{local(x['start'], tz)} {DASH} {local(x['end'], tz)[11:]}: {w['down_in_window']} "
                    f"{duration(x['down_minutes'])}"
                    for x in up["maintenance_windows"]
                ),
            ],
            *(
                [
                    [
                        w["not_monitored"],
                        f"{local(up['not_monitored']['start'], tz)} {DASH} {local(up['not_monitored']['end'], tz)} "
                        f"({duration(m['not_monitored'])})",
                    ]
                ]
                if up["not_monitored"]
                else []
            ),
            [w["resolution"], f"{up['resolution_seconds']} {w['seconds']} ({escape(up['source'])})"],
        ]
        parts.append(_table(["", ""], [[escape(a), b] for a, b in rows]))
        parts.append(
            f"<figure>{uptime_bars(up['days'], up['target_percent'], w['daily'])}"
            f"<figcaption>{w['daily']}</figcaption></figure>"
        )
        days = [d["day"] for d in up["days"]]
        if any(series["days"] for series in site["response_times"]):
            parts.append(
                f"<figure>{response_lines(site['response_times'], days, w['response'])}"
                f"<figcaption>{w['response']}</figcaption></figure>"
            )
        else:  # Kuma records no response time for beats in maintenance or without an answer
            parts.append(_note(f"{w['response']}: {w['no_samples']}"))
        parts.append(f"<h3>{w['incidents']}</h3>")
        if site["incidents"]:
            rows2 = []
            for i in site["incidents"]:
                end = w["ongoing"] if i["ongoing"] else local(i["end"], tz)
                rows2.append(
                    [
                        local(i["start"], tz),
                        end,
                        duration(i["minutes"]) + _in_window(i, w),
                        escape(", ".join(i["checks"]))
                        + (
                            ""
                            if not i["messages"]
                            else f'<br><span class="note">{escape("; ".join(i["messages"]))}</span>'
                        ),
                        local(i["alerted"], tz),
                    ]
                )
            parts.append(_table([w["start"], w["end"], w["duration"], w["checks"], w["alerted"]], rows2))
        else:
            parts.append(_note(w["no_incidents"]))
    parts.append(f"<h3>{w['backups']}</h3>")
    b = site["backups"]
    if not b["available"]:
        parts.append(_note(f"{w['unavailable']}: {b['note']}"))
    else:
        parts.append(
            "<ul>"
            f"<li>{b['complete']} {w['complete']} / {b['called_for']} {w['called_for']}; "
            f"{b['incomplete']} {w['incomplete']}</li>"
            + (f"<li>{w['counted_from']} {local(b['counted_from'], tz)}</li>" if b.get("counted_from") else "")
            + f"<li>{w['rpo']}: {duration(b['achieved_rpo_minutes'])} ({w['plan_rpo']} {duration(b['rpo_minutes'])}) "
            f"{_status(b['rpo_met'], w)}</li>"
            f"<li>{w['retention']}: {_status(b['retention_held'], w)} "
            f"({w['oldest']} {local(b['oldest_complete'], tz)}, "
            f"{b['oldest_age_days']} {w['days_back']} {b['retention_days']})</li></ul>"
        )
        if b.get("failed_runs"):
            rows = [[local(r["ended"], tz), escape(r["message"])] for r in b["failed_runs"]]
            parts.append(f"<p>{w['failed_backups']}</p>" + _table([w["end"], w["cause"]], rows))
        ends = (period["first_day"], period["last_day"])
        chart = backup_timeline(b, period["start"], period["end"], w["backup_timeline"], ends)
        parts.append(f"<figure>{chart}<figcaption>{w['backup_timeline']}</figcaption></figure>")
    return "".join(parts) + "</section>"


def _change(c: dict[str, Any], tz: str) -> str:
    when = f" ({local(c['when'], tz)})" if "when" in c else ""
    broke = f": {escape(c['broke'])}" if c.get("broke") else ""
    return f"{escape(c['site'])} {escape(c['component'])} {escape(c['from'])} → {escape(c['to'])}{when}{broke}"


def render_html(doc: dict[str, Any], lang: str = "en", branding: Branding | None = None) -> str:
    w, tz = TEXT[lang], doc["period"]["timezone"]
    branding = branding or Branding()
    client = doc["client"]
    logo = f'<img src="{branding.logo_data_uri}" alt="{escape(branding.name)}">' if branding.logo_data_uri else ""
    body = [
        f"<header><div><h1>{w['title']}: {escape(client['name'])}</h1>"
        f'<div class="meta">{w["period"]}: {escape(doc["period"]["label"])} ({escape(tz)}) · {w["tier"]}: '
        f"{escape(client['tier_title'])} · {w['generated']}: {local(doc['generated'], tz)}</div></div>"
        f'<div class="brand">{logo or escape(branding.name)}</div></header>'
    ]
    body += [_site(site, doc, w) for site in doc["sites"]]
    body.append(f"<h2>{w['integrity']}</h2><p>{escape(runs_line(doc['integrity_checks'], w))}</p>")
    lock = doc["immutability"]["object_lock_days"]
    body.append(f"<h2>{w['immutability']}</h2><p>{escape(_lock_line(lock, w))}</p>")
    body.append(f"<h2>{w['updates']}</h2>")
    upd = doc["updates"]
    if not upd["available"]:
        body.append(_note(f"{w['unavailable']}: {upd['note']}"))
    else:
        items = "".join(
            f"<li>{w[key]}: " + ("; ".join(_change(c, tz) for c in upd[key]) if upd[key] else w["none"]) + "</li>"
            for key in ("applied", "rolled_back", "pending")
        )
        body.append(f"<ul>{items}</ul>")
    body.append(f"<h2>{w['drills']}</h2><p>{escape(runs_line(doc['drills'], w))}</p>")
    if doc["failovers"]["available"] and not doc["failovers"]["runs"]:
        body.append(f"<p>{escape(str(doc['failovers']['note']))}</p>")
    recovery = recovery_rows(doc, w)
    if recovery:
        body.append(_table(recovery[0], [[escape(cell) for cell in row] for row in recovery[1:]]))
    body += [f'<p class="note">{escape(line)}</p>' for line in active_failover_lines(doc, w)]
    for key, title in (("security_scans", "scans"), ("performance", "perf")):
        body.append(f"<h2>{w[title]}</h2><p>{escape(runs_line(doc[key], w))}</p>")
    body.append(f"<h2>{w['support']}</h2>")
    sup = doc["support"]
    if not sup["available"]:
        body.append(_note(f"{w['unavailable']}: {sup['note']}"))
    else:
        bank = sup["time_bank"]
        body.append(
            _table(
                [w["time_bank"], w["included"], w["carried"], w["charged"], w["left"], w["over"]],
                [
                    [
                        bank["month"],
                        *(
                            duration(bank[k])
                            for k in (
                                "included_minutes",
                                "carried_in_minutes",
                                "charged_minutes",
                                "left_minutes",
                                "over_minutes",
                            )
                        ),
                    ]
                ],
            )
        )
        rows = [
            [
                escape(s["severity"]),
                str(s["tickets"]),
                _outcomes(s["response"], s["response_promise"], w),
                _outcomes(s["fix"], s["fix_promise"], w),
            ]
            for s in sup["severities"]
        ]
        body.append(_table([w["severity"], w["tickets"], w["response_t"], w["fix"]], rows))
    body.append(f"<h2>{w['credits']}</h2><p>{escape(credit_line(doc['credits'], w))}</p>")
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{w['title']}: {escape(client['name'])} {escape(doc['period']['label'])}</title>"
        f"<style>:root {{ --accent: {branding.accent}; }}{CSS}</style></head><body>" + "".join(body) + "</body></html>"
    )


def _lock_line(lock: int, w: dict[str, str]) -> str:
    return f"{w['locked']}: {lock}" if lock else w["not_locked"]


def _outcomes(o: dict[str, int], promise: str, w: dict[str, str]) -> str:
    return f"{o['met']} {w['met']} · {o['missed']} {w['missed']} · {o['open']} {w['open']} ({escape(promise)})"


def _in_window(incident: dict[str, Any], w: dict[str, str]) -> str:
    minutes = incident["maintenance_minutes"]
    return f'<br><span class="note">{w["in_window"]}: {duration(minutes)}</span>' if minutes else ""
