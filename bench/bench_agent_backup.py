"""Figures of the agent's backups: carestack-agent backups vs plain restic, restore, memory, site latency.

Real parts only: restic, a moto S3 server with IAM enforcement (lab/s3.py),
a private mariadbd, the agent's CLI as systemd runs it. Prints a table of
medians; asserts nothing about time.

    .venv/bin/python bench/bench_agent_backup.py                 # 1 GB files + 200 MB database, 3 runs
    .venv/bin/python bench/bench_agent_backup.py --files-mb 200 --db-mb 40 --runs 3

Per run, on fresh repositories (one for the agent, one for plain restic):
- first backup, then 1 % of the files and 1 % of the rows change, then an incremental;
- "plain restic" is what an admin would script for the same result:
  `mariadb-dump --single-transaction > dump.sql; restic backup files dump; restic forget --keep-daily 7`
  (the agent streams the dump instead of writing it, runs `unlock` only after
  an unclean job, and forgets by the plan's keep-*);
- restore of the latest snapshot (files under a target + database into a new name)
  vs `restic restore` + `mariadb < dump.sql`;
- the agent process's own peak RSS (VmHWM of its process: restic and dumps excluded);
- the site's p95 response time (a local HTTP site doing ~2 ms of work per page,
  25 requests/s) while idle, during plain restic's first backup (normal priority),
  during the agent's first backup with its defaults (nice 10 + ionice idle) and
  with SCHED_IDLE added. The time comparison above runs the agent at plain
  restic's priority, so that only the agent's own overhead is measured.

With --lab SITE (a running lab; CARESTACK_LAB_DIR names it), on the lab server
running SITE instead: --files-mb of new random files in the site's uploads and a
table of --db-mb in its database (fresh contents before every backup, so each one
reads, encrypts and uploads that much), the site's first checked page (PHP under
nginx and PHP-FPM) requested from this machine --rate times a second, idle, during
the backup started by its systemd unit (CPUWeight=, IOWeight=, idle I/O class),
during the same backup from an ssh session (no unit weights), with the agent's
restic and dump at SCHED_IDLE and at nice 19 (a copy of its configuration), and
during plain restic at nice 10 into a repository on the server's own disk, with
and without GOMAXPROCS=1 (no upload: where the site's time goes); --variants picks
some. The lab's S3 server runs at SCHED_IDLE meanwhile (in production it is
another machine). The files and the table are removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "agent"))

from rows import at_most, record  # noqa: E402

from infra.agent_config import dumps  # noqa: E402
from lab import s3 as lab_s3  # noqa: E402
from tests.agent.conftest import (  # noqa: E402
    PLAN_JOBS,
    PLAN_PERF,
    PLAN_RETENTION,
    PLAN_UPDATES,
    MariaDB,
    start_mariadb,
    stop_mariadb,
    write_secret,
)

PASSWORD = "bench password"
SITE = "bench-www"
DB = "bench_www"
# The agent's own peak RSS: VmHWM of its process (reset at exec, children excluded). getrusage's
# ru_maxrss would also count the forking parent's pages from before exec (Linux keeps them).
AGENT_WRAPPER = (
    "import sys\n"
    "from carestack_agent.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    "print('MAXRSS_KB', hwm, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)

SITE_SERVER = r"""
import hashlib, http.server, os, random, sys
root, port = sys.argv[1], int(sys.argv[2])
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs][:500]
blob = os.urandom(1 << 20)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(random.choice(files), "rb") as f:    # a page reads a file ...
            data = f.read(65536)
        body = hashlib.sha256(blob + data).hexdigest().encode()  # ... and does some work (~2 ms)
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(argv: list[str], env: dict[str, str], **kw: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    res = subprocess.run(argv, env=env, capture_output=True, text=True, **kw)
    dt = time.monotonic() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed ({res.returncode}): {res.stderr[-2000:]}")
    return dt, res


def make_site_files(root: Path, total_mb: int, seed: int = 1) -> list[Path]:
    rnd = random.Random(seed)
    files, written, i = [], 0, 0
    while written < total_mb * 1024 * 1024:
        size = rnd.choice([8, 32, 64, 256, 512, 1024, 2048]) * 1024
        sub = "wp-content/uploads" if size >= 256 * 1024 else "wp-includes"
        p = root / sub / f"{i % 40:02d}" / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size) if size >= 256 * 1024 else rnd.randbytes(size // 2) * 2)
        files.append(p)
        written += size
        i += 1
    return files


def change_one_percent(files: list[Path], db: MariaDB, rows: int, rnd: random.Random) -> None:
    target = sum(p.stat().st_size for p in files) // 100
    changed = 0
    for p in rnd.sample(files, len(files)):
        if changed >= target:
            break
        size = p.stat().st_size
        p.write_bytes(os.urandom(size))
        changed += size
    n = max(1, rows // 100)
    start = rnd.randint(1, max(1, rows - n))
    new_body = "CONCAT(SHA2(RAND(), 512), SUBSTRING(body, 129))"
    db.sql(f"UPDATE posts SET body = {new_body} WHERE id BETWEEN {start} AND {start + n - 1}", DB)


def fill_database(db: MariaDB, megabytes: int) -> int:
    rows = megabytes * 1024  # ~1 KiB per row
    db.sql(f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB} CHARACTER SET utf8mb4")
    db.sql("CREATE TABLE posts (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(200), body TEXT) ENGINE=InnoDB", DB)
    body = "CONCAT(" + ", ".join(["SHA2(RAND(), 512)"] * 7) + ", REPEAT('lorem ipsum ', 10))"
    for start in range(1, rows + 1, 50_000):
        end = min(rows, start + 49_999)
        db.sql(f"INSERT INTO posts (title, body) SELECT CONCAT('post ', seq), {body} FROM seq_{start}_to_{end}", DB)
    return rows


class Load:
    """Requests to a page at a steady rate; latencies in ms (bench_scan.py measures with it too)."""

    def __init__(self, port: int, rate: float = 25.0, host: str = "127.0.0.1", path: str = "/",
                 domain: str | None = None, timeout: float = 30.0) -> None:  # fmt: skip
        self.port, self.interval, self.timeout = port, 1.0 / rate, timeout
        self.host, self.path, self.headers = host, path, {"Host": domain} if domain else {}
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            t0 = time.monotonic()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.request("GET", self.path, headers=self.headers)
            conn.getresponse().read()
            conn.close()
            self.samples.append((time.monotonic() - t0) * 1000)
            nxt += self.interval
            time.sleep(max(0.0, nxt - time.monotonic()))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def p95(self) -> float:
        return statistics.quantiles(self.samples, n=20)[18] if len(self.samples) >= 20 else float("nan")


def agent_backup(env: dict[str, str]) -> tuple[float, int]:
    """One scheduled backup through the agent's CLI; wall time and the agent's own peak RSS (KiB)."""
    dt, res = timed([sys.executable, "-c", AGENT_WRAPPER, "backup", SITE, "--reason", "scheduled"], env)
    return dt, int(res.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])


def plain_backup(env: dict[str, str], db: MariaDB, root: Path, dump_dir: Path) -> tuple[float, float]:
    """The plain-restic equivalent; total wall time and restic backup's own time."""
    t0 = time.monotonic()
    with open(dump_dir / f"{DB}.sql", "wb") as out:
        subprocess.run(
            ["mariadb-dump", f"--socket={db.socket}", "--user=root", "--single-transaction", "--quick", DB],
            stdout=out, check=True,
        )  # fmt: skip
    restic_dt, _ = timed(
        ["restic", "backup", "--host", "bench", "--tag", f"site:{SITE}", str(root), str(dump_dir)], env
    )
    timed(["restic", "forget", "--tag", f"site:{SITE}", "--keep-daily", "7"], env)
    return time.monotonic() - t0, restic_dt


PRIORITIES: dict[str, dict[str, Any]] = {
    # as plain restic (every CPU too): a fair time comparison
    "same": {"nice": 0, "ionice_idle": False, "sched_idle": False, "restic_cpus": os.cpu_count() or 1},
    "nice": {"nice": 10, "ionice_idle": True, "sched_idle": False},  # the agent's defaults
    "idle": {"nice": 10, "ionice_idle": True, "sched_idle": True},  # plus SCHED_IDLE
}


def agent_config(work: Path, endpoint: str, bucket: str, root: Path, db: MariaDB, priority: str) -> Path:
    """The agent.toml, written by the controller's TOML writer with the plan's job settings (as the tests do)."""
    agent = {"host": "bench", "state_dir": str(work / "agent-state"), "restic": shutil.which("restic"),
             **PRIORITIES[priority]}  # fmt: skip
    site = {
        "domain": "www.bench.example", "kind": "wordpress", "root": str(root), "paths": [str(root)], "exclude": [],
        "repository": f"s3:{endpoint}/{bucket}/{SITE}", "password_file": str(work / "secrets/restic-password"),
        "credentials_file": str(work / "secrets/agent-s3.env"), "checks": [],
        "database": {"name": DB, "socket": str(db.socket)},
        "retention": PLAN_RETENTION | {"keep_daily": 7}, "jobs": PLAN_JOBS, "updates": PLAN_UPDATES, "perf": PLAN_PERF,
    }  # fmt: skip
    cfg = work / "agent.toml"
    cfg.write_text(dumps({"agent": agent, "sites": {SITE: site}}))
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files-mb", type=int, default=1024)
    ap.add_argument("--db-mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--phases", default="timing,latency", help="timing, latency or both (comma-separated)")
    ap.add_argument("--lab", metavar="SITE", help="measure the site's latency on the lab server running SITE")
    ap.add_argument("--rate", type=float, default=4.0, help="--lab: requests per second to the site's page")
    ap.add_argument("--variants", help="--lab: only these (comma-separated: unit, ssh, ssh_agent_nice, "
                    "ssh_sched_idle, ssh_nice19, local_repo, local_repo_1cpu)")  # fmt: skip
    args = ap.parse_args()
    if args.lab:
        only = set(args.variants.split(",")) if args.variants else None
        return on_lab(args.lab, args.files_mb, args.db_mb, args.runs, args.rate, only)
    if os.geteuid() != 0:
        print("needs root (FUSE mount for the streamed dump, mariadbd as root)", file=sys.stderr)
        return 2
    load_before = f"{os.getloadavg()[0]:.2f}"
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cs-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    s3_state = work / "moto"
    srv = lab_s3.start(s3_state, port=free_port())
    # In production S3 is another machine; here it shares the 2 cores. SCHED_IDLE keeps the
    # S3 server's own CPU work from being counted against the site's latency.
    subprocess.run(["chrt", "--idle", "--all-tasks", "-p", "0", str(srv.pid)], check=True, capture_output=True)
    db = start_mariadb(work / "mariadb")
    site_proc: subprocess.Popen[bytes] | None = None
    results: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    try:
        admin = lab_s3.bootstrap_admin(srv.endpoint)
        lab_s3.enable_iam_enforcement(srv.endpoint)
        root = work / "www"
        print(f"generating {args.files_mb} MB of files and a {args.db_mb} MB database ...", file=sys.stderr)
        files = make_site_files(root, args.files_mb)
        rows = fill_database(db, args.db_mb)
        port = free_port()
        site_proc = subprocess.Popen([sys.executable, "-c", SITE_SERVER, str(root), str(port)])
        time.sleep(0.5)
        write_secret(work / "secrets/restic-password", PASSWORD + "\n")
        base_env = {"PATH": os.environ["PATH"], "HOME": str(work), "LANG": "C.UTF-8"}
        dump_dir = work / "plain-dump"
        dump_dir.mkdir(exist_ok=True)
        rnd = random.Random(42)
        seq = iter(range(1000))

        def fresh_repos(priority: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
            n = next(seq)
            buckets, creds = [], {}
            for who in ("agent", "plain"):
                bucket = f"bench-{who}-{n}"
                creds[who] = lab_s3.provision_bucket(srv.endpoint, admin, bucket, object_lock_days=0, versioning=False)
                write_secret(work / f"secrets/{who}-s3.env", creds[who].env_text())
                buckets.append(bucket)
            cfg = agent_config(work, srv.endpoint, buckets[0], root, db, priority)
            shutil.rmtree(work / "agent-state", ignore_errors=True)
            shutil.rmtree(work / "plain-cache", ignore_errors=True)
            aenv = {**base_env, "PYTHONPATH": str(ROOT / "agent"), "CARESTACK_AGENT_CONFIG": str(cfg)}
            penv = {
                **base_env, "RESTIC_REPOSITORY": f"s3:{srv.endpoint}/{buckets[1]}/{SITE}",
                "RESTIC_PASSWORD_FILE": str(work / "secrets/restic-password"),
                "RESTIC_CACHE_DIR": str(work / "plain-cache"),
                "AWS_ACCESS_KEY_ID": creds["plain"].access_key_id,
                "AWS_SECRET_ACCESS_KEY": creds["plain"].secret_access_key,
            }  # fmt: skip
            timed([sys.executable, "-m", "carestack_agent", "init", SITE], aenv)
            timed(["restic", "init"], penv)
            return aenv, penv, buckets

        def free(buckets: list[str]) -> None:  # moto keeps objects in memory
            c = admin_client(srv.endpoint, admin)
            for bucket in buckets:
                for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    for i in range(0, len(keys), 1000):
                        c.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000]})

        # 1. time: agent vs plain restic at the same priority, fresh repositories per run
        phases = set(args.phases.split(","))
        for run in range(args.runs if "timing" in phases else 0):
            print(f"timing run {run + 1}/{args.runs} ...", file=sys.stderr)
            aenv, penv, buckets = fresh_repos("same")
            order = ("agent", "plain") if run % 2 == 0 else ("plain", "agent")
            for phase in ("first", "incr"):
                if phase == "incr":
                    change_one_percent(files, db, rows, rnd)
                for who in order:
                    if who == "agent":
                        dt, rss = agent_backup(aenv)
                        add(f"{phase}_agent_s", dt)
                        add("agent_maxrss_mb", rss / 1024)
                    else:
                        dt, restic_only = plain_backup(penv, db, root, dump_dir)
                        add(f"{phase}_plain_s", dt)
                        add(f"{phase}_plain_restic_only_s", restic_only)
            target = work / "restore-target"
            shutil.rmtree(target, ignore_errors=True)
            db.sql(f"DROP DATABASE IF EXISTS {DB}_restored")
            dt, res = timed([sys.executable, "-c", AGENT_WRAPPER, "restore", SITE, "--target", str(target),
                             "--database-name", f"{DB}_restored"], aenv)  # fmt: skip
            add("restore_agent_s", dt)
            add("agent_maxrss_mb", int(res.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0]) / 1024)
            shutil.rmtree(target, ignore_errors=True)
            t0 = time.monotonic()
            timed(["restic", "restore", "latest", "--target", str(target)], penv)
            db.sql(f"DROP DATABASE IF EXISTS {DB}_plain; CREATE DATABASE {DB}_plain")
            dump_file = target / str(dump_dir).lstrip("/") / f"{DB}.sql"
            with open(dump_file, "rb") as f:
                subprocess.run(["mariadb", f"--socket={db.socket}", "--user=root", f"{DB}_plain"], stdin=f, check=True)
            add("restore_plain_s", time.monotonic() - t0)
            shutil.rmtree(target, ignore_errors=True)
            free(buckets)

        # 2. the site's latency: idle, and during a first backup by plain restic and by the agent
        for run in range(args.runs if "latency" in phases else 0):
            print(f"latency run {run + 1}/{args.runs} ...", file=sys.stderr)
            with Load(port) as idle:
                time.sleep(8)
            add("p95_idle_ms", idle.p95())
            for mode in ("plain", "nice", "idle"):
                aenv, penv, buckets = fresh_repos("nice" if mode == "plain" else mode)
                with Load(port) as load:
                    if mode == "plain":
                        dt, _ = plain_backup(penv, db, root, dump_dir)
                    else:
                        dt, rss = agent_backup(aenv)
                        add("agent_maxrss_mb", rss / 1024)
                add("p95_idle_ms_sched" if mode == "idle" else f"p95_{mode}_ms", load.p95())
                add("first_plain_s_load" if mode == "plain" else f"first_{mode}_s", dt)
                free(buckets)
    finally:
        if site_proc is not None:
            site_proc.terminate()
            site_proc.wait()
        stop_mariadb(db)
        lab_s3.stop(s3_state)

    med = {k: statistics.median(v) for k, v in results.items()}
    nan = float("nan")
    for key in ("first_agent_s", "first_plain_s", "first_plain_restic_only_s", "incr_agent_s", "incr_plain_s",
                "incr_plain_restic_only_s", "restore_agent_s", "restore_plain_s", "p95_idle_ms", "p95_plain_ms",
                "p95_nice_ms", "p95_idle_ms_sched", "first_plain_s_load", "first_nice_s", "first_idle_s"):  # fmt: skip
        med.setdefault(key, nan)
    print(f"\nload average before/after: {load_before} / {os.getloadavg()[0]:.2f}")
    print(f"carestack-agent backup figures: {args.files_mb} MB files + {args.db_mb} MB database, "
          f"{args.runs} run(s), medians; restic {restic_version()}, {os.cpu_count()} cores\n")  # fmt: skip
    rows_out = [
        ("first backup: agent (files + streamed dump, forget)", med["first_agent_s"], "s"),
        ("first backup: plain (dump to disk, restic backup, forget)", med["first_plain_s"], "s"),
        ("first backup: plain restic backup alone", med["first_plain_restic_only_s"], "s"),
        ("  agent / plain", med["first_agent_s"] / med["first_plain_s"], "x  (goal <= 1.05)"),
        ("1 % incremental: agent", med["incr_agent_s"], "s"),
        ("1 % incremental: plain (dump, backup, forget)", med["incr_plain_s"], "s"),
        ("1 % incremental: plain restic backup alone", med["incr_plain_restic_only_s"], "s"),
        ("  agent / plain", med["incr_agent_s"] / med["incr_plain_s"], "x  (goal <= 1.05)"),
        ("restore (files + database): agent", med["restore_agent_s"], "s"),
        ("restore (files + database): plain restic + mariadb", med["restore_plain_s"], "s"),
        ("agent peak RSS, restic excluded (max over all jobs)", max(results.get("agent_maxrss_mb", [nan])),
         "MB (goal < 60)"),
        ("site p95 idle", med["p95_idle_ms"], "ms"),
        ("site p95 during plain restic first backup (no nice)", med["p95_plain_ms"], "ms"),
        ("  / idle", med["p95_plain_ms"] / med["p95_idle_ms"], "x"),
        ("site p95 during agent first backup (nice 10, ionice idle)", med["p95_nice_ms"], "ms"),
        ("  / idle", med["p95_nice_ms"] / med["p95_idle_ms"], "x  (goal <= 1.2)"),
        ("site p95 during agent first backup (+ SCHED_IDLE)", med["p95_idle_ms_sched"], "ms"),
        ("  / idle", med["p95_idle_ms_sched"] / med["p95_idle_ms"], "x  (goal <= 1.2)"),
        ("first backup under load: plain / agent nice / agent SCHED_IDLE",
         med["first_plain_s_load"], f"s / {med['first_nice_s']:.2f} s / {med['first_idle_s']:.2f} s"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows_out)
    for name, value, unit in rows_out:
        print(f"{name.ljust(width)}  {value:9.2f} {unit}")
    print("\nraw:", json.dumps({k: [round(x, 3) for x in v] for k, v in results.items()}))
    plain = "mariadb-dump to disk + restic backup + forget"
    for what, agent, anchor, limit in (
        ("first backup", med["first_agent_s"], med["first_plain_s"], 1.05),
        ("1 % incremental backup", med["incr_agent_s"], med["incr_plain_s"], 1.05),
    ):
        record(f"agent: {what} ({args.files_mb} MB + {args.db_mb} MB db)", agent, "s", anchor=plain,
               anchor_median=anchor, goal=f"<= {limit}x", met=at_most(agent / anchor, limit))  # fmt: skip
    restore_ratio = med["restore_agent_s"] / med["restore_plain_s"]
    record("agent: restore, files + database", med["restore_agent_s"], "s",
           anchor="restic restore + mariadb < dump", anchor_median=med["restore_plain_s"], goal="<= 1.2x",
           met=at_most(restore_ratio, 1.2))  # fmt: skip
    p95_ratio = med["p95_nice_ms"] / med["p95_idle_ms"]
    record("site p95 during the agent's first backup", med["p95_nice_ms"], "ms", anchor="the site idle",
           anchor_median=med["p95_idle_ms"], goal="<= 1.2x", met=at_most(p95_ratio, 1.2))  # fmt: skip
    rss = max(results.get("agent_maxrss_mb", [nan]))
    record("agent: peak RSS of a backup (restic excluded)", rss, "MB", goal="< 60 MB", met=at_most(rss, 60))
    return 0


def on_lab(site_id: str, files_mb: int, db_mb: int, runs: int, rate: float, only: set[str] | None) -> int:
    """The site's p95 on a lab server during its backups, by the unit and from ssh (see the module docstring)."""
    from lab import procs, s3_gateway
    from lab.state import LabState

    lab = LabState.load()
    found = [(c.server, s) for c in lab.clients for s in lab.plan(c.id).sites if s.id == site_id]
    if not found or found[0][1].database is None:
        raise SystemExit(f"{site_id}: no site of that name with a database in the lab")
    server, site = found[0]
    address, page, database = lab.host(server).address, site.checks[0].path, site.database
    extra = f"{site.root}/wp-content/uploads/cs-bench"
    unit = f"carestack-backup@{site.id}.service"

    def ssh(command: str) -> float:
        started = time.monotonic()
        done = lab.ssh(server, command, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"{server}: {command[:80]}: {done.stderr.strip()[-300:]}")
        return time.monotonic() - started

    files = max(1, files_mb // 4)  # 4 MiB each
    fill = (f"import os; os.makedirs('{extra}', exist_ok=True); "
            f"[open(f'{extra}/file-{{i}}.bin', 'wb').write(os.urandom(4 << 20)) for i in range({files})]")  # fmt: skip
    rows = max(1, db_mb)  # 1 MiB of random hex per row
    table = (f"SET SESSION group_concat_max_len = 4194304; DROP TABLE IF EXISTS cs_bench; "
             f"CREATE TABLE cs_bench (id INT PRIMARY KEY, body LONGTEXT); "
             f"INSERT INTO cs_bench SELECT r.seq, GROUP_CONCAT(SHA2(RAND(), 256) SEPARATOR '') "
             f"FROM seq_1_to_{rows} r JOIN seq_1_to_16384 h GROUP BY r.seq")  # fmt: skip

    def fresh_data() -> None:
        ssh(f"python3 -c {shlex.quote(fill)} && mariadb {database} -e {shlex.quote(table)}")

    s3_dir = lab.state_dir / "run/s3"
    gateway = procs.running(s3_dir / s3_gateway.PID_FILE)
    s3_pids = [str(pid) for pid in (lab_s3.recorded_pid(s3_dir), gateway.pid if gateway else None) if pid]
    for pid in s3_pids:
        subprocess.run(["chrt", "--idle", "--all-tasks", "-p", "0", pid], check=True, capture_output=True)
    # The same backup from ssh, also with the agent's settings changed in a copy of its configuration.
    copy = "/root/cs-bench-agent.toml"
    variants = [
        ("unit", f"systemctl start {unit}"),
        ("ssh", f"carestack-agent backup {site.id} --reason manual"),
        ("ssh_agent_nice", f"nice -n 10 carestack-agent backup {site.id} --reason manual"),
    ]
    for name, setting in (("ssh_sched_idle", "sched_idle = true"), ("ssh_nice19", "nice = 19")):
        variants.append((name, f"install -m 600 /etc/carestack/agent.toml {copy} && sed -i "
                               f"'/^state_dir = /a {setting}' {copy} && CARESTACK_AGENT_CONFIG={copy} "
                               f"carestack-agent backup {site.id} --reason manual"))  # fmt: skip
    # Where the site's time goes: the same data backed up by restic at nice 10 into a repository on the
    # server's own disk (no upload through the lab's S3 gateway on this machine's cores).
    local = "/var/tmp/cs-bench-repo"
    restic_local = f"env RESTIC_PASSWORD=bench-only restic -q -r {local}"
    dump = f"mariadb-dump --single-transaction {database} > /var/tmp/cs-bench.sql"
    local_backup = f"nice -n 10 ionice -c 3 {restic_local} backup {site.root} /var/tmp/cs-bench.sql"
    variants.append(("local_repo", f"{dump} && {local_backup}"))
    variants.append(("local_repo_1cpu", f"{dump} && GOMAXPROCS=1 {local_backup}"))
    variants = [v for v in variants if only is None or v[0] in only]
    ssh(f"rm -rf {local} && {restic_local} init")
    results: dict[str, list[float]] = {}
    try:
        for run in range(runs):
            with Load(80, rate=rate, host=address, path=page, domain=site.domain) as idle:
                time.sleep(20)
            results.setdefault("p95_idle_ms", []).append(idle.p95())
            for label, command in variants:
                fresh_data()
                with Load(80, rate=rate, host=address, path=page, domain=site.domain) as load:
                    took = ssh(command)
                results.setdefault(f"p95_{label}_ms", []).append(load.p95())
                results.setdefault(f"backup_{label}_s", []).append(took)
            progress = ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items())
            print(f"run {run + 1}/{runs}: {progress}", file=sys.stderr)
    finally:
        for pid in s3_pids:
            subprocess.run(["chrt", "--other", "--all-tasks", "-p", "0", pid], check=False, capture_output=True)
        ssh(f"rm -rf {extra} {copy} {local} /var/tmp/cs-bench.sql; "
            f"mariadb {database} -e 'DROP TABLE IF EXISTS cs_bench'")  # fmt: skip
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{site.id} on {server}: {files * 4} MiB of new files + {rows} MiB table per backup; {page} at "
          f"{rate:g}/s; medians of {runs} run(s); load average {os.getloadavg()[0]:.2f}\n")  # fmt: skip
    idle_ms = med["p95_idle_ms"]
    for label, what in (("unit", "backup by its unit (CPUWeight=, IOWeight=, idle I/O)"),
                        ("ssh", "backup from ssh (agent's nice 10, ionice idle)"),
                        ("ssh_agent_nice", "from ssh, the agent itself at nice 10 too"),
                        ("ssh_sched_idle", "from ssh, restic and the dump at SCHED_IDLE"),
                        ("ssh_nice19", "from ssh, restic and the dump at nice 19"),
                        ("local_repo", "restic at nice 10 into a repository on the server"),
                        ("local_repo_1cpu", "the same with GOMAXPROCS=1")):  # fmt: skip
        if f"p95_{label}_ms" not in med:
            continue
        p95 = med[f"p95_{label}_ms"]
        print(f"{what:<55} {med[f'backup_{label}_s']:7.1f} s   p95 {p95:7.0f} ms  {p95 / idle_ms:5.2f}x idle")
    print(f"{'site idle':<55} {'':9}   p95 {idle_ms:7.0f} ms")
    if "p95_unit_ms" not in med:
        return 0
    ratio = med["p95_unit_ms"] / idle_ms
    record(f"lab site p95 during its backup unit ({site.id})", med["p95_unit_ms"], "ms", anchor="the site idle",
           anchor_median=idle_ms, goal="<= 1.2x", met=at_most(ratio, 1.2))  # fmt: skip
    print("\nraw:", json.dumps({k: [round(x, 2) for x in v] for k, v in results.items()}))
    return 0


def admin_client(endpoint: str, admin: lab_s3.Credentials) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=admin.access_key_id,
        aws_secret_access_key=admin.secret_access_key, config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip


def restic_version() -> str:
    out = subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else "?"


if __name__ == "__main__":
    raise SystemExit(main())
