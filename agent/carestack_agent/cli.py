"""carestack-agent command line: the verbs systemd units and operators call."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, config_docs, exitcodes
from .actions import backup as backup_action
from .actions import check as check_action
from .actions import drill as drill_action
from .actions import handover as handover_action
from .actions import import_site as import_action
from .actions import init as init_action
from .actions import perf as perf_action
from .actions import prune as prune_action
from .actions import recovery
from .actions import restore as restore_action
from .actions import rotate as rotate_action
from .actions import scan as scan_action
from .actions import status as status_action
from .actions import update as update_action
from .config import Config, ConfigError, config_path, load
from .jobs import Context, JobResult
from .providers.failed import FailedVersions, UnknownComponent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carestack-agent", description=__doc__)
    p.add_argument("--config", help="config file (default $CARESTACK_AGENT_CONFIG or /etc/carestack/agent.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"carestack-agent {__version__}")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def site_verb(name: str, help_: str, wait_default: bool = False) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("site")
        sp.add_argument("--wait", action="store_true", default=wait_default, help="wait for the site's lock")
        return sp

    b = site_verb("backup", "files + database in one snapshot, then forget by keep-*")
    b.add_argument("--reason", choices=backup_action.REASONS, default="manual")
    site_verb("prune", "remove unreferenced data (own schedule)")
    site_verb("check", "restic check with a rotating --read-data-subset")
    site_verb("init", "initialize the repository (idempotent)", wait_default=True)
    r = site_verb("restore", "restore files and database from a snapshot")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--snapshot", help="snapshot id (prefix)")
    which.add_argument("--before", help="latest snapshot at or before this time (ISO 8601)")
    r.add_argument("--target", help="restore files under this directory instead of in place")
    r.add_argument("--database-socket", help="restore the database into the server on this socket")
    r.add_argument("--database-name", help="restore the database under this name")
    r.add_argument("--no-files", action="store_true", help="database only")
    r.add_argument("--no-database", action="store_true", help="files only")
    u = site_verb("update", "the plan's updates: snapshot, apply, probe, roll back if the site breaks")
    what = u.add_mutually_exclusive_group()
    what.add_argument("--retry", action="append", default=[], metavar="COMPONENT",
                      help="forget the versions of COMPONENT that broke the site (a package, plugin or theme "
                           "name, or `release`) so they are offered again; repeatable")  # fmt: skip
    what.add_argument("--acknowledge", action="store_true",
                      help="mark the open rollbacks as dealt with (runs no update); versions stay held")  # fmt: skip
    site_verb("settle", "finish what a crashed or killed job left (run by the job units' OnFailure= and at boot)")
    sc = site_verb("scan", "security scan: file integrity, core, known-bad patterns, database, host, versions")
    sc.add_argument("--accept", action="store_true", help="take the current state as the known-good baseline")
    site_verb("perf", "time the checked pages from the server; the last week's medians against the weeks before")
    im = site_verb("import", "put a client's existing site (files archive + SQL dump) in place of this site, "
                            "then take its first backup")  # fmt: skip
    im.add_argument("--archive", required=True, help="the site's files: a tar archive (.tar, .tar.gz, .tgz, ...)")
    im.add_argument("--dump", help="its MySQL/MariaDB SQL dump (plain or gzip); required when the site has a database")
    im.add_argument("--old-url", help="the URL the old site stored (default: the dump's home option)")
    im.add_argument("--new-url", help="the URL to rewrite it to (default: WP_HOME of the site's wp-config.php)")
    site_verb("drill", "on the standby: restore the latest complete snapshot into a scratch site, check its "
                       "pages, record RTO and RPO, remove the scratch site")  # fmt: skip
    h = site_verb("handover", "offboarding: the site's files and database dump from its newest complete snapshot, "
                              "as a tar.gz, a .sql.gz and a manifest in a root-only directory")  # fmt: skip
    h.add_argument("--out", required=True, help="the directory to write them into (made 0700)")
    h.add_argument("--snapshot", help="snapshot id (prefix); default: the newest complete one")
    s = sub.add_parser("status", help="last result of each job per site")
    s.add_argument("--json", action="store_true")
    sub.add_parser(
        "rotate-passwords",
        help="read {password file: new content} as JSON on stdin (the converge does); for each file that "
        "changes, add the new password to the sites' repositories, replace the file, remove the old keys",
    )
    sub.add_parser("validate", help="check the configuration; print every error")
    sub.add_parser("sample-config", help="print a valid sample configuration naming every key")
    return p


def _report(result: JobResult) -> int:
    stream = sys.stdout if result.ok else sys.stderr
    recovered = result.figures.get("finished_update")
    if recovered:  # what this run settled first, and how that ended
        print(f"{result.job} {result.site}: first {recovery.describe(recovered)}", file=stream)
    for note in result.figures.get("held", []) if result.job == "update" else []:
        print(f"{result.job} {result.site}: {note}", file=stream)
    print(f"{result.job} {result.site}: {'ok' if result.ok else 'FAILED'}: {result.message}", file=stream)
    return result.exit_code


def _rotate(config: Config) -> int:
    try:
        done = rotate_action.rotate(config, rotate_action.read_wanted(sys.stdin.read()))
    except rotate_action.RotationFailed as e:
        print(f"rotate-passwords: {e}", file=sys.stderr)
        return e.exit_code
    print(json.dumps({"changed": done}))
    return exitcodes.OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if args.verb == "sample-config":
        print(config_docs.sample(), end="")
        return exitcodes.OK
    if args.verb == "rotate-passwords" and not config_path(args.config).exists():
        print(json.dumps({"changed": []}))  # the first converge: no site uses a password file yet
        return exitcodes.OK
    try:
        config = load(args.config)
    except ConfigError as e:
        for line in e.errors:
            print(line, file=sys.stderr)
        return exitcodes.CONFIG
    if args.verb == "validate":
        print(f"{config.path}: ok ({len(config.sites)} site(s): {', '.join(sorted(config.sites)) or 'none'})")
        return exitcodes.OK
    if args.verb == "status":
        data = status_action.collect(config)
        print(json.dumps(data, indent=2) if args.json else status_action.render(data))
        return exitcodes.OK if status_action.healthy(data) else exitcodes.FAILED
    if args.verb == "rotate-passwords":
        return _rotate(config)
    if args.site not in config.sites:  # a mistyped name is a usage error, not a broken configuration
        known = ", ".join(sorted(config.sites)) or "none"
        print(f"{args.site}: no such site in {config.path} (sites: {known})", file=sys.stderr)
        return exitcodes.USAGE

    # Every job on a site first settles an update an earlier run left half-done (crash, kill, failed rollback),
    # and puts the previous site back if an import died before it finished.
    def settle(ctx: Context) -> None:
        recovery.finish_interrupted(ctx)
        import_action.finish_interrupted_import(ctx)

    if args.verb == "backup":
        return _report(backup_action.backup(config, args.site, args.reason, wait=args.wait, settle=settle))
    if args.verb == "prune":
        return _report(prune_action.prune(config, args.site, wait=args.wait, settle=settle))
    if args.verb == "check":
        return _report(check_action.check(config, args.site, wait=args.wait, settle=settle))
    if args.verb == "update":
        failed = FailedVersions(config.agent.state_dir, args.site)
        try:  # before anything runs: every name must mean one remembered component
            for component in args.retry:
                failed.match(component)
        except UnknownComponent as e:
            print(e, file=sys.stderr)
            return exitcodes.USAGE
        asked = update_action.UpdateOptions(retry=tuple(args.retry), acknowledge=args.acknowledge)
        updated = update_action.update(config, args.site, asked, wait=args.wait, settle=settle)
        if updated.ok and updated.figures.get("changes"):  # the updated site is scanned, then the new baseline
            _report(scan_action.scan(config, args.site, after_update=True, wait=True, settle=settle))
        return _report(updated)
    if args.verb == "settle":
        return _report(recovery.settle(config, args.site, wait=args.wait, settle_with=settle))
    if args.verb == "scan":
        return _report(scan_action.scan(config, args.site, accept=args.accept, wait=args.wait, settle=settle))
    if args.verb == "perf":
        return _report(perf_action.perf(config, args.site, wait=args.wait, settle=settle))
    if args.verb == "drill":  # the site is not live on the standby: nothing of its own to settle here
        return _report(drill_action.drill(config, args.site, wait=args.wait))
    if args.verb == "handover":
        wanted = handover_action.HandoverOptions(out=Path(args.out), snapshot=args.snapshot)
        return _report(handover_action.handover(config, args.site, wanted, wait=args.wait, settle=settle))
    if args.verb == "init":
        return _report(init_action.init(config, args.site, wait=args.wait, settle=settle))
    if args.verb == "import":
        given = import_action.ImportOptions(
            archive=Path(args.archive),
            dump=Path(args.dump) if args.dump else None,
            old_url=args.old_url,
            new_url=args.new_url,
        )
        imported = import_action.import_site(config, args.site, given, wait=args.wait, settle=settle)
        code = _report(imported)
        if imported.ok:  # the imported site's first snapshot, a plain backup job (its heartbeat, its record)
            return _report(backup_action.backup(config, args.site, "manual", wait=True, settle=settle))
        return code
    if args.verb == "restore":
        try:
            before = restore_action.parse_time(args.before) if args.before else None
        except ValueError:
            print(f"--before: not an ISO 8601 time: {args.before!r}", file=sys.stderr)
            return exitcodes.USAGE
        opts = restore_action.RestoreOptions(
            snapshot=args.snapshot,
            before=before,
            target=Path(args.target) if args.target else None,
            database_socket=Path(args.database_socket) if args.database_socket else None,
            database_name=args.database_name,
            files=not args.no_files,
            database=not args.no_database,
        )
        return _report(restore_action.restore(config, args.site, opts, wait=args.wait, settle=settle))
    return exitcodes.USAGE
