"""The lab's Uptime Kuma: installed from the npm registry, started and stopped by PID.

    package = ensure_installed(cache_dir)                   # once per machine, about 2.5 min
    server = start(state_dir, port=3001, bridge_host="10.77.0.1")  # idempotent
    creds = ensure_admin(server, state_dir)                  # 0600 credentials.json
    stop(state_dir)

Everything of one server lives in `state_dir`: `data/` (Kuma's DATA_DIR, its
SQLite database), `kuma.pid`, `kuma.log`, `credentials.json`, and the relay's
PID and log when there is one.

Two addresses, one port: Kuma 2.0.0-dev.0 calls `httpServer.listen(port, host)`
once (server/server.js), so it listens on exactly one address or on all of
them. It listens on loopback (tests, the CLI, the sync); with `bridge_host`
a small TCP relay (`lab.tcp_relay`) listens on the bridge address and
the same port, so the lab servers' push heartbeats arrive without binding
0.0.0.0.

The published package needs two fixes (FACTS.md): the `db/patch-*.sql` files
copied into `db/old_migrations/` (the installer does it once), and
`<data dir>/db-config.json` naming the sqlite3 client (`start` writes it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.kuma_client import KumaError, KumaLogin, read_login
from infra.secret_file import write_secret
from lab import procs
from lab.errors import LabError
from lab.kuma_sources import NPM_VERSION

KUMA_PACKAGE = "uptime-kuma"
KUMA_VERSION = NPM_VERSION
CACHE_DIR_ENV = "CARESTACK_CACHE_DIR"
DEFAULT_CACHE_DIR = Path("/var/cache/carestack")
ADMIN_USER = "admin"
CLOSED_PROXY = "http://127.0.0.1:9"

PID_FILE = "kuma.pid"
LOG_FILE = "kuma.log"
RELAY_PID_FILE = "kuma-relay.pid"
RELAY_LOG_FILE = "kuma-relay.log"
ADDRESS_FILE = "kuma.json"
CREDENTIALS_FILE = "credentials.json"
_READY_MARKER = ".carestack-ready"
# Node's default sqlite3 client setting; without `client` Kuma 2.0.0-dev.0 runs MariaDB SQL
# for uptime and heartbeat queries and they fail.
_DB_CONFIG = {"type": "sqlite", "client": "sqlite3"}


class KumaServerError(LabError):
    """Kuma could not be installed, started or set up; the message says why and what to do."""


@dataclass(frozen=True)
class KumaServer:
    host: str
    port: int
    pid: int
    bridge_host: str | None = None

    @property
    def url(self) -> str:
        """Where this machine reaches Kuma."""
        return f"http://{self.host}:{self.port}"

    @property
    def bridge_url(self) -> str | None:
        """Where the lab servers reach Kuma (push heartbeats), if a relay runs."""
        return f"http://{self.bridge_host}:{self.port}" if self.bridge_host else None


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR)


# -- install --------------------------------------------------------------------------


def package_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{KUMA_PACKAGE}-{KUMA_VERSION}" / "node_modules" / KUMA_PACKAGE


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise KumaServerError("node is not installed: Uptime Kuma needs Node.js 18 or newer (apt-get install nodejs)")
    return node


def _apply_package_fixes(package: Path) -> None:
    """Copy the db patches where the published package's migration step looks for them."""
    old = package / "db" / "old_migrations"
    old.mkdir(exist_ok=True)
    for patch in sorted((package / "db").glob("patch-*.sql")):
        if not (old / patch.name).exists():
            shutil.copy2(patch, old / patch.name)


def ensure_installed(cache_dir: Path | None = None) -> Path:
    """Install uptime-kuma@2.0.0-dev.0 under `cache_dir` once; return the package directory.

    npm builds the sqlite3 binding from source (its prebuilt download is not
    reachable here): that needs g++, make and python3, and node's headers
    (`nodedir`, /usr/include/node from the nodejs package). A lock serializes
    concurrent installers; the install happens in a temporary directory that is
    renamed into place, so an interrupted install is never mistaken for a
    finished one.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    package = package_dir(cache_dir)
    if (package / _READY_MARKER).exists():
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise KumaServerError("npm is not installed: it is needed once to install Uptime Kuma (apt-get install npm)")
    _node()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".kuma-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (package / _READY_MARKER).exists():  # another process finished meanwhile
            return package
        root = package.parent.parent
        tmp = root.with_name(root.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log = cache_dir / "kuma-npm-install.log"
        env = dict(os.environ)
        if Path("/usr/include/node/node.h").exists():
            env.setdefault("npm_config_nodedir", "/usr")  # build against local headers, no download
        with open(log, "wb") as out:
            result = subprocess.run(
                [npm, "install", "--prefix", str(tmp), "--no-audit", "--no-fund", "--omit=dev",
                 f"{KUMA_PACKAGE}@{KUMA_VERSION}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )  # fmt: skip
        staged = tmp / "node_modules" / KUMA_PACKAGE
        if result.returncode != 0 or not (staged / "server" / "server.js").exists():
            raise KumaServerError(f"npm install {KUMA_PACKAGE}@{KUMA_VERSION} failed; {log}:\n{procs.log_tail(log)}")
        _apply_package_fixes(staged)
        (staged / _READY_MARKER).write_text(f"{KUMA_PACKAGE}@{KUMA_VERSION}\n")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return package


# -- start / stop ---------------------------------------------------------------------


def _answers(host: str, port: int) -> bool:
    """Kuma's HTTP server is up (its entry page redirects to the dashboard or setup)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/api/entry-page", timeout=2) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def running(state_dir: Path) -> KumaServer | None:
    """The server recorded in `state_dir` if it is still our process and answers."""
    state_dir = Path(state_dir)
    record = procs.running(state_dir / PID_FILE)
    try:
        address = json.loads((state_dir / ADDRESS_FILE).read_text())
        server = KumaServer(str(address["host"]), int(address["port"]), 0, address.get("bridge_host"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record is None or not _answers(server.host, server.port):
        return None
    if server.bridge_host and procs.running(state_dir / RELAY_PID_FILE) is None:
        return None
    return KumaServer(server.host, server.port, record.pid, server.bridge_host)


def _kuma_alone(state_dir: Path, host: str, port: int, bridge_host: str | None) -> int | None:
    """The PID of our Kuma if it answers at host:port as recorded, whatever became of its relay."""
    record = procs.running(state_dir / PID_FILE)
    try:
        address = json.loads((state_dir / ADDRESS_FILE).read_text())
        recorded = (str(address["host"]), int(address["port"]), address.get("bridge_host"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record is None or recorded != (host, port, bridge_host) or not _answers(host, port):
        return None
    return record.pid


def start(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 3001,
    bridge_host: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = 120.0,
    package: Path | None = None,
    extra_ca_file: Path | None = None,
    direct_hosts: Sequence[str] = (),
) -> KumaServer:
    """Start Kuma on host:port (and a relay on bridge_host:port); a live recorded server is reused.

    `extra_ca_file`: roots Kuma trusts beside the public ones (node reads it once, at start: stop
    Kuma to change it). `direct_hosts`: addresses Kuma reaches directly, past the closed proxy.

    Raises KumaServerError with the tail of Kuma's log if it exits or does not
    answer within `timeout` seconds (a fresh database takes about 10 s).
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    live = running(state_dir)
    if live is not None:
        if (live.host, live.port, live.bridge_host) != (host, port, bridge_host):
            raise KumaServerError(
                f"the Kuma of {state_dir} already runs on {live.url} (bridge {live.bridge_host}); "
                f"stop it before starting it on {host}:{port} (bridge {bridge_host})"
            )
        return live
    alone = _kuma_alone(state_dir, host, port, bridge_host)
    if alone is not None and bridge_host:  # Kuma runs and answers; only its relay died
        procs.stop_recorded(state_dir / RELAY_PID_FILE)
        _start_relay(state_dir, bridge_host, port, host)
        return KumaServer(host, port, alone, bridge_host)
    stop(state_dir)  # a half-started server, a hung one, or a lone relay from a crashed run
    for address in (host, bridge_host):
        if address and _port_taken(address, port):
            raise KumaServerError(f"{address}:{port} is already in use by another process; choose another Kuma port")
    package = package or ensure_installed(cache_dir)  # another installed Kuma, or the npm one
    data_dir = state_dir / "data"
    data_dir.mkdir(mode=0o700, exist_ok=True)
    (data_dir / "db-config.json").write_text(json.dumps(_DB_CONFIG))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_dir),
        "DATA_DIR": f"{data_dir}/",
        "UPTIME_KUMA_HOST": host,
        "UPTIME_KUMA_PORT": str(port),
        "NODE_ENV": "production",
        # Nothing leaves the machine: Kuma's update check (an HTTPS request at boot and every
        # 48 h) goes to a closed loopback port instead of the internet. The lab's sites (their
        # addresses, the domain as Host header) are reached directly, over http and https.
        "https_proxy": CLOSED_PROXY,
    }
    if direct_hosts:
        env["no_proxy"] = ",".join(direct_hosts)
    if extra_ca_file is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(extra_ca_file)
    log = state_dir / LOG_FILE
    record = procs.spawn(
        [_node(), "server/server.js"], pid_file=state_dir / PID_FILE, log_file=log, cwd=package, env=env
    )
    (state_dir / ADDRESS_FILE).write_text(json.dumps({"host": host, "port": port, "bridge_host": bridge_host}))
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if not procs.alive(record):
            stop(state_dir)
            raise KumaServerError(f"Uptime Kuma exited during start-up; {log}:\n{procs.log_tail(log)}")
        if time.monotonic() > deadline:
            stop(state_dir)
            raise KumaServerError(
                f"Uptime Kuma did not answer on {host}:{port} within {timeout:.0f}s; {log}:\n{procs.log_tail(log)}"
            )
        time.sleep(0.2)
    if bridge_host:
        _start_relay(state_dir, bridge_host, port, host)
    return KumaServer(host, port, record.pid, bridge_host)


def _start_relay(state_dir: Path, listen_host: str, port: int, target_host: str) -> None:
    log = state_dir / RELAY_LOG_FILE
    record = procs.spawn(
        [sys.executable, "-m", "lab.tcp_relay", f"{listen_host}:{port}", f"{target_host}:{port}"],
        pid_file=state_dir / RELAY_PID_FILE,
        log_file=log,
        cwd=Path(__file__).resolve().parents[1],  # the repository root, where `lab` and `infra` import from
    )
    deadline = time.monotonic() + 10
    while not _answers(listen_host, port):
        if not procs.alive(record) or time.monotonic() > deadline:
            stop(state_dir)
            raise KumaServerError(
                f"the relay to Kuma on {listen_host}:{port} did not start; {log}:\n{procs.log_tail(log)}"
            )
        time.sleep(0.05)


def stop(state_dir: Path) -> bool:
    """Stop the relay and Kuma by their recorded PIDs; True if Kuma was running."""
    state_dir = Path(state_dir)
    procs.stop_recorded(state_dir / RELAY_PID_FILE)
    stopped = procs.stop_recorded(state_dir / PID_FILE, timeout=15.0)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / ADDRESS_FILE).unlink()
    return stopped


# -- admin account --------------------------------------------------------------------


def ensure_admin(server: KumaServer, state_dir: Path, username: str = ADMIN_USER) -> KumaLogin:
    """Create Kuma's admin account on first start; afterwards return the saved credentials.

    The password is generated here and saved in `state_dir/credentials.json`
    (mode 0600). A Kuma that already has an admin but no saved credentials
    (its data dir was set up by someone else) is an error: the password cannot
    be recovered.
    """
    from uptime_kuma_api import UptimeKumaApi, UptimeKumaException  # the lab CLI starts faster without it

    from infra.kuma_client import need_setup

    path = Path(state_dir) / CREDENTIALS_FILE
    try:
        api = UptimeKumaApi(server.url, timeout=30)
    except UptimeKumaException:
        raise KumaServerError(
            f"cannot connect to Uptime Kuma at {server.url}; see {Path(state_dir) / LOG_FILE}"
        ) from None
    try:
        if need_setup(api, server.url):
            creds = KumaLogin(server.url, username, secrets.token_urlsafe(24))
            api.setup(creds.username, creds.password)
            write_secret(path, creds.to_json())
            return creds
    finally:
        api.disconnect()
    if not path.exists():
        raise KumaServerError(
            f"the Kuma at {server.url} already has an admin account but {path} is missing; "
            f"stop Kuma and remove {Path(state_dir) / 'data'} to start afresh"
        )
    try:
        saved = read_login(path)
    except KumaError as exc:
        raise KumaServerError(str(exc)) from None
    return KumaLogin(server.url, saved.username, saved.password)


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.kuma_server install [CACHE_DIR]`: the setup script's install step."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "install" or len(args) > 2:
        print("usage: python -m lab.kuma_server install [CACHE_DIR]", file=sys.stderr)
        return 2
    try:
        print(ensure_installed(Path(args[1]) if len(args) == 2 else None))
    except KumaServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
