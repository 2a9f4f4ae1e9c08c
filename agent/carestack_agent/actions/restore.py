"""restore SITE: files and database from one snapshot, leaving the site working.

In place (no --target): each backed-up path is restored into a staging
directory next to it (same file system) and swapped in with one atomic
renameat2(RENAME_EXCHANGE); the database is imported into a staging database
and swapped in with one RENAME TABLE. Nothing live is touched until the
staging copy is complete, so a failed restore leaves the site as it was.

With --target DIR: the files land under DIR with their absolute paths (restic's
layout), nothing live is touched. The database then goes to --database-socket /
--database-name when given (for example a standby's server); otherwise the dump
is left as a plain .sql file under DIR.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import fsops, owners, restic_commands
from ..config import Config
from ..hooks import mariadb
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..proc import Watchdog

log = logging.getLogger("carestack_agent.restore")


@dataclass(frozen=True)
class RestoreOptions:
    snapshot: str | None = None
    before: datetime | None = None
    target: Path | None = None
    database_socket: Path | None = None
    database_name: str | None = None
    files: bool = True
    database: bool = True


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return value if value.tzinfo else value.astimezone()


def choose_snapshot(snapshots: list[dict[str, Any]], opts: RestoreOptions) -> dict[str, Any]:
    if not snapshots:
        raise JobFailed("no snapshots of this site in the repository")
    if opts.snapshot:
        found = [s for s in snapshots if str(s.get("id", "")).startswith(opts.snapshot)]
        if len(found) != 1:
            raise JobFailed(f"snapshot {opts.snapshot}: {'not found' if not found else 'ambiguous'} for this site")
        return found[0]
    dated = sorted(snapshots, key=lambda s: parse_time(str(s["time"])))
    if opts.before is not None:
        before = opts.before
        dated = [s for s in dated if parse_time(str(s["time"])) <= before]
        if not dated:
            raise JobFailed(f"no snapshot of this site taken before {before.isoformat()}")
    return dated[-1]


def split_paths(snapshot: dict[str, Any]) -> tuple[list[Path], Path | None]:
    """The site's paths, and the dump's mount directory, as recorded in the snapshot."""
    site_paths: list[Path] = []
    dump: Path | None = None
    for p in snapshot.get("paths", []):
        path = Path(p)
        is_dump = path.parent.name == "dump" and path.name == _site_of(snapshot) and _db_of(snapshot) is not None
        if is_dump and dump is None:
            dump = path
            continue
        site_paths.append(path)
    return site_paths, dump


def _site_of(snapshot: dict[str, Any]) -> str:
    for tag in snapshot.get("tags") or []:
        if str(tag).startswith("site:"):
            return str(tag)[5:]
    return ""


def _db_of(snapshot: dict[str, Any]) -> str | None:
    for tag in snapshot.get("tags") or []:
        if str(tag).startswith("db:"):
            return str(tag)[3:]
    return None


def _restore_files_in_place(ctx: Context, snap: str, paths: list[Path], owner: owners.Ids | None) -> list[str]:
    """Each path swapped in from the snapshot; `owner`: the ids the snapshot's files had (see owners)."""
    done = []
    here = owners.owner_of(ctx.site.root)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = fsops.staging_path(path, "restore", ctx.run_id)
        try:
            args = restic_commands.restore(snap, staging, include=path)
            ctx.retry(functools.partial(ctx.restic.run, args, ctx.deadline, what="restore"), "restore")
            restored = staging / path.relative_to("/")
            if not restored.exists():
                raise JobFailed(f"snapshot {snap} has nothing under {path}")
            if owner is not None and here is not None and owner != here:
                handed = owners.hand_over(restored, owner, here)
                ctx.figures["owner_mapped"] = f"{owner[0]}:{owner[1]} -> {here[0]}:{here[1]}"
                ctx.figures["owner_mapped_entries"] = ctx.figures.get("owner_mapped_entries", 0) + handed
            fsops.swap_in(restored, path)  # live now has the snapshot; `restored` holds the old tree, if any
            done.append(str(path))
        finally:
            fsops.remove_tree(staging)
    return done


def _restore_database(ctx: Context, snap: str, dump_file: str, target: mariadb.Target) -> str:
    settings = ctx.config.agent
    staging = mariadb.prepare_staging(settings, target, ctx.deadline)

    def import_into(database: str) -> None:
        producer = ctx.restic.spawn(restic_commands.dump(snap, dump_file), json_flag=False)
        assert producer.stdout is not None
        consumer = mariadb.import_stream(settings, target.socket, database, producer.stdout)
        producer.stdout.close()  # the consumer owns the pipe now
        with Watchdog(ctx.deadline, [producer, consumer]) as dog:
            _, cerr = consumer.communicate()
            _, perr = producer.communicate()
        if producer.returncode != 0 or consumer.returncode != 0:
            if dog.fired:
                raise JobFailed("database restore killed by the watchdog at the job's deadline")
            detail = (perr or cerr).decode("utf-8", "replace").strip().splitlines()
            who = "restic dump" if producer.returncode != 0 else "mariadb import"
            raise JobFailed(f"{who} failed: {ctx.restic.redact(detail[-1]) if detail else 'no detail'}")

    try:
        import_into(staging)
        try:
            how = mariadb.swap_in(settings, target, staging, ctx.deadline)
        except mariadb.DatabaseError as e:
            if "views, triggers or routines" not in str(e):
                raise
            mariadb.drop(settings, target, staging, ctx.deadline)
            mariadb.recreate(settings, target, ctx.deadline)
            import_into(target.name)
            how = "imported into the recreated database (views/triggers/routines present)"
    except BaseException:
        with contextlib.suppress(Exception):
            mariadb.drop(settings, target, staging, ctx.deadline)
        raise
    return how


def do_restore(ctx: Context, opts: RestoreOptions) -> str:
    """The body of a restore, for callers that hold the site lock (update-with-rollback)."""
    site, restic = ctx.site, ctx.restic
    restic.env()
    ctx.prepare()
    snapshots = ctx.retry(lambda: restic.snapshots(ctx.deadline), "snapshots")
    chosen = choose_snapshot(snapshots, opts)
    snap = str(chosen["id"])
    short = str(chosen.get("short_id") or snap[:8])
    ctx.figures.update({"snapshot_id": short, "snapshot_time": chosen.get("time")})
    site_paths, dump = split_paths(chosen)
    db_name = _db_of(chosen)
    parts = []
    if opts.files:
        if opts.target is not None:
            opts.target.mkdir(parents=True, exist_ok=True)
            # the dump stays out of the target when it goes into a database server instead
            to_server = opts.database and (opts.database_socket or opts.database_name) and dump is not None
            args = restic_commands.restore(snap, opts.target, exclude=[dump] if to_server and dump else [])
            ctx.retry(lambda: restic.run(args, ctx.deadline, what="restore"), "restore")
            parts.append(f"files under {opts.target}")
        else:
            done = _restore_files_in_place(ctx, short, site_paths, owners.from_tags(chosen.get("tags") or []))
            parts.append(f"files swapped in at {', '.join(done)}")
    if opts.database and dump is not None and db_name is not None:
        live_db = site.database
        if opts.target is not None and not (opts.database_socket or opts.database_name):
            parts.append("database dump left as a file under the target")
        else:
            name = opts.database_name or (live_db.name if live_db else db_name)
            socket = opts.database_socket or (live_db.socket if live_db else None)
            if socket is None:
                raise JobFailed("the site has no database configured: give --database-socket")
            how = _restore_database(ctx, snap, str(dump / f"{db_name}.sql"), mariadb.Target(name, socket))
            parts.append(f"database {name}: {how}")
    elif opts.database and site.database is not None:
        raise JobFailed(f"snapshot {short} holds no database dump")
    return f"restored snapshot {short} ({chosen.get('time', '')[:19]}): " + "; ".join(parts)


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
