"""import SITE --archive A [--dump D]: a client's existing site put in place of this site, all or nothing.

Before anything changes, every input is checked and a bad one is refused by
name (`refused, nothing was changed: <Error>: ...`): a dump of another engine
(`OtherEngineDump`), an archive without wp-config.php for a WordPress site
(`MissingWpConfig`), a member that would land outside the root
(`UnsafeMember`), a table prefix other than the site's (`TablePrefixMismatch`),
too little free space for the staged copies (`NotEnoughSpace`).

Then, as a restore does (actions/restore.py), everything is staged first: the
archive unpacked into a fresh directory beside the root (given to the site's
user, the role's wp-config.php and keys put in place of the old host's: the
database credentials are the plan's, never the old host's), the dump streamed
into a staging database with the old URL rewritten serialize()-aware
(serialized.py). Then the window: one renameat2(RENAME_EXCHANGE) for the files
and one RENAME TABLE for the database. The plan's pages are probed while the
old tree and tables are still kept; if a page fails, both are swapped back and
the site is as it was. Only then is the old state dropped.

An intent file, written before the window and removed when the import is
either done or undone, lets the next job on the site (whatever its verb, see
`finish_interrupted_import`) put the old site back if the import was killed in
between: an interrupted import leaves the old site or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import exitcodes, fsops, probe, site_archive, sqldump
from ..config import Config, Site
from ..hooks import mariadb
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..proc import TailReader, Watchdog
from ..serialized import UrlRewrite

log = logging.getLogger("carestack_agent.import")

STAGING = "import"  # fsops purpose: .cs-import-<root name>-<run id> beside the root
WORDPRESS_KINDS = ("wordpress", "woocommerce")
# Carried from the live site into the imported tree: what the role writes (the plan's database, as the
# site's own user over unix_socket, and the plan's URL) and the keys generated on this server.
ROLE_FILES = ("wp-config.php", "wp-salts.php")
_WP_HOME = re.compile(r"""define\(\s*['"]WP_HOME['"]\s*,\s*['"]([^'"]+)['"]\s*\)""")
# Free space: the staged files and database exist beside the live ones until the old are dropped.
# InnoDB keeps rows and indexes in about twice the dump's bytes; a volume is never filled to the last
# byte (logs, PHP sessions, the next backup's cache need room too).
DATABASE_EXPANSION = 2.0
HEADROOM_FRACTION = 0.10
HEADROOM_BYTES = 256 * 1024 * 1024
UNCHANGED = "http://unchanged.invalid"  # a rewrite that changes nothing, when no URL changes


class ImportRefused(Exception):
    """Bad input found before anything changed; `name` is the error's name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass(frozen=True)
class ImportOptions:
    archive: Path
    dump: Path | None = None
    old_url: str | None = None  # default: the dump's home option
    new_url: str | None = None  # default: WP_HOME of the site's wp-config.php (the plan's URL)


@dataclass(frozen=True)
class Checked:
    archive: site_archive.ArchiveFacts
    dump: sqldump.DumpFacts | None
    rewrite: UrlRewrite | None


def _refuse(error: Exception) -> ImportRefused:
    return ImportRefused(type(error).__name__, str(error))


def wp_home(root: Path) -> str | None:
    try:
        m = _WP_HOME.search((root / "wp-config.php").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return m.group(1) if m else None


def check_inputs(site: Site, opts: ImportOptions) -> Checked:
    """Every input checked; ImportRefused names the first problem. Nothing is written."""
    wordpress = site.kind in WORDPRESS_KINDS
    for option, path in (("--archive", opts.archive), ("--dump", opts.dump)):
        if path is not None and not path.is_file():
            raise ImportRefused("MissingInput", f"{option}: {path}: no such file")
    if site.database is not None and opts.dump is None:
        raise ImportRefused(
            "MissingInput", f"--dump: site {site.id} has a database ({site.database.name}): give its SQL dump"
        )
    if site.database is None and opts.dump is not None:
        raise ImportRefused("UnexpectedDump", f"--dump: site {site.id} ({site.kind}) has no database to import into")
    try:
        archive = site_archive.inspect(opts.archive, wordpress=wordpress)
        dump = sqldump.inspect(opts.dump, wordpress=wordpress) if opts.dump is not None else None
    except (site_archive.ArchiveError, sqldump.DumpError) as e:
        raise _refuse(e) from None
    rewrite = None
    if wordpress:
        assert dump is not None
        missing = [name for name in ROLE_FILES if not (site.root / name).is_file()]
        if missing:
            raise ImportRefused(
                "SiteNotConfigured",
                f"{site.root}: {', '.join(missing)} missing: converge the site first (`carestack configure`), "
                "the import keeps the configuration carestack writes",
            )
        live_prefix = site_archive.table_prefix_of((site.root / "wp-config.php").read_bytes())
        if dump.prefix != live_prefix or (archive.table_prefix is not None and archive.table_prefix != dump.prefix):
            raise ImportRefused(
                "TablePrefixMismatch",
                f"table prefix: the dump's tables use {dump.prefix!r}"
                + (f", the archive's wp-config.php says {archive.table_prefix!r}" if archive.table_prefix else "")
                + f"; this site's configuration uses {live_prefix!r} (rename the tables before dumping)",
            )
        old, new = opts.old_url or dump.home, opts.new_url or wp_home(site.root)
        if old and new:
            try:
                rewrite = UrlRewrite(old, new)
            except ValueError as e:
                raise ImportRefused("BadUrl", f"--old-url/--new-url: {e}") from None
    elif opts.old_url and opts.new_url:
        rewrite = UrlRewrite(opts.old_url, opts.new_url)
    return Checked(archive, dump, rewrite)


def _volume(path: Path) -> tuple[Path, int]:
    """The nearest existing directory of `path` and its device."""
    while not path.exists():
        path = path.parent
    return path, path.stat().st_dev


def check_space(needs: list[tuple[Path, int, str]]) -> dict[str, int]:
    """Each volume must hold what lands on it plus headroom; NotEnoughSpace names the volume and the sizes."""
    volumes: dict[int, tuple[Path, int, list[str]]] = {}
    for path, size, what in needs:
        where, dev = _volume(path)
        at, total, parts = volumes.get(dev, (where, 0, []))
        volumes[dev] = (at, total + size, [*parts, f"{what} {_size(size)}"])
    figures = {}
    for at, total, parts in volumes.values():
        fs = os.statvfs(at)
        free = fs.f_bavail * fs.f_frsize
        wanted = int(total * (1 + HEADROOM_FRACTION)) + HEADROOM_BYTES
        figures[str(at)] = free
        if wanted > free:
            raise ImportRefused(
                "NotEnoughSpace",
                f"{at}: the import needs {_size(wanted)} ({' + '.join(parts)}, plus {HEADROOM_FRACTION:.0%} and "
                f"{_size(HEADROOM_BYTES)} headroom), the volume has {_size(free)} free: grow the volume first",
            )
    return figures


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- staging ---------------------------------------------------------------------------------------


def _stage_files(site: Site, checked: Checked, staging: Path) -> int:
    """The archive unpacked into `staging`, given to the site's user, the role's files put in."""
    st = site.root.stat()
    uid = st.st_uid
    gid = pwd.getpwuid(uid).pw_gid
    entries = site_archive.extract(checked.archive, staging)
    site_archive.hand_to(staging, uid, gid)
    if site.kind in WORDPRESS_KINDS:
        for name in ROLE_FILES:
            target = staging / name
            if target.is_symlink() or target.exists():
                target.unlink()
            shutil.copy2(site.root / name, target)  # mode (0600) and times
            live = (site.root / name).stat()
            os.chown(target, live.st_uid, live.st_gid)
    os.chown(staging, st.st_uid, st.st_gid)  # the root's own owner, group (www-data) and mode
    os.chmod(staging, st.st_mode & 0o7777)
    return entries


def _stage_database(ctx: Context, checked: Checked, dump: Path, target: mariadb.Target, staging: str) -> None:
    """The dump, its URLs rewritten on the way, streamed into the staging database."""
    settings = ctx.config.agent
    mariadb.prepare_staging(settings, target, ctx.deadline)
    importer = mariadb.import_stream(settings, target.socket, staging, subprocess.PIPE)  # type: ignore[arg-type]
    assert importer.stdin is not None
    errors = TailReader(importer.stderr, keep=5)
    figures = sqldump.RewriteFigures()
    rewrite = checked.rewrite or UrlRewrite(UNCHANGED, UNCHANGED)
    cut: str | None = None
    with Watchdog(ctx.deadline, [importer]) as dog:
        try:
            with sqldump.open_dump(dump) as sql:
                sqldump.rewrite(sql, importer.stdin, rewrite, figures)
        except BrokenPipeError:
            pass  # the importer stopped: its exit status and message say why
        except sqldump.DumpError as e:
            cut = str(e)
            importer.kill()
        finally:
            with contextlib.suppress(BrokenPipeError):
                importer.stdin.close()
        importer.wait()
    detail = errors.join(timeout=5)
    if cut is not None:
        raise JobFailed(f"{dump}: {cut}; nothing was changed")
    if importer.returncode != 0:
        if dog.fired:
            raise JobFailed("the database import was killed by the watchdog at the job's deadline; nothing was changed")
        raise JobFailed(f"mariadb import failed: {detail[-1] if detail else 'no detail'}; nothing was changed")
    ctx.figures["literals_rewritten"] = figures.literals_changed
    if checked.rewrite is not None:
        counts = checked.rewrite.counts
        ctx.figures["serialized_rewritten"] = counts.serialized
        ctx.figures["serialized_unparsable"] = counts.unparsable
    if figures.statements_dropped:
        ctx.figures["statements_dropped"] = figures.statements_dropped


# -- the window and its undo -----------------------------------------------------------------------


def _intent_path(config: Config, site_id: str) -> Path:
    return config.agent.state_dir / "import" / f"{site_id}.json"


def _write_intent(ctx: Context, record: dict[str, object]) -> Path:
    path = _intent_path(ctx.config, ctx.site.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _q(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _tables(ctx: Context, socket: Path, database: str) -> list[str]:
    rows = mariadb.sql(
        ctx.config.agent,
        socket,
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}'",
        ctx.deadline,
    )
    return [r[0] for r in rows if r and r[0]]


def _database_back(ctx: Context, target: mariadb.Target, staging: str) -> None:
    """Undo a committed swap: the imported tables back to staging, the kept ones (old-name database) live."""
    old = mariadb.old_name(target.name)
    live, kept = _tables(ctx, target.socket, target.name), _tables(ctx, target.socket, old)
    renames = [f"{_q(target.name)}.{_q(t)} TO {_q(staging)}.{_q(t)}" for t in live]
    renames += [f"{_q(old)}.{_q(t)} TO {_q(target.name)}.{_q(t)}" for t in kept]
    if renames:
        mariadb.sql(ctx.config.agent, target.socket, "RENAME TABLE " + ", ".join(renames), ctx.deadline)


def _drop_leftover_databases(ctx: Context, target: mariadb.Target, staging: str) -> None:
    for name in (staging, mariadb.old_name(target.name)):
        try:
            mariadb.drop(ctx.config.agent, target, name, ctx.deadline)
        except mariadb.DatabaseError as e:
            log.warning("import %s: could not drop %s: %s", ctx.site.id, name, e)


def _undo(ctx: Context, record: dict[str, object]) -> list[str]:
    """Put the old site back from what the intent names; what was undone."""
    undone = []
    root, parked = Path(str(record["root"])), Path(str(record["parked"]))
    if root.exists() and root.stat().st_ino == record["staged_inode"] and parked.exists():
        fsops.exchange(parked, root)  # the imported tree goes back to the parked path, the old one live
        undone.append(f"files back at {root}")
    fsops.remove_tree(parked)
    if record.get("database"):
        target = mariadb.Target(str(record["database"]), Path(str(record["socket"])))
        staging = str(record["staging_database"])
        if not _tables(ctx, target.socket, staging) and _tables(ctx, target.socket, mariadb.old_name(target.name)):
            _database_back(ctx, target, staging)
            undone.append(f"database {target.name} back")
        _drop_leftover_databases(ctx, target, staging)
    return undone


def finish_interrupted_import(ctx: Context) -> None:
    """Put the old site back if an import died after its swap and before it finished (see the docstring)."""
    path = _intent_path(ctx.config, ctx.site.id)
    if not path.exists():
        for leftover in fsops.clear_leftovers(ctx.site.root, STAGING):
            log.warning("%s: removed what an interrupted import left: %s", ctx.site.id, leftover)
        return
    record = json.loads(path.read_text(encoding="utf-8"))
    undone = _undo(ctx, record)
    path.unlink(missing_ok=True)
    log.warning("%s: import run %s died before it finished; the previous site is back (%s)",
                ctx.site.id, record.get("run_id"), "; ".join(undone) or "nothing had been swapped")  # fmt: skip
    ctx.figures["undid_import"] = {"run_id": record.get("run_id"), "undone": undone}


# -- the job ---------------------------------------------------------------------------------------


def _probe(ctx: Context) -> list[probe.Verdict]:
    settings = ctx.config.agent
    time.sleep(settings.probe_settle_seconds)  # PHP's opcache may still answer with the old code
    return probe.measure(probe.pages_of(ctx.site), settings).verdicts


class Stopped(Exception):
    """SIGTERM or SIGHUP while the import runs: raised so the undo runs (only SIGKILL leaves it to the next job)."""


@contextlib.contextmanager
def _stops_raise() -> Iterator[None]:
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def do_import(ctx: Context, opts: ImportOptions) -> str:
    with _stops_raise():
        try:
            return _do_import(ctx, opts)
        except Stopped as e:  # before the swap (after it, the undo's own message says what the site has)
            raise JobFailed(f"import {e}; nothing was changed (its staged copy was removed)") from None


def _do_import(ctx: Context, opts: ImportOptions) -> str:
    site = ctx.site
    finish_interrupted_import(ctx)
    try:
        checked = check_inputs(site, opts)
        needs = [(site.root.parent, checked.archive.file_bytes, "files")]
        if checked.dump is not None and site.database is not None:
            datadir = Path(mariadb.sql(ctx.config.agent, site.database.socket, "SELECT @@datadir", ctx.deadline)[0][0])
            needs.append((datadir, int(checked.dump.sql_bytes * DATABASE_EXPANSION), "database"))
        ctx.figures["free_bytes"] = check_space(needs)
    except ImportRefused as e:
        raise JobFailed(f"refused, nothing was changed: {e.name}: {e.message}", exitcodes.USAGE) from None
    ctx.figures.update({"archive_entries": checked.archive.members, "archive_bytes": checked.archive.file_bytes})
    if checked.dump is not None:
        ctx.figures["dump_bytes"] = checked.dump.sql_bytes
    if checked.rewrite is not None:
        ctx.figures["url"] = f"{checked.rewrite.old} -> {checked.rewrite.new}"

    staged = fsops.fresh_dir(fsops.staging_path(site.root, STAGING, ctx.run_id))
    target = mariadb.Target(site.database.name, site.database.socket) if site.database else None
    staging_db = mariadb.staging_name(target.name) if target else ""
    record: dict[str, object] = {"run_id": ctx.run_id, "root": str(site.root), "parked": str(staged)}
    try:
        _stage_files(site, checked, staged)
        swap = None
        if target is not None and opts.dump is not None:
            _stage_database(ctx, checked, opts.dump, target, staging_db)
            try:
                swap = mariadb.prepare_swap(ctx.config.agent, target, staging_db, ctx.deadline)
            except mariadb.DatabaseError as e:
                raise JobFailed(f"the dump cannot be swapped in ({e}); nothing was changed") from None
        record |= {"staged_inode": staged.stat().st_ino, "database": target.name if target else None,
                   "socket": str(target.socket) if target else None, "staging_database": staging_db}  # fmt: skip
        intent = _write_intent(ctx, record)
    except BaseException:
        fsops.remove_tree(staged)
        if target is not None:
            _drop_leftover_databases(ctx, target, staging_db)
        raise
    try:
        fsops.exchange(staged, site.root)  # the old tree now sits at `staged`
        if swap is not None:
            mariadb.commit_swap(ctx.config.agent, swap, ctx.deadline)
        verdicts = _probe(ctx)
    except BaseException as e:
        undone = _undo(ctx, record)
        intent.unlink(missing_ok=True)
        if isinstance(e, Exception):
            reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            raise JobFailed(f"import failed ({reason}); the previous site is back ({'; '.join(undone)})") from None
        raise
    ctx.figures["pages"] = [v.figures() for v in verdicts]
    if not all(v.ok for v in verdicts):
        undone = _undo(ctx, record)
        intent.unlink(missing_ok=True)
        raise JobFailed(
            f"the imported site fails the plan's pages ({probe.summary(verdicts)}); the previous site is back "
            f"({'; '.join(undone)})"
        )
    intent.unlink()  # from here the import stands, whatever happens
    fsops.remove_tree(staged)
    if swap is not None:
        mariadb.finish_swap(ctx.config.agent, swap, ctx.deadline)
    rewritten = f", {ctx.figures.get('literals_rewritten', 0)} values rewritten" if checked.rewrite else ""
    return (
        f"imported {checked.archive.members} entries"
        + (f" and {_size(checked.dump.sql_bytes)} of SQL" if checked.dump else "")
        + rewritten
        + f"; {probe.summary(verdicts)}"
    )


def import_site(
    config: Config, site_id: str, opts: ImportOptions, *, wait: bool = False, settle: Settle | None = None
) -> JobResult:
    """Put a client's existing site (archive + dump) in place of this site; see the module docstring."""
    site = config.site(site_id)
    return run_job(
        config,
        site_id,
        "import",
        lambda ctx: do_import(ctx, opts),
        timeout=site.jobs.restore_timeout_seconds,
        wait=wait,
        settle=settle,
        push=False,
        extra={"archive": str(opts.archive), "dump": str(opts.dump) if opts.dump else None},
    )
