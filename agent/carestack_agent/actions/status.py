"""status [--json]: the last result of each job per site, from the local journal.

The verdict (exit 0 or 1) judges what runs on the schedule: the last backup,
prune, check and update of each site, and any update rollback nobody has
dealt with yet. An operator's own verbs (a restore, an init, a settle) are
shown but do not turn status red: a mistyped `restore --before` would
otherwise keep it red until the next successful restore.
"""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..journal import Journal
from ..lock import SiteLock
from ..providers.failed import FailedVersions, retry_name

JOBS = ("backup", "prune", "check", "update", "restore", "init", "settle")
SCHEDULED = ("backup", "prune", "check", "update")


def collect(config: Config) -> dict[str, Any]:
    results = Journal(config.agent.state_dir).last_results()
    sites: dict[str, Any] = {}
    for site_id in sorted(config.sites):
        running = SiteLock(config.agent.state_dir, site_id, "status").is_held()
        jobs: dict[str, Any] = {}
        for job in JOBS:
            slot = results.get((site_id, job))
            if not slot or "last_start" not in slot:
                continue
            start, end = slot["last_start"], slot.get("last_end")
            if end is not None and end.get("run_id") != start.get("run_id"):
                end = None  # the last end belongs to an earlier run: nothing of it describes this one
            if end is not None:
                state = end.get("result", "unknown")
            elif running:
                state = "running"
            else:
                state = "interrupted"  # a start without its end: the agent crashed or was killed
            figures = end.get("figures") if end else None
            jobs[job] = {
                "state": state,
                "started": start.get("ts"),
                "ended": end.get("ts") if end else None,
                "duration": end.get("duration") if end else None,
                "message": end.get("message") if end else _interrupted_at(slot, start),
                "figures": figures,
                "run_id": start.get("run_id"),
                "scheduled": job in SCHEDULED,
            }
            if figures and figures.get("recovered_by"):
                jobs[job]["recovered_by"] = figures["recovered_by"]
            if figures and figures.get("finished_update"):
                jobs[job]["settled_first"] = figures["finished_update"]
        held = [f.figures() for f in FailedVersions(config.agent.state_dir, site_id).entries()]
        sites[site_id] = {"running": running, "jobs": jobs, "failed_versions": held}
    return {"host": config.agent.host, "sites": sites}


def _interrupted_at(slot: dict[str, Any], start: dict[str, Any]) -> str | None:
    step = slot.get("last_step")
    if step is not None and step.get("run_id") == start.get("run_id"):
        return f"stopped at step {step.get('step')}"
    return None


def render(data: dict[str, Any]) -> str:
    rows = [("SITE", "JOB", "STATE", "STARTED", "ENDED", "SECONDS", "MESSAGE")]
    notes: list[str] = []
    for site_id, site in data["sites"].items():
        if not site["jobs"]:
            rows.append((site_id, "-", "never run", "", "", "", ""))
        for job, info in site["jobs"].items():
            message = info["message"] or ""
            if info.get("recovered_by"):
                message = f"[finished by {info['recovered_by']}] {message}"
            rows.append(
                (
                    site_id,
                    job,
                    info["state"] + ("" if info["scheduled"] else " (operator)"),
                    (info["started"] or "")[:19],
                    (info["ended"] or "")[:19],
                    "" if info["duration"] is None else f"{info['duration']:.1f}",
                    message[:100],
                )
            )
            settled = info.get("settled_first")
            if settled:
                notes.append(f"{site_id} {job} first settled update run {settled.get('run_id')} "
                             f"(started {settled.get('started')}): {settled.get('message')}")  # fmt: skip
        for f in site.get("failed_versions", []):
            state = "OPEN, not acknowledged" if f["open"] else "held"
            retry = f"carestack-agent update {site_id} --retry {retry_name(f['component'])}"
            notes.append(f"{site_id} broke the site, {state}: {f['label']} {f['from'] or '(none)'}→{f['version']} "
                         f"on {f['when'][:10]} ({f['broke'] or 'rolled back'}); `{retry}` offers it again")  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)) + "  " + r[6] for r in rows)
    return table + "".join("\n" + n for n in notes)


def healthy(data: dict[str, Any]) -> bool:
    """Every scheduled job's last run succeeded (or runs now), and no update rollback waits for an operator."""
    jobs_ok = all(
        info["state"] in ("ok", "running")
        for s in data["sites"].values()
        for info in s["jobs"].values()
        if info["scheduled"]
    )
    return jobs_ok and not any(f["open"] for s in data["sites"].values() for f in s.get("failed_versions", []))
