"""Which snapshots count: marking a backup's snapshot complete, forgetting incomplete ones, tagging old ones.

A backup's snapshot is written tagged `incomplete`. Only when everything in it
succeeded (files, the dump, restic's exit) does the backup swap the tag for
`complete` (`restic tag` writes the snapshot anew under another id: the new
id is the backup's). Then, in the same run:
- snapshots made before these tags existed are tagged once: complete when they
  hold every part they name (with a database, the dump file), else incomplete;
- every incomplete snapshot of the site is forgotten (a failed backup whose
  own cleanup could not reach S3 is retried here, by the next good backup);
- retention counts and forgets complete snapshots only.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from .. import restic_commands, snapshots
from ..jobs import Context, JobFailed
from ..snapshots import Snapshot

log = logging.getLogger("carestack_agent.backup")


def mark_complete(ctx: Context, snap: str) -> tuple[str, list[Snapshot]]:
    """Tag the backup's snapshot complete; its new short id, and the site's snapshots as listed after."""
    restic = ctx.restic
    try:
        ctx.retry(functools.partial(restic.run, restic_commands.mark_complete(snap), ctx.deadline, what="tag"), "tag")
        found = ctx.retry(lambda: restic.snapshots(ctx.deadline), "snapshots")
    except Exception as e:
        raise JobFailed(
            f"snapshot {snap} saved, but it could not be marked complete: {getattr(e, 'message', e)}; "
            "it does not count and the next backup forgets it"
        ) from e
    marked = snapshots.find_rewritten(found, snap)
    if marked is None or not snapshots.is_complete(marked):
        raise JobFailed(f"snapshot {snap} saved, but restic did not list it as complete after tagging")
    return snapshots.short_id(marked), found


def settle_others(ctx: Context, found: list[Snapshot]) -> None:
    """Tag the site's pre-tag snapshots once, then forget its incomplete ones (figures say how many)."""
    legacy = [s for s in found if snapshots.is_legacy(s)]
    if legacy:
        _tag_legacy(ctx, legacy)
    incomplete = [s for s in found if snapshots.is_incomplete(s)]
    if legacy or incomplete:  # a legacy one without its dump is incomplete now
        args = restic_commands.forget_incomplete(ctx.site.id)
        ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="forget"), "forget")
        ctx.figures["incomplete_forgotten"] = [snapshots.short_id(s) for s in incomplete]


def _tag_legacy(ctx: Context, legacy: list[Snapshot]) -> None:
    good: list[Snapshot] = []
    bad: list[Snapshot] = []
    for snap in legacy:
        parts = snapshots.parts_of(snap)
        if parts.database is None:
            good.append(snap)
            continue
        dirs = [parts.dump_dir] if parts.dump_dir is not None else []
        listed: set[Path] = set()
        if dirs:
            args = restic_commands.ls(str(snap["id"]), dirs)
            result = ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="ls"), "ls")
            listed = snapshots.listed_paths(result.documents)
        missing = snapshots.missing_parts(parts, listed, files=False)
        (bad if missing else good).append(snap)
    for complete, group in ((True, good), (False, bad)):
        if group:
            args = restic_commands.mark([str(s["id"]) for s in group], complete=complete)
            ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="tag"), "tag")
    ctx.figures["pre_tag_snapshots"] = {
        "complete": [snapshots.short_id(s) for s in good],
        "incomplete": [snapshots.short_id(s) for s in bad],
    }
    if bad:
        log.warning("backup %s: snapshots without their database dump (made before the complete tag): %s; "
                    "forgotten", ctx.site.id, ", ".join(snapshots.short_id(s) for s in bad))  # fmt: skip
