"""The servers' apt proxy: Debian's apt-cacher-ng, bound to the bridge address.

The servers have no route out; their apt requests go to this proxy, which
fetches from this machine's mirror (`backends_debian`) and caches the
packages under `<state>/cache/apt`, so the second server to install a
package, and every later lab, gets it from disk. Our own configuration
directory keeps the machine's apt-cacher-ng setup (if any) untouched.
"""

from __future__ import annotations

import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from infra.configure import ANSIBLE_DIR
from lab import procs
from lab.config import LabConfig
from lab.errors import LabError
from lab.mirror import DebianMirror
from lab.state import LabState

SUPPORT_DIR = Path("/usr/lib/apt-cacher-ng")


def _dir(config: LabConfig) -> Path:
    return config.run_dir / "apt-proxy"


def pid_file(config: LabConfig) -> Path:
    return _dir(config) / "apt-cacher-ng.pid"


def url(config: LabConfig) -> str:
    """What the servers put in `Acquire::http::Proxy`."""
    return f"http://{config.bridge_address}:{config.apt_port}"


def _conf(config: LabConfig, mirror: DebianMirror) -> str:
    lines = [
        f"CacheDir: {config.cache_dir / 'apt'}",
        f"LogDir: {_dir(config) / 'log'}",
        f"SupportDir: {SUPPORT_DIR}",
        f"SocketPath: {_dir(config) / 'socket'}",
        f"BindAddress: {config.bridge_address}",
        f"Port: {config.apt_port}",
        "ForeGround: 1",
        "ReportPage: acng-report.html",
        "ExThreshold: 4",
        # Requests for the machine's Debian mirror (and the known Debian mirrors) are served from our backend.
        "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
    ]
    if mirror.security is not None:
        parts = urlsplit(mirror.security.uri)
        lines.append(f"Remap-secdeb: {parts.netloc}{parts.path} /debian-security ; {mirror.security.uri}")
    return "\n".join(lines) + "\n"


def running(config: LabConfig) -> bool:
    return procs.running(pid_file(config)) is not None and _answers(config)


def _answers(config: LabConfig) -> bool:
    try:
        with urllib.request.urlopen(f"{url(config)}/acng-report.html", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def died(config: LabConfig) -> bool:
    """The proxy this lab started has stopped or no longer answers."""
    return pid_file(config).exists() and not running(config)


def start(config: LabConfig, mirror: DebianMirror, timeout: float = 15.0) -> bool:
    """Start the proxy unless it runs; True if it was started."""
    if running(config):
        return False
    procs.stop_recorded(pid_file(config))  # a recorded one that no longer answers
    conf_dir = _dir(config)
    (conf_dir / "log").mkdir(parents=True, exist_ok=True)
    (config.cache_dir / "apt").mkdir(parents=True, exist_ok=True)
    (conf_dir / "acng.conf").write_text(_conf(config, mirror))
    (conf_dir / "backends_debian").write_text(mirror.url.rstrip("/") + "/\n")
    log = conf_dir / "apt-cacher-ng.out"
    record = procs.spawn(["apt-cacher-ng", "-c", str(conf_dir)], pid_file=pid_file(config), log_file=log)
    deadline = time.monotonic() + timeout
    while not _answers(config):
        if not procs.alive(record):
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise LabError(f"the apt proxy (apt-cacher-ng) exited at start; {log}:\n  " + "\n  ".join(tail))
        if time.monotonic() > deadline:
            procs.stop(record)
            raise LabError(f"the apt proxy did not answer on {url(config)} within {timeout:.0f}s; see {log}")
        time.sleep(0.1)
    return True


# A server that was never converged, with apt lists older than this, updates them before its first
# converge (the common role's apt task refreshes lists older than an hour itself).
FRESH_LISTS_MINUTES = 50
# apt-cacher-ng moves an index it refreshes to <file>.<unix second>: two servers making it refresh one
# index in the same second collide, one request fails and that server's apt hangs. Starting the
# servers' updates this far apart keeps the refreshes in different seconds.
STAGGER_SECONDS = 1.2


def _never_converged_with_stale_lists() -> str:
    """A shell test: the common role's first-converge marker is absent and the lists are stale."""
    defaults = yaml.safe_load((ANSIBLE_DIR / "roles/common/defaults/main.yml").read_text())
    marker = shlex.quote(defaults["common_security_updates_marker"])
    return f'test ! -e {marker} && test -z "$(find /var/lib/apt/lists -maxdepth 0 -mmin -{FRESH_LISTS_MINUTES})"'


def update_lists(state: LabState, servers: Sequence[str]) -> list[str]:
    """`apt-get update` on each never-converged server with stale lists, started a second apart, before
    a fleet's first converge asks the proxy for the same indexes all at once. Returns what failed."""
    with ThreadPoolExecutor(max_workers=max(1, len(servers))) as pool:
        check = _never_converged_with_stale_lists()
        checks = list(pool.map(lambda server: state.ssh(server, check, timeout=60), servers))
        stale = [server for server, check in zip(servers, checks, strict=True) if check.returncode == 0]

        def update(index_and_server: tuple[int, str]) -> str | None:
            index, server = index_and_server
            time.sleep(index * STAGGER_SECONDS)
            done = state.ssh(server, "apt-get update -q", timeout=600)
            return None if done.returncode == 0 else f"{server}: {done.stderr.strip()[-300:]}"

        return [failed for failed in pool.map(update, enumerate(stale)) if failed]


def stop(config: LabConfig) -> bool:
    return procs.stop_recorded(pid_file(config))
