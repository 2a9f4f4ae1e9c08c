#!/usr/bin/env python3
"""The security scan's cost: a first scan (every file hashed), a no-change rescan (hash cache), peak RSS.

Builds a site from Debian's WordPress (/usr/share/wordpress, links resolved) plus N synthetic upload
files of S bytes in a temporary directory, takes the baseline (`scan --accept`), then runs `scan` twice
through the real CLI, each in its own process. No database (the database check has its own cost: a few
queries). Needs Debian's wordpress and yara packages. Options: --files N (default 30000), --size S
(default 32768: about 1 GB with the defaults), --keep (leave the temporary directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra.agent_config import dumps  # noqa: E402

PLAN_JOBS = {"backup_timeout_seconds": 3600, "check_timeout_seconds": 3600, "prune_timeout_seconds": 3600,
             "restore_timeout_seconds": 3600, "check_read_data_subsets": 1, "update_timeout_seconds": 3600,
             "scan_timeout_seconds": 3600}  # fmt: skip

UPDATES = {"providers": [], "apt_policy": "security", "wordpress_policy": "minor", "rollback": True,
           "probe_slowdown_limit": 3.0}  # fmt: skip


def run(config: Path, *args: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (KiB) of the agent process, its last line."""
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(config), "PYTHONPATH": str(ROOT / "agent")}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "carestack_agent", *args], env=env, stdout=log, stderr=log)
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
    args = ap.parse_args()
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
                "jobs": PLAN_JOBS, "updates": UPDATES, "checks": []}  # fmt: skip
        config = base / "agent.toml"
        config.write_text(dumps({"agent": {"host": "bench", "state_dir": str(base / "state")}, "sites": {"b": site}}))
        files = sum(1 for _ in root.rglob("*"))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"site: {files} entries, {size / 2**20:.0f} MiB")
        print(f"{'run':<28} {'seconds':>8} {'peak RSS MiB':>13}  result")
        for label, argv in (("baseline (scan --accept)", ("scan", "b", "--accept")), ("first scan", ("scan", "b")),
                            ("no-change rescan", ("scan", "b"))):  # fmt: skip
            took, rss, last = run(config, *argv)
            print(f"{label:<28} {took:8.1f} {rss / 1024:13.0f}  {last[:90]}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
