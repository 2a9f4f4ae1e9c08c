"""restore SITE: files and database from one complete snapshot, all or nothing, leaving the site working.

Only complete snapshots are restored (see snapshots.py), and before anything
changes the chosen snapshot is checked to hold every part the restore takes:
the site's paths and, with a database, its dump.

In place (no --target), everything is staged first: each backed-up path is
restored into a fresh staging directory next to it (same file system) while,
at the same time, the dump is restored as a file (root-only, beside the dump's
mount point) and imported into a staging database. Only then are the files swapped in
(one renameat2(RENAME_EXCHANGE) per path) and, right after, the tables (one
RENAME TABLE), so the window in which the site has the snapshot's files but
its previous database is a few system calls and one statement long. If the
database swap fails, the files are swapped back: the site is as it was, and the
message says so (or says exactly what it has, if even that failed).

Staging directories start empty, and leftovers of interrupted runs (staged
trees, old trees an exchange parked) are removed before a restore stages, so
nothing from an earlier run is ever merged in.

With --target DIR: the files land under DIR with their absolute paths (restic's
layout), nothing live is touched. The database then goes to --database-socket /
--database-name when given (for example a standby's server); otherwise the dump
is left as a plain .sql file under DIR.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from .. import fsops, owners, restic_commands, snapshots
from ..config import Config, Site
from ..hooks import mariadb
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..proc import Deadline, Watchdog
from ..snapshots import Parts, Snapshot
from .common import dump_dir

log = logging.getLogger("carestack_agent.restore")

T = TypeVar("T")

STAGING = "restore"  # fsops purpose: staging directories are named .cs-restore-<name>-<run>


@dataclass(frozen=True)
class RestoreOptions:
    snapshot: str | None = None
    before: datetime | None = None
    target: Path | None = None
    database_socket: Path | None = None
    database_name: str | None = None
    files: bool = True
    database: bool = True


parse_time = snapshots.parse_time


def candidates(found: list[Snapshot], opts: RestoreOptions) -> list[Snapshot]:
    """The snapshots a restore may take, best first: the one named, or the complete ones (newest first)."""
    if not found:
        raise JobFailed("no snapshots of this site in the repository")
    if opts.snapshot:
        named = [s for s in found if str(s.get("id", "")).startswith(opts.snapshot)]
        if len(named) != 1:
            raise JobFailed(f"snapshot {opts.snapshot}: {'not found' if not named else 'ambiguous'} for this site")
        if snapshots.is_incomplete(named[0]):
            raise JobFailed(
                f"snapshot {snapshots.short_id(named[0])} is incomplete (its backup failed: files, database dump "
                "or restic did not finish): not restored; nothing was changed"
            )
        return named
    usable = [s for s in snapshots.newest_first(found) if not snapshots.is_incomplete(s)]
    if not usable:
        raise JobFailed(f"no complete snapshot of this site in the repository ({len(found)} incomplete)")
    if opts.before is not None:
        before = opts.before
        usable = [s for s in usable if parse_time(str(s["time"])) <= before]
        if not usable:
            raise JobFailed(f"no complete snapshot of this site taken before {before.isoformat()}")
    return usable


def choose_snapshot(found: list[Snapshot], opts: RestoreOptions) -> Snapshot:
    """The best candidate, before its parts are checked (see `choose_restorable`)."""
    return candidates(found, opts)[0]


def split_paths(snapshot: Snapshot) -> tuple[list[Path], Path | None]:
    """The site's paths, and the dump's mount directory, as recorded in the snapshot."""
    parts = snapshots.parts_of(snapshot)
    return parts.paths, parts.dump_dir


@dataclass
class Plan:
    """What a restore takes from which snapshot, checked against the snapshot's listing."""

    snapshot: Snapshot
    parts: Parts
    files: bool
    database: bool  # the dump goes into a database server
    dump_as_file: bool  # with --target and no database server: the dump is left as a file under the target
    skipped: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.snapshot["id"])

    @property
    def short(self) -> str:
        return snapshots.short_id(self.snapshot)


def _plan(ctx: Context, snap: Snapshot, opts: RestoreOptions) -> tuple[Plan, list[Path]]:
    """What a restore of `snap` takes, and the directories whose listing shows whether the snapshot holds it."""
    parts = snapshots.parts_of(snap)
    wants_db = opts.database and (parts.database is not None or ctx.site.database is not None)
    to_server = opts.target is None or bool(opts.database_socket or opts.database_name)
    plan = Plan(snap, parts, opts.files, wants_db and to_server, wants_db and not to_server)
    dirs = (parts.paths if opts.files else []) + ([parts.dump_dir] if wants_db and parts.dump_dir else [])
    return plan, dirs


def _missing(plan: Plan, opts: RestoreOptions, listed: set[Path]) -> list[str]:
    wants_db = plan.database or plan.dump_as_file
    missing = snapshots.missing_parts(plan.parts, listed, files=opts.files, database=wants_db)
    if wants_db and plan.parts.database is None:
        missing.append("a database dump (it was taken without one; the site has a database)")
    return missing


def newest_complete_in_one_call(ctx: Context, opts: RestoreOptions) -> Plan | None:
    """The usual restore's choice (the newest complete snapshot, checked to hold every part) in one restic call.

    Each restic command opens the repository, and an open costs restic's key
    derivation (about half a second of CPU): `restic ls` selecting `latest` by the
    site's complete tag names the snapshot and lists its parts in one open instead
    of `snapshots` and then `ls`. It lists where this server keeps the site; a
    snapshot recorded elsewhere (another server's paths) or lacking a part gives
    None, and the caller chooses from the full list as before.
    """
    if opts.snapshot or opts.before:
        return None
    site = ctx.site
    with_dump = opts.database and site.database is not None
    dirs = (list(site.paths) if opts.files else []) + ([dump_dir(ctx.config, site.id)] if with_dump else [])
    if not dirs:
        return None
    args = restic_commands.ls_newest_complete(site.id, dirs)
    result = ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="ls"), "ls")
    snap = next((d for d in result.documents if isinstance(d, dict) and d.get("struct_type") == "snapshot"), None)
    if snap is None or not snapshots.is_complete(snap):
        return None
    plan, wanted = _plan(ctx, snap, opts)
    if not set(wanted) <= set(dirs) or _missing(plan, opts, snapshots.listed_paths(result.documents)):
        return None
    return plan


def choose_restorable(ctx: Context, found: list[Snapshot], opts: RestoreOptions) -> Plan:
    """The newest candidate that holds every part the restore takes; nothing changes before this passes.

    A complete snapshot that lacks a part fails the restore (the repository lost
    something); a snapshot made before the complete tag existed that lacks one is
    passed over for an older one (that is how a pre-tag backup with a failed dump looks).
    """
    skipped: list[str] = []
    site = ctx.site
    for snap in candidates(found, opts):
        plan, dirs = _plan(ctx, snap, opts)
        plan.skipped = skipped
        listed: set[Path] = set()
        if dirs:
            args = restic_commands.ls(plan.id, dirs)
            result = ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="ls"), "ls")
            listed = snapshots.listed_paths(result.documents)
        missing = _missing(plan, opts, listed)
        if not missing:
            return plan
        lacks = f"snapshot {plan.short} lacks {' and '.join(missing)}"
        if snapshots.is_complete(snap) or opts.snapshot:
            raise JobFailed(f"{lacks}: not restored; nothing was changed")
        skipped.append(f"{lacks} (made before snapshots were marked complete)")
        log.warning("restore %s: %s; trying an older one", site.id, skipped[-1])
    raise JobFailed(f"no snapshot holds every part to restore: {'; '.join(skipped)}; nothing was changed")


@dataclass
class StagedPath:
    live: Path
    staging: Path  # the fresh staging directory (restic's layout below it)
    restored: Path  # the snapshot's tree inside it; after the swap, the old live tree (if there was one)
    existed: bool = True
    swapped: bool = False


def _stage_files(ctx: Context, plan: Plan, staged: list[StagedPath]) -> None:
    """Each path restored into a fresh staging directory beside it; owners mapped (see owners)."""
    here = owners.owner_of(ctx.site.root)
    owner = owners.from_tags(snapshots.tags(plan.snapshot))
    for path in plan.parts.paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = fsops.fresh_dir(fsops.staging_path(path, STAGING, ctx.run_id))
        item = StagedPath(path, staging, staging / path.relative_to("/"))
        staged.append(item)  # before restic writes: a failure below still removes it
        args = restic_commands.restore(plan.id, staging, include=path)
        ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="restore"), "restore")
        if not item.restored.exists():
            raise JobFailed(f"snapshot {plan.short} has nothing under {path}; nothing was changed")
        if owner is not None and here is not None and owner != here:
            handed = owners.hand_over(item.restored, owner, here)
            ctx.figures["owner_mapped"] = f"{owner[0]}:{owner[1]} -> {here[0]}:{here[1]}"
            ctx.figures["owner_mapped_entries"] = ctx.figures.get("owner_mapped_entries", 0) + handed


@dataclass
class StagedDatabase:
    target: mariadb.Target
    staging: str
    snapshot: str
    dump_file: str
    dump_staging: Path  # the dump restored as a file (root-only), imported from there
    swap: mariadb.Swap | None = None  # None: views/triggers/routines, imported into the recreated database
    recreated: bool = False  # the live database was dropped for a direct import
    done: bool = False
    live_since: float = 0.0  # monotonic time at which the restored database was live


def _staged_dump(ctx: Context, staged: StagedDatabase) -> Path:
    """The snapshot's dump restored as a file beside this server's dump mount point, in a root-only directory.

    One `restic restore` fetches the dump's blobs in parallel; `restic dump` piped into
    the import fetched them one by one while the import waited (measured in bench/).
    """
    staging = fsops.fresh_dir(staged.dump_staging)
    staging.chmod(0o700)
    args = restic_commands.restore(staged.snapshot, staging, include=Path(staged.dump_file))
    ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="restore"), "restore")
    file = staging / Path(staged.dump_file).relative_to("/")
    if not file.is_file():
        raise JobFailed(f"snapshot {staged.snapshot[:8]}: the database dump {staged.dump_file} did not arrive")
    return file


def _import(ctx: Context, dump: Path, socket: Path, database: str) -> None:
    """The staged dump file imported by `mariadb` into `database`."""
    with open(dump, "rb") as source:
        consumer = mariadb.import_stream(ctx.config.agent, socket, database, source)
    with Watchdog(ctx.deadline, [consumer]) as dog:
        _, cerr = consumer.communicate()
    if consumer.returncode != 0:
        if dog.fired:
            raise JobFailed("database restore killed by the watchdog at the job's deadline")
        detail = cerr.decode("utf-8", "replace").strip().splitlines()
        raise JobFailed(f"mariadb import failed: {ctx.restic.redact(detail[-1]) if detail else 'no detail'}")


def _database_target(site: Site, plan: Plan, opts: RestoreOptions) -> mariadb.Target:
    live_db = site.database
    name = opts.database_name or (live_db.name if live_db else plan.parts.database)
    socket = opts.database_socket or (live_db.socket if live_db else None)
    if socket is None or name is None:
        raise JobFailed("the site has no database configured: give --database-socket; nothing was changed")
    return mariadb.Target(name, socket)


def _stage_database(ctx: Context, plan: Plan, opts: RestoreOptions) -> StagedDatabase:
    """The dump imported into a staging database, and the swap prepared (one statement left to run)."""
    target = _database_target(ctx.site, plan, opts)
    settings = ctx.config.agent
    mount = dump_dir(ctx.config, ctx.site.id)
    staged = StagedDatabase(
        target,
        mariadb.staging_name(target.name),
        plan.id,
        str(plan.parts.dump_file),
        fsops.staging_path(mount, STAGING, ctx.run_id),
    )
    mount.parent.mkdir(parents=True, exist_ok=True)
    mariadb.prepare_staging(settings, target, ctx.deadline)
    try:
        _import(ctx, _staged_dump(ctx, staged), target.socket, staged.staging)
        try:
            staged.swap = mariadb.prepare_swap(settings, target, staged.staging, ctx.deadline)
        except mariadb.DatabaseError as e:
            if "views, triggers or routines" not in str(e):
                raise
    except BaseException:
        _discard_staged(ctx, staged)
        raise
    return staged


def _stage_side_by_side(
    ctx: Context,
    stage_files: Callable[[], None] | None,
    stage_database: Callable[[], StagedDatabase] | None,
) -> StagedDatabase | None:
    """Files and database staged at the same time; the staged database, if one was asked for.

    They use different resources (restic writing files; the database server parsing
    the dump) and neither touches the live site, so a restore takes about the longer
    of the two instead of their sum. Each stage cleans up after its own failure; when
    the files fail, a database staged meanwhile is dropped (and its dump file removed)
    before the error goes on.
    """
    timed = _timed(ctx)
    if stage_database is None or stage_files is None:
        if stage_files is not None:
            timed("stage_files_s", stage_files)
        return timed("stage_database_s", stage_database) if stage_database is not None else None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-database") as pool:
        database = pool.submit(timed, "stage_database_s", stage_database)
        try:
            timed("stage_files_s", stage_files)
        except BaseException:
            # The files' failure is the one to report; a database stage that failed cleaned up itself.
            with contextlib.suppress(Exception):
                _discard_staged(ctx, database.result())
            raise
        return database.result()


def _timed(ctx: Context) -> Callable[[str, Callable[[], T]], T]:
    """Runs a stage and puts its wall time into the run's figures (where a restore's time goes)."""

    def timed(name: str, stage: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            return stage()
        finally:
            ctx.figures[name] = round(time.monotonic() - started, 2)

    return timed


def _swap_database(ctx: Context, db: StagedDatabase) -> str:
    """Make the staged database live: one RENAME TABLE, or (views etc.) a direct import into a recreated one."""
    settings, deadline = ctx.config.agent, ctx.deadline
    if db.swap is not None:
        mariadb.commit_swap(settings, db.swap, deadline)
        db.done, db.live_since = True, time.monotonic()
        try:
            return mariadb.finish_swap(settings, db.swap, deadline)
        except mariadb.DatabaseError as e:  # the restore itself is done; only the old tables linger
            log.warning("restore %s: swapped in, but dropping the old tables failed: %s", ctx.site.id, e)
            return f"{len(db.swap.tables)} tables swapped in atomically (the old ones were not dropped: {e})"
    mariadb.drop(settings, db.target, db.staging, deadline)
    db.recreated = True
    mariadb.recreate(settings, db.target, deadline)
    _import(ctx, db.dump_staging / Path(db.dump_file).relative_to("/"), db.target.socket, db.target.name)
    db.done, db.live_since = True, time.monotonic()
    return "imported into the recreated database (views/triggers/routines present)"


def _drop_staged(ctx: Context, db: StagedDatabase) -> None:
    """After a failed swap: the staging database and the (empty: RENAME TABLE is atomic) old-name one go."""
    if db.done or db.recreated:
        return
    for name in (db.staging, mariadb.old_name(db.target.name)):
        try:
            mariadb.drop(ctx.config.agent, db.target, name, ctx.deadline)
        except mariadb.DatabaseError as e:
            log.warning("restore %s: could not drop %s: %s", ctx.site.id, name, e)


def _discard_staged(ctx: Context, db: StagedDatabase) -> None:
    """What staging the database left: the staging database (unless it went live) and the dump file."""
    _drop_staged(ctx, db)
    fsops.remove_tree(db.dump_staging)


def _swap_back(files: list[StagedPath]) -> list[str]:
    """Undo the file swaps done so far (the old trees sit in the staging paths); the paths that stayed."""
    stuck = []
    for item in reversed([f for f in files if f.swapped]):
        try:
            if item.existed:
                fsops.exchange(item.restored, item.live)
            else:  # the path did not exist before the restore: take it away again
                item.live.rename(item.restored)
            item.swapped = False
        except OSError as e:
            stuck.append(f"{item.live} ({e.strerror or e})")
    return stuck


def _failed_after_swap(what: str, reason: str, files: list[StagedPath], db: StagedDatabase | None) -> str:
    """The message for a failure inside the swap window: the files are swapped back, and the site's state."""
    swapped = [str(f.live) for f in files if f.swapped]
    stuck = _swap_back(files)
    if db is not None and db.recreated:
        database = f"database {db.target.name} was recreated for the import and is EMPTY or partial"
    else:
        database = "its previous database"
    if stuck:
        state = f"the snapshot's files could NOT be swapped back at {', '.join(stuck)}: the site has them"
        state += f" and {database}"
    elif swapped:
        state = f"the files were swapped back: the site has its previous files and {database}"
    else:
        state = f"no files were swapped in: the site has its previous files and {database}"
    if db is not None and db.recreated:
        state += "; restore again"
    elif not stuck:
        state += " (as before the restore)"
    return f"{what} failed ({reason}); {state}"


# A plain restore killed inside its swap window leaves the snapshot's files with the previous
# database. Its intent (written just before the window, removed after it) lets the next job on
# the site, whatever its verb, redo that restore first (`finish_interrupted_restore`), so no
# backup ever saves the mixed state. Inside an update's rollback the update's own recovery
# redoes the rollback instead, so no intent is written there.
def _intent_path(ctx: Context) -> Path:
    return ctx.config.agent.state_dir / "restore" / f"{ctx.site.id}.json"


def _write_intent(ctx: Context, plan: Plan, opts: RestoreOptions) -> Path | None:
    if ctx.job != "restore":
        return None
    path = _intent_path(ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"run_id": ctx.run_id, "snapshot": plan.id, "files": opts.files, "database": opts.database,
              "database_name": opts.database_name,
              "database_socket": str(opts.database_socket) if opts.database_socket else None}  # fmt: skip
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _clear_intent(
    intent: Path | None, *, unless_stuck: list[StagedPath] | None = None, db: StagedDatabase | None = None
) -> None:
    """The window is over: the site is whole (restored, or as before). Kept if it is neither."""
    if intent is None:
        return
    if any(f.swapped for f in unless_stuck or []) or (db is not None and db.recreated):
        return  # still mixed: the next job finishes the restore
    intent.unlink(missing_ok=True)


def finish_interrupted_restore(ctx: Context) -> None:
    """Redo a plain restore that died inside its swap window (see `_write_intent`), before the job's own work.

    Runs after an unclean job only. Without such a restore, what a killed one left
    beside the site's paths (a half-restored staging tree) is removed.
    """
    path = _intent_path(ctx)
    if not path.exists():
        lives = [*ctx.site.paths, dump_dir(ctx.config, ctx.site.id)]
        removed = [str(p) for live in lives for p in fsops.clear_leftovers(live, STAGING)]
        # Not the staging database: an import that died after its swap parks the previous site's tables
        # under the same name, for its own undo (which runs after this). The next restore recreates it.
        if removed:
            log.warning("%s: removed what an interrupted restore left: %s", ctx.site.id, ", ".join(removed))
            ctx.figures["leftovers_removed"] = removed
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    log.warning("%s: restore run %s died while swapping; redoing it before %s", ctx.site.id, record["run_id"], ctx.job)
    opts = RestoreOptions(
        snapshot=record["snapshot"],
        files=bool(record.get("files", True)),
        database=bool(record.get("database", True)),
        database_name=record.get("database_name"),
        database_socket=Path(record["database_socket"]) if record.get("database_socket") else None,
    )
    sub = dataclasses.replace(ctx, job="restore", figures={}, deadline=Deadline(ctx.site.jobs.restore_timeout_seconds))
    try:
        summary = do_restore(sub, opts)
    except JobFailed as e:
        raise JobFailed(
            f"a restore (run {record['run_id']}) died while swapping and could not be finished: {e.message}"
        ) from None
    path.unlink(missing_ok=True)
    ctx._unlocked = sub._unlocked
    ctx.figures["finished_restore"] = {"run_id": record["run_id"], "message": summary}


def _restore_in_place(ctx: Context, plan: Plan, opts: RestoreOptions) -> list[str]:
    """Stage the files and the database, then swap both in back to back (see the module docstring)."""
    for path in [*plan.parts.paths, dump_dir(ctx.config, ctx.site.id)]:
        for leftover in fsops.clear_leftovers(path, STAGING):
            ctx.figures.setdefault("leftovers_removed", []).append(str(leftover))
    files: list[StagedPath] = []
    db: StagedDatabase | None = None
    done: list[str] = []
    try:
        db = _stage_side_by_side(
            ctx,
            (lambda: _stage_files(ctx, plan, files)) if plan.files else None,
            (lambda: _stage_database(ctx, plan, opts)) if plan.database else None,
        )
        # the window: files, then the database, back to back (nothing slow in between)
        intent = _write_intent(ctx, plan, opts)
        window = time.monotonic()
        for item in files:
            item.existed = item.live.exists() or item.live.is_symlink()
            try:
                fsops.swap_in(item.restored, item.live)
            except OSError as e:
                message = _failed_after_swap(f"swapping in {item.live}", str(e), files, None)
                _clear_intent(intent, unless_stuck=files)
                raise JobFailed(message) from None
            item.swapped = True
        if files:
            done.append(f"files swapped in at {', '.join(str(f.live) for f in files)}")
        if db is not None:
            try:
                how = _swap_database(ctx, db)
            except Exception as e:
                reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
                message = _failed_after_swap(f"database {db.target.name}", reason, files, db)
                _clear_intent(intent, unless_stuck=files, db=db)
                raise JobFailed(message) from None
            done.append(f"database {db.target.name}: {how}")
            if files:  # how long the site had the snapshot's files with its previous database
                ctx.figures["mixed_window_ms"] = round((db.live_since - window) * 1000, 1)
        _clear_intent(intent)
        return done
    finally:
        for item in files:
            fsops.remove_tree(item.staging)  # the old trees, or the staged ones if nothing was swapped
        if db is not None:
            _discard_staged(ctx, db)


def restore_to_target(ctx: Context, plan: Plan, opts: RestoreOptions) -> list[str]:
    """Files (and the dump as a file, unless it goes to a database server) under --target; nothing live."""
    assert opts.target is not None
    done: list[str] = []
    dump_file = plan.parts.dump_file

    def files_to_target() -> None:
        assert opts.target is not None
        opts.target.mkdir(parents=True, exist_ok=True)
        only_dump = plan.dump_as_file and not plan.files
        exclude = [plan.parts.dump_dir] if plan.parts.dump_dir is not None and not plan.dump_as_file else []
        include = plan.parts.dump_dir if only_dump else None
        args = restic_commands.restore(plan.id, opts.target, include=include, exclude=exclude)
        ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="restore"), "restore")

    db = _stage_side_by_side(
        ctx,
        files_to_target if plan.files or plan.dump_as_file else None,
        (lambda: _stage_database(ctx, plan, opts)) if plan.database else None,
    )
    try:
        if plan.files:
            done.append(f"files under {opts.target}")
        if plan.dump_as_file and dump_file is not None:
            left = opts.target / dump_file.relative_to("/")
            if not left.is_file():
                raise JobFailed(f"snapshot {plan.short}: the database dump did not arrive at {left}")
            done.append(f"database dump left as a file: {left}")
        if db is not None:
            done.append(f"database {db.target.name}: {_swap_database(ctx, db)}")
    finally:
        if db is not None:
            _discard_staged(ctx, db)
    return done


def do_restore(ctx: Context, opts: RestoreOptions) -> str:
    """The body of a restore, for callers that hold the site lock (update-with-rollback)."""
    restic = ctx.restic
    restic.env()
    ctx.prepare()
    plan = newest_complete_in_one_call(ctx, opts)
    if plan is None:
        found = ctx.retry(lambda: restic.snapshots(ctx.deadline), "snapshots")
        plan = choose_restorable(ctx, found, opts)
    ctx.figures.update({"snapshot_id": plan.short, "snapshot_time": plan.snapshot.get("time")})
    if plan.skipped:
        ctx.figures["snapshots_passed_over"] = plan.skipped
    restore_parts = _restore_in_place if opts.target is None else restore_to_target
    parts = restore_parts(ctx, plan, opts)
    if not parts:
        raise JobFailed(f"snapshot {plan.short}: nothing to restore (files and database both left out)")
    passed = f" (passed over: {'; '.join(plan.skipped)})" if plan.skipped else ""
    return f"restored snapshot {plan.short} ({str(plan.snapshot.get('time', ''))[:19]}): " + "; ".join(parts) + passed


def restore(
    config: Config,
    site_id: str,
    opts: RestoreOptions | None = None,
    *,
    wait: bool = False,
    settle: Settle | None = None,
) -> JobResult:
    """Restore one snapshot of a site (latest by default); see RestoreOptions."""
    opts = opts or RestoreOptions()
    site = config.site(site_id)
    return run_job(
        config,
        site_id,
        "restore",
        lambda ctx: do_restore(ctx, opts),
        timeout=site.jobs.restore_timeout_seconds,
        wait=wait,
        settle=settle,
        push=False,
        extra={"snapshot": opts.snapshot, "target": str(opts.target) if opts.target else None},
    )
