"""status [--json]: the last result of each job per site, from the local journal."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..journal import Journal
from ..lock import SiteLock

JOBS = ("backup", "prune", "check", "restore", "init", "update")


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
            if end is not None and end.get("run_id") == start.get("run_id"):
                state = end.get("result", "unknown")
            elif running:
                state = "running"
            else:
                state = "interrupted"  # a start without its end: the agent crashed or was killed
            jobs[job] = {
                "state": state,
                "started": start.get("ts"),
                "ended": end.get("ts") if end else None,
                "duration": end.get("duration") if end else None,
                "message": end.get("message") if end else None,
                "figures": end.get("figures") if end else None,
                "run_id": start.get("run_id"),
            }
        sites[site_id] = {"running": running, "jobs": jobs}
    return {"host": config.agent.host, "sites": sites}


def render(data: dict[str, Any]) -> str:
    rows = [("SITE", "JOB", "STATE", "ENDED", "SECONDS", "MESSAGE")]
    for site_id, site in data["sites"].items():
        if not site["jobs"]:
            rows.append((site_id, "-", "never run", "", "", ""))
        for job, info in site["jobs"].items():
            rows.append(
                (
                    site_id,
                    job,
                    info["state"],
                    (info["ended"] or "")[:19],
                    "" if info["duration"] is None else f"{info['duration']:.1f}",
                    (info["message"] or "")[:80],
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows)


def healthy(data: dict[str, Any]) -> bool:
    return all(info["state"] in ("ok", "running") for s in data["sites"].values() for info in s["jobs"].values())
