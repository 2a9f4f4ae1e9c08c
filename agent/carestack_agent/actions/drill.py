"""drill SITE: the restore drill, run on the standby: restore, verify, measure, remove.

The site's latest complete snapshot is restored into a scratch site beside
whatever the standby serves: its files under `<scratch_dir>/<site>` (restic's
layout, the site's root inside it), its dump imported into the database
`drill_<name>` (through restore.py's staging import, so a broken dump never
leaves a half-imported database), and a vhost on 127.0.0.1:<port> with the
site's domain as server_name. The site's checked pages are probed there with
the Host header. The figures carry the RTO (restore + verify seconds, against
the plan's failover RTO, which is also the drill's deadline) and the RPO (the
snapshot's age), so the journal's `end` and the DRILL push monitor say what a
real failover would have achieved.

The scratch site is removed after every drill, failed or not. A drill killed
half-way leaves names the next drill finds and removes first (the directory,
the vhost file, the database and its staging names): nothing is tracked in a
state file that a crash could lose.

A site that is live on this host (its root or its database exists here: a
failover moved it to the standby) is never drilled: the drill refuses and the
monitor says why.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import exitcodes, fsops, probe, snapshots
from ..config import Config, Drill, Site
from ..hooks import mariadb
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..proc import Deadline
from . import restore

log = logging.getLogger("carestack_agent.drill")

DATABASE_PREFIX = "drill_"
VHOST_PREFIX = "carestack-drill-"
CLEANUP_SECONDS = 120  # removing a scratch site must work even after the drill's deadline passed
RELOAD_SECONDS = 60
_DB_NAME_DEFINE = re.compile(r"""(define\(\s*['"]DB_NAME['"]\s*,\s*)(['"])[^'"]*\2""")
_DB_USER_DEFINE = re.compile(r"""(define\(\s*['"]DB_USER['"]\s*,\s*)(['"])[^'"]*\2""")


@dataclass(frozen=True)
class Scratch:
    """The names a drill of one site uses on this host; found again by name after a crash."""

    root: Path  # restic restores under it with absolute paths
    database: str | None
    socket: Path | None
    vhost: Path

    @property
    def database_names(self) -> list[str]:
        """The scratch database and the staging names a restore into it creates."""
        if self.database is None:
            return []
        return [self.database, mariadb.staging_name(self.database), mariadb.old_name(self.database)]

    def docroot(self, parts: snapshots.Parts) -> Path:
        """The site's root inside the scratch directory: the snapshot's first path (the site's root on the
        server it was taken on)."""
        return self.root / parts.paths[0].relative_to("/")


def scratch_of(site: Site, drill: Drill) -> Scratch:
    root = drill.scratch_dir / site.id
    database = None
    if site.database is not None:
        database = (DATABASE_PREFIX + site.database.name)[:64]
    return Scratch(
        root=root,
        database=database,
        socket=site.database.socket if site.database else None,
        vhost=drill.vhost_dir / f"{VHOST_PREFIX}{site.id}.conf",
    )


def vhost_text(site: Site, drill: Drill, docroot: Path) -> str:
    """An nginx server block for the scratch site: loopback only, the site's domain, the scratch docroot."""
    lines = [
        f"# carestack restore drill of {site.id}: removed after the drill (a leftover by the next drill)",
        "server {",
        f"    listen 127.0.0.1:{drill.port};",
        f"    server_name {site.domain};",
        f"    root {docroot};",
        "    index index.php index.html;",
        "    location ~ /\\.(?!well-known/) { deny all; }",
    ]
    if drill.php_socket is not None:
        lines += [
            "    location / { try_files $uri $uri/ /index.php?$args; }",
            "    location ~ \\.php$ {",
            "        include snippets/fastcgi-php.conf;",
            f"        fastcgi_pass unix:{drill.php_socket};",
            "    }",
        ]
    else:
        lines.append("    location / { try_files $uri $uri/ =404; }")
    return "\n".join([*lines, "}", ""])


def _reload(drill: Drill) -> None:
    try:
        done = subprocess.run(list(drill.reload_command), capture_output=True, text=True, timeout=RELOAD_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JobFailed(f"reloading the web server ({' '.join(drill.reload_command)}) failed: {e}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise JobFailed(
            f"reloading the web server ({' '.join(drill.reload_command)}) failed with status {done.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )


def _database_exists(ctx: Context, socket: Path, name: str, deadline: Deadline) -> bool:
    rows = mariadb.sql(
        ctx.config.agent, socket,
        f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'", deadline,
    )  # fmt: skip
    return bool(rows)


def refuse_if_live(ctx: Context) -> None:
    """A site that runs on this host (failed over to the standby) is not drilled: its names are live here."""
    site = ctx.site
    live = []
    if site.root.exists():
        live.append(f"its root {site.root} exists")
    if site.database is not None and _database_exists(ctx, site.database.socket, site.database.name, ctx.deadline):
        live.append(f"its database {site.database.name} exists")
    if live:
        raise JobFailed(
            f"the site is live on this host ({' and '.join(live)}: failed over here?); no drill while it serves "
            "from here, nothing was changed",
            exitcodes.REFUSED,
        )


def remove_scratch(ctx: Context, scratch: Scratch, drill: Drill) -> list[str]:
    """Remove whatever of the scratch site exists (by name); what was removed. Raises if something stays."""
    deadline = Deadline(CLEANUP_SECONDS)
    removed: list[str] = []
    if scratch.vhost.exists():
        scratch.vhost.unlink()
        _reload(drill)
        removed.append(str(scratch.vhost))
    if scratch.root.exists():
        fsops.remove_tree(scratch.root)
        if scratch.root.exists():
            raise JobFailed(f"the scratch directory {scratch.root} could not be removed")
        removed.append(str(scratch.root))
    if scratch.socket is not None:
        for name in scratch.database_names:
            if _database_exists(ctx, scratch.socket, name, deadline):
                mariadb.drop(ctx.config.agent, mariadb.Target(name, scratch.socket), name, deadline)
                removed.append(f"database {name}")
    return removed


def _point_config_at_scratch(scratch: Scratch, docroot: Path, user: str | None) -> bool:
    """The restored wp-config.php names the live database and its user; the scratch site must use the scratch
    database, as the drill's user where there is one (the site's own user does not exist on the standby)."""
    config = docroot / "wp-config.php"
    if scratch.database is None or not config.is_file():
        return False
    text = config.read_text(encoding="utf-8", errors="surrogateescape")
    changed, count = _DB_NAME_DEFINE.subn(lambda m: f"{m.group(1)}'{scratch.database}'", text)
    if user is not None:
        changed = _DB_USER_DEFINE.sub(lambda m: f"{m.group(1)}'{user}'", changed)
    if changed != text:
        config.write_text(changed, encoding="utf-8", errors="surrogateescape")
    return bool(count)


def _give_to(root: Path, docroot: Path, user: str) -> None:
    """Every restored file to the drill's user (restic restored the primary's numeric owners); the groups stay,
    so nginx (www-data) reads what it read on the primary. The directories above the docroot (the
    primary's path inside the scratch directory) let nginx pass, as /srv/www does on the primary."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        raise JobFailed(f"the drill's user {user} does not exist on this host (converge the standby)",
                        exitcodes.CONFIG) from None  # fmt: skip
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, -1)
    for above in [docroot.parent, *docroot.parent.parents]:
        if above == root.parent:
            break
        os.chmod(above, 0o711)


def _age_seconds(snapshot: snapshots.Snapshot) -> float:
    return max(0.0, (datetime.now(UTC) - snapshots.parse_time(str(snapshot["time"]))).total_seconds())


def _restore_and_verify(ctx: Context, drill: Drill, scratch: Scratch) -> str:
    site = ctx.site
    pages = probe.pages_of(site, drill.port)
    if not pages:
        raise JobFailed("the site has no checked pages: a drill could restore it but not verify it")
    started = time.monotonic()
    ctx.restic.env()
    ctx.prepare()
    found = ctx.retry(lambda: ctx.restic.snapshots(ctx.deadline), "snapshots")
    opts = restore.RestoreOptions(
        target=scratch.root,
        database_socket=scratch.socket,
        database_name=scratch.database,
        database=scratch.database is not None,
    )
    plan = restore.choose_restorable(ctx, found, opts)
    rpo = _age_seconds(plan.snapshot)
    ctx.figures.update(
        snapshot_id=plan.short, snapshot_time=plan.snapshot.get("time"), rpo_seconds=round(rpo, 1),
        rto_target_seconds=drill.timeout_seconds,
    )  # fmt: skip
    if not plan.parts.paths:
        raise JobFailed(f"snapshot {plan.short} holds no site files: nothing to serve; nothing was changed")
    restore.restore_to_target(ctx, plan, opts)
    docroot = scratch.docroot(plan.parts)
    if not docroot.is_dir():
        raise JobFailed(f"snapshot {plan.short} restored no {plan.parts.paths[0]}: nothing to serve")
    if drill.user is not None:
        _give_to(scratch.root, docroot, drill.user)
    _point_config_at_scratch(scratch, docroot, drill.user)
    scratch.vhost.parent.mkdir(parents=True, exist_ok=True)
    scratch.vhost.write_text(vhost_text(site, drill, docroot), encoding="utf-8")
    _reload(drill)
    restored = time.monotonic()
    verdicts = probe.measure(pages, ctx.config.agent).verdicts
    verified = time.monotonic()
    rto = verified - started
    ctx.figures.update(
        restore_seconds=round(restored - started, 1), verify_seconds=round(verified - restored, 1),
        rto_seconds=round(rto, 1), pages=[v.figures() for v in verdicts],
    )  # fmt: skip
    bad = [v.reason for v in verdicts if not v.ok]
    if bad:
        raise JobFailed(f"snapshot {plan.short} restored, but the scratch site fails its checks: {'; '.join(bad)}")
    if rto > drill.timeout_seconds:
        raise JobFailed(f"restore + verify took {rto:.0f} s, more than the plan's RTO of {drill.timeout_seconds} s")
    return (
        f"snapshot {plan.short} restored and {len(verdicts)} page(s) ok: RTO {rto:.0f} s "
        f"(plan {drill.timeout_seconds} s), RPO {rpo / 60:.0f} min"
    )


def do_drill(ctx: Context) -> str:
    drill = ctx.site.drill
    if drill is None:
        raise JobFailed(f"this host runs no drills of {ctx.site.id} (no [sites.{ctx.site.id}.drill] table)",
                        exitcodes.CONFIG)  # fmt: skip
    refuse_if_live(ctx)
    scratch = scratch_of(ctx.site, drill)
    leftovers = remove_scratch(ctx, scratch, drill)
    if leftovers:
        log.warning("drill %s: removed what an earlier drill left: %s", ctx.site.id, ", ".join(leftovers))
        ctx.figures["leftovers_removed"] = leftovers
    failure: BaseException | None = None
    try:
        summary = _restore_and_verify(ctx, drill, scratch)
    except BaseException as e:
        failure = e
        raise
    finally:
        try:
            remove_scratch(ctx, scratch, drill)
        except (JobFailed, mariadb.DatabaseError, OSError) as e:
            reason = getattr(e, "message", None) or str(e)
            ctx.figures["scratch_not_removed"] = reason  # the next drill removes it by name
            if failure is None:
                raise JobFailed(f"the drill passed, but its scratch site was not removed: {reason}") from None
            log.error("drill %s: scratch site not removed: %s", ctx.site.id, reason)
    return summary


def drill(config: Config, site_id: str, *, wait: bool = False, settle: Settle | None = None) -> JobResult:
    site = config.site(site_id)
    timeout = site.drill.timeout_seconds if site.drill else site.jobs.restore_timeout_seconds
    return run_job(config, site_id, "drill", do_drill, timeout=timeout, wait=wait, settle=settle)
