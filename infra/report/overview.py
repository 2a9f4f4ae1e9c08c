"""The agency's overview page of `carestack report --all`: one row per client and site, risks first.

Built from the clients' report documents only. A site is at risk when a target is missed or more
than `AT_RISK_SHARE` of its downtime budget is gone; findings name what needs attention.
"""

from __future__ import annotations

from html import escape
from typing import Any

from infra.report.branding import Branding
from infra.report.fmt import DASH, duration, local, percent
from infra.report.render_html import CSS
from infra.report.text import TEXT

AT_RISK_SHARE = 0.8


def findings(doc: dict[str, Any], site: dict[str, Any]) -> list[str]:
    out = []
    up, b = site["uptime"], site["backups"]
    if not up["available"]:
        out.append(f"no monitoring data: {up['note']}")
    else:
        budget = up["budget"]
        if up["met"] is False:
            out.append("uptime target missed")
        elif budget["allowed_minutes"] and budget["used_minutes"] > AT_RISK_SHARE * budget["allowed_minutes"]:
            out.append("downtime budget nearly used")
        if any(i["ongoing"] for i in site["incidents"] or []):
            out.append("incident ongoing")
    if not b["available"]:
        out.append(f"backups not read: {b['note']}")
    else:
        if not b["rpo_met"]:
            out.append(f"RPO missed ({duration(b['achieved_rpo_minutes'])} without a complete backup)")
        if not b["retention_held"]:
            out.append("retention not (yet) held")
    checks = doc["integrity_checks"]
    if checks["available"] and any(r["site"] == site["id"] and r["result"] == "failed" for r in checks["runs"]):
        out.append("integrity check failed")
    scans = doc["security_scans"]
    latest = [r for r in scans.get("runs", []) if r["site"] == site["id"]] if scans["available"] else []
    if latest and any(latest[-1]["figures"].get(k) for k in ("critical", "high")):
        out.append("security findings (critical or high)")
    updates = doc["updates"]
    if updates["available"] and any(c["site"] == site["id"] for c in updates["rolled_back"]):
        out.append("update rolled back")
    return out


def rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        for site in doc["sites"]:
            up, b, upd = site["uptime"], site["backups"], doc["updates"]
            runs = [r for r in upd.get("runs", []) if r["site"] == site["id"]] if upd["available"] else []
            last_update = next((r for r in reversed(runs) if r["job"] == "update"), None)
            last_rollback = next((c for c in reversed(upd.get("rolled_back", [])) if c["site"] == site["id"]), None)
            out.append(
                {
                    "client": doc["client"]["name"],
                    "client_id": doc["client"]["id"],
                    "site": site["domain"],
                    "tier": doc["client"]["tier_title"],
                    "timezone": doc["period"]["timezone"],
                    "uptime_percent": up.get("percent"),
                    "target_percent": doc["targets"]["uptime_percent"],
                    "budget_left_minutes": up["budget"]["left_minutes"] if up["available"] else None,
                    "last_complete_backup": b["snapshots"][-1] if b["available"] and b["snapshots"] else None,
                    "last_update": last_update,
                    "last_rollback": last_rollback,
                    "findings": findings(doc, site),
                }
            )
    return sorted(out, key=lambda r: (-len(r["findings"]), r["client"], r["site"]))


def render_index(docs: list[dict[str, Any]], links: dict[str, str], lang: str, branding: Branding, label: str) -> str:
    w = TEXT[lang]
    head = [
        w["client"],
        w["site"],
        w["tier"],
        w["uptime"],
        w["budget_left"],
        w["last_backup"],
        w["last_update"],
        w["findings"],
    ]
    body = []
    for r in rows(docs):
        tz = r["timezone"]
        update = (
            DASH if r["last_update"] is None else f"{local(r['last_update']['ended'], tz)} {r['last_update']['result']}"
        )
        if r["last_rollback"] is not None:
            update += f"<br>{w['rolled_back']}: {escape(r['last_rollback']['component'])}"
        cls = "bad" if r["findings"] else "ok"
        body.append(
            "<tr>"
            f'<td><a href="{escape(links[r["client_id"]])}">{escape(r["client"])}</a></td><td>{escape(r["site"])}</td>'
            f"<td>{escape(r['tier'])}</td><td>{percent(r['uptime_percent'])} / {r['target_percent']:g} %</td>"
            f"<td>{duration(r['budget_left_minutes'])}</td><td>{local(r['last_complete_backup'], tz)}</td>"
            f'<td>{update}</td><td class="{cls}">{escape("; ".join(r["findings"]) or DASH)}</td></tr>'
        )
    table = "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table>"
    title = f"{w['overview']}: {escape(branding.name)}" if branding.name else w["overview"]
    css = CSS.replace("@page { size: A4; margin: 14mm 12mm; }", "@page { size: A4 landscape; margin: 10mm; }")
    css = css.replace("max-width: 186mm", "max-width: 277mm")
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>:root {{ --accent: {branding.accent}; }}{css}</style></head><body>"
        f'<header><h1>{title}</h1><div class="meta">{w["period"]}: {escape(label)}</div></header>{table}</body></html>'
    )
