"""prune SITE: remove data no snapshot references (on its own timer: slow and costly on S3).

`forget` with the plan's keep-* already runs after every backup; prune only
reclaims the space. On an object-locked bucket prune's deletes only add delete
markers; the versions go when the lock and the lifecycle allow.
"""

from __future__ import annotations

from .. import restic_commands
from ..config import Config
from ..jobs import Context, JobResult, Settle, run_job


def do_prune(ctx: Context) -> str:
    ctx.prepare()
    result = ctx.retry(lambda: ctx.restic.run(restic_commands.prune(), ctx.deadline, what="prune"), "prune")
    ctx.figures["prune_seconds"] = round(result.duration, 3)
    return f"pruned in {result.duration:.1f}s" + ctx.restic.stall_note(result, ctx.figures)


def prune(config: Config, site_id: str, *, wait: bool = False, settle: Settle | None = None) -> JobResult:
    site = config.site(site_id)
    return run_job(
        config, site_id, "prune", do_prune, timeout=site.jobs.prune_timeout_seconds, wait=wait, settle=settle
    )
