"""check SITE: `restic check` reading a rotating subset of the data.

With check_read_data_subsets = N > 1, run k reads `--read-data-subset=k/N`
and k advances (1..N) only when a check passes, so every pack is read over N
successful runs. N = 1 reads everything each time. The rotation is kept in
<state_dir>/check/<site>.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import restic_commands
from ..config import Config
from ..jobs import Context, JobResult, Settle, run_job


def rotation_file(ctx: Context) -> Path:
    return ctx.config.agent.state_dir / "check" / f"{ctx.site.id}.json"


def next_subset(path: Path, n: int) -> int:
    try:
        k = int(json.loads(path.read_text())["next"])
    except (OSError, ValueError, KeyError, TypeError):
        k = 1
    return k if 1 <= k <= n else 1


def save_subset(path: Path, k: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"next": k}))
    os.replace(tmp, path)


def do_check(ctx: Context) -> str:
    n = ctx.site.jobs.check_read_data_subsets
    path = rotation_file(ctx)
    k = next_subset(path, n)
    args = restic_commands.check(k, n)
    ctx.figures["subset"] = f"{k}/{n}"
    ctx.prepare()
    result = ctx.retry(lambda: ctx.restic.run(args, ctx.deadline, what="check"), "check")
    save_subset(path, k % n + 1)
    ctx.figures["check_seconds"] = round(result.duration, 3)
    return f"repository ok, data subset {k}/{n} read, {result.duration:.1f}s" + ctx.restic.stall_note(
        result, ctx.figures
    )


def check(config: Config, site_id: str, *, wait: bool = False, settle: Settle | None = None) -> JobResult:
    site = config.site(site_id)
    return run_job(
        config, site_id, "check", do_check, timeout=site.jobs.check_timeout_seconds, wait=wait, settle=settle
    )
