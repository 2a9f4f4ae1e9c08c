"""`carestack import`: a client's existing site (files + database) brought onto its carestack server.

    carestack import STACK_FILE --site SITE --hosts HOSTS_JSON
                     (--archive PATH.tar[.gz] | --from-ssh USER@HOST:PATH) [--dump PATH.sql[.gz]]
                     [--old-url URL] [--ssh-config FILE] [--ssh-key FILE]

The controller checks what it can before it touches a server (the site is one
of the stack's, the files exist), fetches the old site over SSH when asked
(`--from-ssh`: the files as a tar stream; the dump with `mysqldump` run on the
old host with that host's own client credentials, e.g. its ~/.my.cnf, and the
database name its wp-config.php names), uploads the two files to the site's
server (0600, root's, removed afterwards whatever happens) and runs the
agent's `import` verb there. The agent refuses bad input by name before it
replaces anything, stages and swaps the site in, rewrites the old URL to the
plan's, probes the plan's pages (undoing the import if one fails) and takes
the site's first backup (agent/README.md: import).

Exit codes: 0 imported and backed up; 1 the import or the backup failed on the
server (its message says what the site has); 2 refused before anything changed.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from infra.ansible_vars import HostAccess
from infra.command import Verbs
from infra.configure import ConfigureError, parse_hosts
from infra.plan import CarePlan, SitePlan, build_plan
from infra.spec import ClientSpec, SpecError, load_stack

INCOMING = "/var/lib/carestack/incoming"  # on the server: root's, 0700; uploads are removed after the run
_FROM_SSH = re.compile(r"^(?P<login>[A-Za-z0-9._-]+@[A-Za-z0-9.:\[\]-]+):(?P<path>/\S*)$")
_DB_NAME = re.compile(r"""define\(\s*['"]DB_NAME['"]\s*,\s*['"]([A-Za-z0-9_$-]+)['"]\s*\)""")
UNKNOWN_SITE = "UnknownSite"


class ImportRefused(Exception):
    """A refusal before anything changed; the message starts with the error's name."""


@dataclass(frozen=True)
class Target:
    plan: CarePlan
    site: SitePlan
    host: HostAccess


def resolve(stack: Path, site_id: str, hosts: dict[str, HostAccess]) -> Target:
    """The stack's site and the server it runs on; an unknown site id is refused by name."""
    spec = load_stack(stack)
    if not isinstance(spec, ClientSpec):
        raise ImportRefused(f"{stack}: a platform stack has no sites; give a client stack")
    plan = build_plan(spec)
    site = next((s for s in plan.sites if s.id == site_id), None)
    if site is None:
        known = ", ".join(s.id for s in plan.sites)
        raise ImportRefused(f"{UNKNOWN_SITE}: --site {site_id!r} is not a site of client {plan.client.id} ({known})")
    server = plan.hosting.server
    if server not in hosts:
        raise ImportRefused(f"--hosts: no entry for server {server!r}, where {site_id} runs")
    return Target(plan, site, hosts[server])


def _ssh_base(ssh_config: Path | None, ssh_key: Path | None) -> list[str]:
    argv = ["ssh", "-o", "BatchMode=yes"]
    argv += ["-F", str(ssh_config)] if ssh_config else ["-o", "StrictHostKeyChecking=accept-new"]
    argv += ["-i", str(ssh_key)] if ssh_key else []
    return argv


@dataclass(frozen=True)
class Remote:
    """One server reached over SSH as Ansible reaches it (its user, sudo when that is not root)."""

    ssh: list[str]
    login: str
    sudo: bool

    def argv(self, command: str) -> list[str]:
        return [*self.ssh, self.login, ("sudo -n " if self.sudo else "") + command]

    def run(
        self, command: str, *, stdin: Path | None = None, timeout: float = 3600
    ) -> subprocess.CompletedProcess[str]:
        if stdin is None:
            return subprocess.run(self.argv(command), capture_output=True, text=True, timeout=timeout, check=False)
        with open(stdin, "rb") as data:
            done = subprocess.run(self.argv(command), stdin=data, capture_output=True, timeout=timeout, check=False)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def remote_for(host: HostAccess, ssh: list[str]) -> Remote:
    return Remote(ssh, f"{host.ssh_user}@{host.address}", host.ssh_user != "root")


@contextmanager
def uploaded(remote: Remote, files: dict[str, Path], tag: str) -> Iterator[dict[str, str]]:
    """The files copied to the server (0600 under a 0700 directory), removed afterwards whatever happens."""
    names = {key: f"{INCOMING}/{tag}-{key}{''.join(path.suffixes[-2:])}" for key, path in files.items()}
    try:
        made = remote.run(f"install -d -m 0700 {INCOMING}")
        if made.returncode != 0:
            raise ImportRefused(f"{remote.login}: cannot create {INCOMING}: {made.stderr.strip()}")
        for key, path in files.items():
            done = remote.run(f"sh -c {shlex.quote(f'umask 077; cat > {names[key]}')}", stdin=path)
            if done.returncode != 0:
                raise ImportRefused(f"{remote.login}: uploading {path} failed: {done.stderr.strip()}")
        yield names
    finally:
        remote.run("rm -f " + " ".join(shlex.quote(n) for n in names.values()), timeout=60)


def fetch_from_ssh(source: str, ssh: list[str], workdir: Path, want_dump: bool) -> tuple[Path, Path | None]:
    """The old site's files (a tar stream) and, for a site with a database, its dump, over SSH."""
    m = _FROM_SSH.match(source)
    if not m:
        raise ImportRefused(f"--from-ssh: must be USER@HOST:/absolute/path, got {source!r}")
    login, path = m["login"], m["path"]
    archive = workdir / "from-ssh.tar.gz"
    with open(archive, "wb") as out:
        done = subprocess.run([*ssh, login, f"tar -C {shlex.quote(path)} -czf - ."], stdout=out,
                              stderr=subprocess.PIPE, timeout=3600, check=False)  # fmt: skip
    if done.returncode != 0:
        raise ImportRefused(f"--from-ssh: {login}: tar of {path} failed: {done.stderr.decode().strip()[-300:]}")
    if not want_dump:
        return archive, None
    config = subprocess.run([*ssh, login, f"cat {shlex.quote(path + '/wp-config.php')}"],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    name = _DB_NAME.search(config.stdout) if config.returncode == 0 else None
    if name is None:
        raise ImportRefused(f"--from-ssh: {login}:{path}/wp-config.php names no DB_NAME; give --dump instead")
    dump = workdir / "from-ssh.sql.gz"
    command = f"mysqldump --single-transaction --quick --default-character-set=utf8mb4 {shlex.quote(name[1])} | gzip"
    with open(dump, "wb") as out:
        done = subprocess.run([*ssh, login, f"set -o pipefail 2>/dev/null; {command}"], stdout=out,
                              stderr=subprocess.PIPE, timeout=3600, check=False)  # fmt: skip
    if done.returncode != 0:
        raise ImportRefused(
            f"--from-ssh: {login}: mysqldump {name[1]} failed (it uses that host's own client credentials, "
            f"e.g. ~/.my.cnf): {done.stderr.decode().strip()[-300:]}"
        )
    return archive, dump


def run_import(
    target: Target,
    archive: Path,
    dump: Path | None,
    *,
    ssh: list[str],
    old_url: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Upload, run the agent's import (and its first backup), clean up; the agent's exit code."""
    site = target.site
    remote = remote_for(target.host, ssh)
    files = {"archive": archive} | ({"dump": dump} if dump else {})
    tag = f"{site.id}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    with uploaded(remote, files, tag) as names:
        command = ["carestack-agent", "import", site.id, "--wait", "--archive", names["archive"]]
        command += ["--dump", names["dump"]] if "dump" in names else []
        command += ["--new-url", site.url] + (["--old-url", old_url] if old_url else [])
        done = remote.run(shlex.join(command), timeout=4 * 3600)
    print(done.stdout, end="", file=out)
    print(done.stderr, end="", file=sys.stderr)
    return done.returncode


def _import(args: argparse.Namespace) -> int:
    try:
        target = resolve(args.stack, args.site, parse_hosts(args.hosts))
        if (args.archive is None) == (args.from_ssh is None):
            raise ImportRefused("give the site's files with exactly one of --archive and --from-ssh")
        for option, path in (("--archive", args.archive), ("--dump", args.dump)):
            if path is not None and not path.is_file():
                raise ImportRefused(f"{option}: {path}: no such file")
        if target.site.database is None and args.dump is not None:
            raise ImportRefused(f"--dump: site {target.site.id} ({target.site.kind}) has no database")
        if target.site.database is not None and args.dump is None and args.from_ssh is None:
            raise ImportRefused(f"--dump: site {target.site.id} has a database: give its SQL dump")
        ssh = _ssh_base(args.ssh_config, args.ssh_key)
        with tempfile.TemporaryDirectory(prefix="carestack-import-") as work:
            archive, dump = args.archive, args.dump
            if args.from_ssh:
                want_dump = target.site.database is not None and dump is None
                archive, fetched = fetch_from_ssh(args.from_ssh, ssh, Path(work), want_dump)
                dump = dump or fetched
            return run_import(target, archive, dump, ssh=ssh, old_url=args.old_url)
    except (SpecError, ConfigureError, ImportRefused) as exc:
        print(exc, file=sys.stderr)
        return 2


def register(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "import",
        help="bring a client's existing site (files + SQL dump) onto its server, rewrite its URL, back it up",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", type=Path, metavar="STACK_FILE")
    parser.add_argument("--site", required=True, metavar="SITE", help="the site's id in the plan (`carestack plan`)")
    parser.add_argument(
        "--hosts", required=True, metavar="HOSTS_JSON", help='{"server": {"address": ip, "ssh_user": "admin"}}'
    )
    parser.add_argument("--archive", type=Path, metavar="PATH", help="the site's files: .tar, .tar.gz, .tgz ...")
    parser.add_argument("--dump", type=Path, metavar="PATH", help="its MySQL/MariaDB dump: .sql or .sql.gz")
    parser.add_argument(
        "--from-ssh", metavar="USER@HOST:PATH", help="fetch the files (and, without --dump, the database) over SSH"
    )
    parser.add_argument("--old-url", metavar="URL", help="the old site's URL (default: the dump's home option)")
    parser.add_argument("--ssh-config", type=Path, metavar="FILE", help="ssh config for reaching the servers")
    parser.add_argument("--ssh-key", type=Path, metavar="FILE", help="private key for reaching the servers")
    parser.set_defaults(run=_import)
