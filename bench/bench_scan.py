#!/usr/bin/env python3
"""The security scan's cost: a first scan (every file hashed), a no-change rescan (hash cache), peak RSS,
and the site's p95 response time during a scan against idle.

Builds a site from Debian's WordPress (/usr/share/wordpress, links resolved) plus N synthetic upload
files of S bytes in a temporary directory, takes the baseline (`scan --accept`), then runs `scan` twice
through the real CLI, each in its own process. No database (the database check has its own cost: a few
queries). Needs Debian's wordpress and yara packages. Options: --files N (default 30000), --size S
(default 32768: about 1 GB with the defaults), --keep (leave the temporary directory).

Latency (--latency-seconds, default 20; 0: skip): a PHP-rendered page (PHP's built-in server, a page
that builds a 400-row table with a hash per row, a few ms of PHP work) is requested 20 times a second,
first with nothing else running (idle), then during a first scan (no verdict cache: yara reads every
file) started three ways: the agent as the CLI runs it (its yara under the agent's `nice`), under
`nice -n 19 ionice -c 3` as a unit with Nice=19 and IOSchedulingClass=idle runs it, and with the whole
agent at normal priority (nice 0 for yara too). cgroup weights (the unit's CPUWeight=/IOWeight=) need
systemd as PID 1, which this machine lacks: --lab SITE measures on a running lab server instead
(CARESTACK_LAB_DIR names the lab): the same files are written into the site's uploads, the site's first
checked page (WordPress under nginx and PHP-FPM) is requested from this machine twice a second, idle,
then during a first scan started by the site's systemd unit (CPUWeight=, IOWeight=, idle I/O class) and
during one started from an ssh session (no unit weights); then a no-change rescan by the unit. The
files are removed and the site's baseline taken again afterwards.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_agent_backup import Load  # noqa: E402
from rows import at_most, record  # noqa: E402

from infra.agent_config import dumps  # noqa: E402

PLAN_JOBS = {"backup_timeout_seconds": 3600, "check_timeout_seconds": 3600, "prune_timeout_seconds": 3600,
             "restore_timeout_seconds": 3600, "check_read_data_subsets": 1, "update_timeout_seconds": 3600,
             "repository_stall_seconds": 300, "scan_timeout_seconds": 3600, "perf_timeout_seconds": 600}  # fmt: skip

UPDATES = {"providers": [], "apt_policy": "security", "wordpress_policy": "minor", "rollback": True,
           "probe_slowdown_limit": 3.0}  # fmt: skip
PERF = {"requests_per_page": 3, "limit_percent": 20.0, "floor_ms": 100, "baseline_weeks": 4, "keep_days": 35}

# A page with a few milliseconds of PHP work, as a small CMS page renders.
PAGE = """<?php
$rows = [];
for ($i = 0; $i < 400; $i++) {
    $rows[] = '<tr><td>' . $i . '</td><td>' . hash('sha256', str_repeat((string) $i, 200)) . '</td></tr>';
}
echo '<html><body><table>' . implode("\\n", $rows) . '</table></body></html>';
"""


def php_server(docroot: Path) -> tuple[subprocess.Popen[bytes], int]:
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "index.php").write_text(PAGE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(["php", "-S", f"127.0.0.1:{port}", "-t", str(docroot)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("php -S did not start")


def run(config: Path, *args: str, prefix: Sequence[str] = ()) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the agent process, its last line."""
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(config), "PYTHONPATH": str(ROOT / "agent")}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        argv = [*prefix, sys.executable, "-m", "carestack_agent", *args]
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        _, _, usage = os.wait4(proc.pid, 0)  # this process's own peak, not the largest child so far
        took = time.monotonic() - started
        log.seek(0)
        out = log.read().strip().splitlines()
    return took, usage.ru_maxrss, out[-1] if out else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=30000)
    ap.add_argument("--size", type=int, default=32768)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--lab", metavar="SITE", help="measure on the lab server running SITE instead")
    args = ap.parse_args()
    if args.lab:
        return on_lab(args.lab, args.files, args.size, args.latency_seconds or 30.0)
    base = Path(tempfile.mkdtemp(prefix="cs-bench-scan-"))
    try:
        root = base / "www"
        shutil.copytree(
            "/usr/share/wordpress", root, ignore=lambda d, n: ["wp-config.php"] if d.endswith("wordpress") else []
        )
        for i in range(args.files):
            p = root / f"wp-content/uploads/{i // 1000:03d}/file-{i}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(args.size))
        (base / "pw").write_text("unused\n")
        os.chmod(base / "pw", 0o600)
        site = {"domain": "bench.example", "kind": "wordpress", "root": str(root), "paths": [str(root)], "exclude": [],
                "repository": str(base / "repo"), "password_file": str(base / "pw"),
                "retention": {"keep_last": 0, "keep_hourly": 0, "keep_daily": 7, "keep_weekly": 0, "keep_monthly": 0,
                              "keep_yearly": 0},
                "jobs": PLAN_JOBS, "updates": UPDATES, "perf": PERF, "checks": []}  # fmt: skip
        config = base / "agent.toml"
        config.write_text(dumps({"agent": {"host": "bench", "state_dir": str(base / "state")}, "sites": {"b": site}}))
        config0 = base / "agent-nice0.toml"
        agent0 = {"host": "bench", "state_dir": str(base / "state"), "nice": 0, "ionice_idle": False}
        config0.write_text(dumps({"agent": agent0, "sites": {"b": site}}))
        files = sum(1 for _ in root.rglob("*"))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"site: {files} entries, {size / 2**20:.0f} MiB")
        print(f"{'run':<28} {'seconds':>8} {'peak RSS MiB':>13}  result")
        for label, argv in (("baseline (scan --accept)", ("scan", "b", "--accept")), ("first scan", ("scan", "b")),
                            ("no-change rescan", ("scan", "b"))):  # fmt: skip
            took, rss, last = run(config, *argv)
            print(f"{label:<28} {took:8.1f} {rss / 1024:13.0f}  {last[:90]}")
            if label != "baseline (scan --accept)":
                record(f"scan: {label} ({files} files, {size / 2**20:.0f} MiB)", took, "s")
            else:
                record(f"scan: peak RSS of the baseline ({files} files)", rss / 1024, "MiB", goal="< 90 MiB",
                       met=at_most(rss / 1024, 90))  # fmt: skip
        if args.latency_seconds > 0:
            latency(base, config, config0, args.latency_seconds)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


def latency(base: Path, config: Path, config0: Path, seconds: float) -> None:
    server, port = php_server(base / "php")
    try:
        with Load(port, rate=20.0, path="/index.php") as warm:  # PHP's first requests compile the page
            time.sleep(2)
        with Load(port, rate=20.0, path="/index.php") as idle:
            time.sleep(seconds)
        median = statistics.median(idle.samples)
        print(f"\nsite p95, PHP page at 20 req/s: idle {idle.p95():.1f} ms (median {median:.1f} ms, "
              f"{len(idle.samples)} requests; warm-up {len(warm.samples)})")  # fmt: skip
        print(f"{'first scan started':<44} {'seconds':>8} {'p95 ms':>7} {'x idle':>7}  result")
        variants = (("as the CLI runs it (yara niced)", config, ()),
                    ("under nice -n 19 ionice -c 3 (unit Nice=)", config, ("nice", "-n", "19", "ionice", "-c", "3")),
                    ("at normal priority (yara nice 0)", config0, ()))  # fmt: skip
        for label, cfg, prefix in variants:
            (base / "state/scan/b/patterns.json").unlink(missing_ok=True)  # yara reads every file again
            with Load(port, rate=20.0, path="/index.php") as load:
                took, _, last = run(cfg, "scan", "b", prefix=prefix)
            print(f"{label:<44} {took:8.1f} {load.p95():7.1f} {load.p95() / idle.p95():7.2f}  {last[:40]}")
            if cfg is config and not prefix:
                record("site p95 (PHP page) during a first scan", load.p95(), "ms", anchor="the site idle",
                       anchor_median=idle.p95(), goal="<= 1.2x", met=at_most(load.p95() / idle.p95(), 1.2))  # fmt: skip
    finally:
        server.terminate()
        server.wait()


def on_lab(site_id: str, files: int, size: int, seconds: float) -> int:
    from lab.state import LabState

    lab = LabState.load()
    found = [(c.server, s) for c in lab.clients for s in lab.plan(c.id).sites if s.id == site_id]
    if not found:
        raise SystemExit(f"{site_id}: no such site in the lab")
    server, site = found[0]
    address = lab.host(server).address
    extra = f"{site.root}/wp-content/uploads/cs-bench"

    def ssh(command: str) -> tuple[float, str]:
        started = time.monotonic()
        run = lab.ssh(server, command, timeout=3600)
        if run.returncode not in (0, 1):
            raise SystemExit(f"{server}: {command}: {run.stderr.strip()}")
        out = (run.stdout + run.stderr).strip().splitlines()
        return time.monotonic() - started, out[-1] if out else ""

    write = (f"import os; [os.makedirs(f'{extra}/{{i // 1000:03d}}', exist_ok=True) or "
             f"open(f'{extra}/{{i // 1000:03d}}/file-{{i}}.bin', 'wb').write(os.urandom({size})) "
             f"for i in range({files})]")  # fmt: skip
    ssh(f"python3 -c {shlex.quote(write)}")
    unit = f"carestack-scan@{site.id}.service"
    cache = f"/var/lib/carestack/scan/{site.id}/patterns.json"
    try:
        took, last = ssh(f"carestack-agent scan {site.id} --accept")
        print(f"{site.id} on {server}: {files} extra files of {size} B; baseline {took:.1f} s: {last[:70]}")
        page = site.checks[0].path
        with Load(80, rate=2.0, host=address, path=page, domain=site.domain) as idle:
            time.sleep(seconds)
        print(f"site p95 of {site.domain}{page} at 2 req/s: idle {idle.p95():.0f} ms "
              f"(median {statistics.median(idle.samples):.0f} ms, {len(idle.samples)} requests)")  # fmt: skip
        print(f"{'run':<44} {'seconds':>8} {'p95 ms':>7} {'x idle':>7}  result")
        runs = (("first scan by its unit (CPUWeight=, IOWeight=)", f"rm -f {cache}; systemctl start {unit}; "
                 f"journalctl -u {unit} -n 3 --no-pager -o cat | grep 'scan {site.id}' | tail -1"),
                ("first scan from an ssh session (no weights)", f"rm -f {cache}; carestack-agent scan {site.id}"),
                ("no-change rescan by its unit", f"systemctl start {unit}; "
                 f"journalctl -u {unit} -n 3 --no-pager -o cat | grep 'scan {site.id}' | tail -1"))  # fmt: skip
        for label, command in runs:
            with Load(80, rate=2.0, host=address, path=page, domain=site.domain) as load:
                took, last = ssh(command)
            print(f"{label:<44} {took:8.1f} {load.p95():7.0f} {load.p95() / idle.p95():7.2f}  {last[:60]}")
    finally:
        ssh(f"rm -rf {extra} {cache}; carestack-agent scan {site.id} --accept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
