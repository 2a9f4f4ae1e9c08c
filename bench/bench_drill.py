"""Drill time per site against the plan's RTO: `carestack-agent drill SITE` as the standby's timer runs it.

Real parts only: restic, a moto S3 server with IAM enforcement (lab/s3.py), two private mariadbd
(the site's server and the standby's), the agent's CLI. The site is WordPress-shaped: files, a
database, and a PHP page that reads it (so a page check proves the database arrived). The standby's
scratch vhost is PHP's built-in server in front of the scratch directory (on a lab standby it is
nginx). The RTO the drill is measured against is the premium example client's plan
(stacks/Pulumi.shop.yaml: the failover RTO, also the drill's deadline). Prints medians; asserts
nothing about time.

    .venv/bin/python bench/bench_drill.py                     # 200 MB files + 40 MB database, 3 drills
    .venv/bin/python bench/bench_drill.py --files-mb 1000 --db-mb 200 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "agent"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_agent_backup import DB, fill_database, free_port, make_site_files  # noqa: E402
from rows import record  # noqa: E402

from infra.agent_config import dumps  # noqa: E402
from infra.plan import build_plan  # noqa: E402
from infra.spec import STACKS_DIR, ClientSpec, load_stack  # noqa: E402
from lab import s3 as lab_s3  # noqa: E402
from tests.agent.conftest import (  # noqa: E402
    PLAN_JOBS,
    PLAN_PERF,
    PLAN_RETENTION,
    PLAN_UPDATES,
    start_mariadb,
    stop_mariadb,
    write_secret,
)

SITE = "bench-www"
PASSWORD = "bench password"
INDEX = """<?php
require __DIR__ . '/wp-config.php';
$db = new mysqli('localhost', 'root', '', DB_NAME, 0, getenv('DRILL_DB_SOCKET'));
$row = $db->query('SELECT title FROM posts ORDER BY id LIMIT 1')->fetch_row();
echo 'Welcome: ' . $row[0];
"""
ROUTER = """<?php
$root = getenv('DRILL_DOCROOT');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = $root . ($path === '/' ? '/index.php' : $path);
if (!is_file($file)) { http_response_code(404); echo 'not found'; return true; }
if (substr($file, -4) === '.php') { chdir(dirname($file)); include $file; return true; }
readfile($file);
return true;
"""


def plan_rto_seconds() -> int:
    spec = load_stack(STACKS_DIR / "Pulumi.shop.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec).sites[0].job("drill").timeout_seconds


def site_table(work: Path, endpoint: str, bucket: str, root: Path, db_socket: Path) -> dict[str, Any]:
    return {
        "domain": "www.bench.example",
        "kind": "wordpress",
        "root": str(root),
        "paths": [str(root)],
        "exclude": [],
        "repository": f"s3:{endpoint}/{bucket}/{SITE}",
        "password_file": str(work / "secrets/restic-password"),
        "credentials_file": str(work / "secrets/s3.env"),
        "database": {"name": DB, "socket": str(db_socket)},
        "retention": PLAN_RETENTION | {"keep_last": 10},
        "jobs": PLAN_JOBS,
        "updates": PLAN_UPDATES,
        "perf": PLAN_PERF,
        "checks": [{"path": "/", "keyword": "Welcome: post 1", "status": 200}],
    }


def agent(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "agent")}
    return subprocess.run(
        [sys.executable, "-m", "carestack_agent", "--config", str(config), *args],
        env=env, capture_output=True, text=True, timeout=7200,
    )  # fmt: skip


def last_end(state_dir: Path) -> dict[str, Any]:
    lines = (state_dir / "journal.jsonl").read_text().splitlines()
    ends = [json.loads(line) for line in lines if '"event": "end"' in line or '"event":"end"' in line]
    return ends[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files-mb", type=int, default=200)
    ap.add_argument("--db-mb", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rto_target = plan_rto_seconds()
    work = Path(tempfile.mkdtemp(prefix="bench-drill-"))
    s3_state = work / "s3"
    srv = lab_s3.start(s3_state, port=free_port())
    primary = start_mariadb(work / "primary-db")
    standby_db = start_mariadb(work / "standby-db")
    php: subprocess.Popen[bytes] | None = None
    try:
        admin = lab_s3.bootstrap_admin(srv.endpoint)
        lab_s3.enable_iam_enforcement(srv.endpoint)
        bucket = f"bench-drill-{os.getpid()}"
        creds = lab_s3.provision_bucket(srv.endpoint, admin, bucket, object_lock_days=0)
        write_secret(work / "secrets/restic-password", PASSWORD + "\n")
        write_secret(work / "secrets/s3.env", creds.env_text())
        root = work / "primary/www"
        make_site_files(root, args.files_mb)
        fill_database(primary, args.db_mb)
        (root / "wp-config.php").write_text(f"<?php\ndefine('DB_NAME', '{DB}');\n")
        (root / "index.php").write_text(INDEX)
        primary_cfg = work / "primary.toml"
        primary_cfg.write_text(
            dumps({"agent": {"host": "shop-1", "state_dir": str(work / "primary-state"), "nice": 0},
                   "sites": {SITE: site_table(work, srv.endpoint, bucket, root, primary.socket)}})
        )  # fmt: skip
        for verb in (("init", SITE), ("backup", SITE)):
            done = agent(primary_cfg, *verb)
            if done.returncode != 0:
                raise SystemExit(f"{verb[0]} failed: {done.stderr}")
        port = free_port()
        scratch, standby_state = work / "scratch", work / "standby-state"
        table = site_table(work, srv.endpoint, bucket, work / "standby-live/www", standby_db.socket)
        table["paths"] = [table["root"]]
        table["drill"] = {"timeout_seconds": rto_target, "scratch_dir": str(scratch), "port": port,
                          "vhost_dir": str(work / "vhosts"), "reload_command": ["/bin/true"]}  # fmt: skip
        standby_cfg = work / "standby.toml"
        standby_cfg.write_text(
            dumps({"agent": {"host": "standby-1", "state_dir": str(standby_state), "nice": 0,
                             "probe_settle_seconds": 0}, "sites": {SITE: table}})
        )  # fmt: skip
        (work / "router.php").write_text(ROUTER)
        php = subprocess.Popen(
            ["php", "-S", f"127.0.0.1:{port}", str(work / "router.php")],
            env={"PATH": "/usr/bin:/bin", "DRILL_DOCROOT": str(scratch / SITE / root.relative_to("/")),
                 "DRILL_DB_SOCKET": str(standby_db.socket)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(0.3)
        rows = []
        for _ in range(args.runs):
            t0 = time.monotonic()
            done = agent(standby_cfg, "drill", SITE)
            wall = time.monotonic() - t0
            if done.returncode != 0:
                raise SystemExit(f"drill failed: {done.stderr}")
            figures = last_end(standby_state)["figures"]
            rows.append((wall, figures["restore_seconds"], figures["verify_seconds"], figures["rto_seconds"]))
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(f"drill of one site: {args.files_mb} MB files + {args.db_mb} MB database, median of {args.runs}")
        print(f"{'restore (files + dump import)':32} {med[1]:8.2f} s")
        print(f"{'verify (page checks)':32} {med[2]:8.2f} s")
        print(f"{'RTO measured (restore + verify)':32} {med[3]:8.2f} s   plan's RTO {rto_target} s "
              f"({100 * med[3] / rto_target:.1f} % of it)")  # fmt: skip
        print(f"{'whole drill job (CLI, cleanup)':32} {med[0]:8.2f} s")
        print(f"restic {subprocess.run(['restic', 'version'], capture_output=True, text=True).stdout.split()[1]}")
        record(f"restore drill RTO ({args.files_mb} MB + {args.db_mb} MB db)", med[3], "s",
               goal=f"within the plan's RTO ({rto_target} s)", met=med[3] <= rto_target)  # fmt: skip
        return 0
    finally:
        if php is not None:
            php.terminate()
            php.wait(timeout=10)
        stop_mariadb(standby_db)
        stop_mariadb(primary)
        lab_s3.stop(s3_state)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
