"""backup SITE: files and the database in one snapshot, then forget by the plan's keep-*.

One snapshot per run: restic backs up the site's paths plus a FUSE mount
(`streamfs`) whose single file is `mariadb-dump --single-transaction`'s stdout,
so the dump is streamed into the snapshot and never written to disk. The dump's
exit status decides whether the snapshot counts: if the dump failed, restic is
told so (EIO on the last read, restic exits 3) and the snapshot it may still
have written is forgotten at once; the job fails.

Tags: site:<id>, reason:<scheduled|pre-update|manual|offboard>, db:<name> (when there is
a database), owner:<uid>:<gid>; host via --host. The snapshot is tagged
`incomplete` until everything in it succeeded, then `complete` (completion.py).
`prune` is not run here: it has its own timer.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from .. import exitcodes, owners, restic_commands
from ..config import Config
from ..hooks import mariadb
from ..jobs import Context, JobFailed, JobResult, Settle, human_bytes, run_job
from ..proc import Watchdog, terminate
from ..restic import ResticResult, endpoint_name
from ..streamfs import StreamFile, clear_stale_mount
from . import completion
from .common import dump_dir

log = logging.getLogger("carestack_agent.backup")

# Less free space than this in the spool after a failed dump: the disk ran full (a dump writes in smaller pieces).
SPOOL_FULL_BYTES = 1024 * 1024
REASONS = ("scheduled", "pre-update", "manual", "offboard")  # why a backup ran: tagged reason:<it> on the snapshot


def backup_args(ctx: Context, reason: str) -> list[str]:
    """The site's paths, and with a database the dump's mount (its single file is the dump)."""
    site = ctx.site
    dump = [dump_dir(ctx.config, site.id)] if site.database is not None else []
    return restic_commands.backup(
        host=ctx.config.agent.host,
        site_id=site.id,
        reason=reason,
        paths=[*site.paths, *dump],
        database=site.database.name if site.database is not None else None,
        owner_tag=owners.tag_for(site.root),
        exclude=site.exclude,
    )


def _backup_once(ctx: Context, reason: str) -> tuple[ResticResult, str | None, int]:
    """One attempt; returns restic's result, the dump failure (or None) and the dump's size."""
    args = backup_args(ctx, reason)
    site, settings = ctx.site, ctx.config.agent
    if site.database is None:
        return ctx.restic.run_raw(args, ctx.deadline), None, 0
    mount = dump_dir(ctx.config, site.id)
    ctx.restic.env()  # secrets are checked before the dump starts
    if settings.dump_transport == "spool":
        return _backup_spooled(ctx, args, mount)
    proc, err = mariadb.start_dump(settings, site.database.name, site.database.socket)
    assert proc.stdout is not None
    dump_ended: list[float] = []
    ctx.figures.pop("dump_cut_by_stall", None)

    def finish() -> str | None:
        dump_ended.append(time.monotonic())
        return mariadb.finish_dump(proc, err)

    stream = StreamFile(mount, f"{site.database.name}.sql", proc.stdout.fileno(), finish)
    try:
        stream.start()
        result = ctx.restic.run_raw(args, ctx.deadline)
    finally:
        if proc.poll() is None:  # restic stopped before the end of the dump (or the dump hangs)
            terminate(proc, grace=2)
        stream.stop()
        proc.stdout.close()
    failure = stream.failure
    if failure is None and not stream.eof:
        failure = "the dump was not read to its end (restic stopped early)"
        if result.returncode == 0:  # cannot happen unless restic skipped the file: never count it as good
            failure = "restic did not read the database dump"
    if failure is not None:
        failure = _blame_stall(ctx, result, failure, dump_ended[0] if dump_ended else time.monotonic())
    return result, failure, stream.bytes_served


def _blame_stall(ctx: Context, result: ResticResult, failure: str, dump_ended: float) -> str:
    """A dump that died while its reader (restic) was stalled on the repository is the stall's fault.

    mariadb-dump blocks on its full pipe while restic waits for S3, and the
    server drops the idle connection after its net_write_timeout: the dump's
    "Lost connection" is then a consequence, and the message leads with the stall.
    """
    during = [p for p in result.pauses if p.began < dump_ended]
    if not during:
        return failure
    longest = max(p.seconds for p in during)
    ctx.figures["dump_cut_by_stall"] = True
    return (
        f"{endpoint_name(ctx.site.repository)} stalled for {longest:.0f} s while the database dump was read, "
        f"and the dump was cut off ({failure})"
    )


def _backup_spooled(ctx: Context, args: list[str], mount: Path) -> tuple[ResticResult, str | None, int]:
    """Fallback for hosts without /dev/fuse: the dump goes to a private file first, deleted afterwards.

    Same path inside the snapshot as the streamed dump, so restores do not care
    which transport made it. The dump's exit status is checked before restic runs.
    """
    site, settings = ctx.site, ctx.config.agent
    assert site.database is not None
    clear_stale_mount(mount)
    mount.mkdir(parents=True, exist_ok=True)
    os.chmod(mount, 0o700)
    path = mount / f"{site.database.name}.sql"
    path.unlink(missing_ok=True)
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), "wb") as out:
            proc, err = mariadb.start_dump(settings, site.database.name, site.database.socket, stdout=out)
            with Watchdog(ctx.deadline, [proc]) as dog:
                failure = mariadb.finish_dump(proc, err)
        if failure is not None and _spool_full(mount, failure):
            failure = f"no space left in the dump spool {mount} ({failure})"
        if failure is not None:
            raise JobFailed(f"database dump failed: {'killed at the deadline' if dog.fired else failure}")
        size = path.stat().st_size
        return ctx.restic.run_raw(args, ctx.deadline), None, size
    finally:
        path.unlink(missing_ok=True)


def _spool_full(mount: Path, failure: str) -> bool:
    """Whether a failed spooled dump ran out of disk (mariadb-dump says only "Got errno 28 on write")."""
    fs = os.statvfs(mount)
    return "errno 28" in failure or fs.f_bavail * fs.f_frsize < SPOOL_FULL_BYTES


def do_backup(ctx: Context, reason: str) -> str:
    """The body of a backup, for callers that hold the site lock (update-with-rollback)."""
    site, restic = ctx.site, ctx.restic
    ctx.figures["reason"] = reason
    restic.env()
    clear_stale_mount(dump_dir(ctx.config, site.id))
    ctx.prepare()
    attempts = 0

    def attempt() -> tuple[ResticResult, str | None, int]:
        nonlocal attempts
        attempts += 1
        result, failure, dumped = _backup_once(ctx, reason)
        if result.snapshot_id is None:
            # no snapshot: restic itself failed (a dump cut short is only a consequence)
            raise restic.classify(result, "backup")
        return result, failure, dumped

    started = time.monotonic()
    result, failure, dumped = ctx.retry(attempt, "backup")
    snap = result.snapshot_id
    summary: dict[str, Any] = result.summary or {}
    ctx.figures.update(
        {
            "snapshot_id": snap,
            "files_new": summary.get("files_new"),
            "files_changed": summary.get("files_changed"),
            "files_unmodified": summary.get("files_unmodified"),
            "bytes_added": summary.get("data_added"),
            "bytes_processed": summary.get("total_bytes_processed"),
            "dump_bytes": dumped if site.database is not None else None,
            "backup_seconds": round(time.monotonic() - started, 3),
            "attempts": attempts,
        }
    )
    if failure is not None:
        discarded = _forget_bad(ctx, snap)
        ctx.figures["snapshot_id"] = None
        ctx.figures["discarded_snapshot"] = snap
        what = (
            f"; snapshot {snap} discarded"
            if discarded
            else (
                f"; snapshot {snap} could NOT be discarded (it stays tagged incomplete: never restored or"
                " counted by retention, and the next backup forgets it)"
                if snap
                else ""
            )
        )
        if ctx.figures.get("dump_cut_by_stall"):  # the repository's fault, not the database's
            raise JobFailed(f"{failure}{what}", exitcodes.UNAVAILABLE)
        raise JobFailed(f"database dump failed: {failure}{what}")
    if result.returncode == 3:  # restic saved what it could read: never the run's good snapshot
        ctx.figures["snapshot_id"] = None
        ctx.figures["incomplete_snapshot"] = snap
        unread = [str(e.get("item", "?")) for e in result.errors][:3]
        raise JobFailed(
            f"snapshot {snap} is incomplete: {len(result.errors)} file(s) could not be read, e.g. {', '.join(unread)}"
            " (it stays tagged incomplete: never restored or counted, and the next backup forgets it)"
        )
    assert snap is not None
    snap, found = completion.mark_complete(ctx, snap)  # the tag gives the snapshot a new id
    ctx.figures["snapshot_id"] = snap
    forget_args = restic_commands.forget_by_retention(site.id, site.retention)
    try:
        completion.settle_others(ctx, found)
        ctx.retry(lambda: restic.run(forget_args, ctx.deadline, what="forget"), "forget")
    except Exception as e:
        raise JobFailed(f"snapshot {snap} saved, but forget failed: {getattr(e, 'message', e)}") from e
    stall_note = restic.stall_note(result, ctx.figures)
    return (
        f"snapshot {snap}: {summary.get('total_files_processed', 0)} files "
        f"({summary.get('files_new', 0)} new, {summary.get('files_changed', 0)} changed), "
        f"{human_bytes(summary.get('data_added', 0))} added"
        + (f", db {human_bytes(dumped)}" if site.database is not None else "")
        + f", {time.monotonic() - started:.1f}s"
        + stall_note
    )


def _forget_bad(ctx: Context, snap: str | None) -> bool:
    if not snap:
        return False
    try:
        ctx.retry(lambda: ctx.restic.run(restic_commands.forget_snapshot(snap), ctx.deadline, what="forget"), "forget")
        log.warning("backup %s: snapshot %s discarded because the database dump failed", ctx.site.id, snap)
        return True
    except Exception:
        log.error("backup %s: could not discard snapshot %s with a failed dump", ctx.site.id, snap)
        return False


def backup(
    config: Config, site_id: str, reason: str = "manual", *, wait: bool = False, settle: Settle | None = None
) -> JobResult:
    """Back up one site with a reason; the result's figures carry `snapshot_id`."""
    if reason not in REASONS:
        return JobResult("backup", site_id, False, f"unknown reason {reason!r}", exitcodes.USAGE, "")
    site = config.site(site_id)
    return run_job(
        config,
        site_id,
        "backup",
        lambda ctx: do_backup(ctx, reason),
        timeout=site.jobs.backup_timeout_seconds,
        wait=wait,
        settle=settle,
        extra={"reason": reason},
    )
