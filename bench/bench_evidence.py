"""Evidence records: the agent's PUT of one record and the controller's read of a client-month of one site.

Starts its own moto S3 (IAM enforced, as the lab) on a free loopback port, fills one bucket with a
month of one site's records as an hourly-backup tier leaves them (744 backups, 31 checks, 5 prunes,
1 update, 4 scans: 785 records), each PUT by the agent's own stdlib S3 client, then reads the month
back with `infra.evidence.read_records` a few times. Prints medians; asserts nothing about time.

    .venv/bin/python bench/bench_evidence.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "agent"))

from carestack_agent.s3 import S3Client, bucket_of  # noqa: E402
from rows import record  # noqa: E402

from infra.evidence import EvidenceAccess, read_records  # noqa: E402
from infra.evidence_record import record_key  # noqa: E402
from lab import s3 as lab_s3  # noqa: E402

SITE = "bench-www"
MONTH = datetime(2026, 3, 1, tzinfo=UTC)
JOBS = {"backup": timedelta(hours=1), "check": timedelta(days=1), "prune": timedelta(days=7),
        "update": timedelta(days=31), "scan": timedelta(days=7)}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def month_of_records() -> list[dict[str, object]]:
    out = []
    for job, every in JOBS.items():
        at, n = MONTH + timedelta(minutes=7), 0
        while at < MONTH + timedelta(days=31):
            ended = at + timedelta(seconds=40)
            out.append({"schema": 1, "client": "bench", "site": SITE, "job": job, "run_id": f"r{job}{n}",
                        "host": "shared-1", "started": at.isoformat().replace("+00:00", "Z"),
                        "ended": ended.isoformat().replace("+00:00", "Z"), "result": "ok", "exit_code": 0,
                        "message": f"{job} done", "figures": {"files": 1200, "bytes": 52_428_800}})  # fmt: skip
            at, n = at + every, n + 1
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        server = lab_s3.start(Path(state), port=free_port())
        try:
            admin = lab_s3.bootstrap_admin(server.endpoint)
            lab_s3.enable_iam_enforcement(server.endpoint)
            creds = lab_s3.provision_bucket(server.endpoint, admin, "cs-bench-evidence", object_lock_days=0)
            env = {"AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key}
            client = S3Client(bucket_of(f"s3:{server.endpoint}/cs-bench-evidence/{SITE}", env))
            records = month_of_records()
            puts = []
            for rec in records:
                ended = datetime.fromisoformat(str(rec["ended"]).replace("Z", "+00:00"))
                body = json.dumps(rec).encode()
                began = time.perf_counter()
                client.put(record_key(SITE, str(rec["job"]), ended, str(rec["run_id"])), body)
                puts.append(time.perf_counter() - began)
            access = EvidenceAccess("cs-bench-evidence", lab_s3.REGION, creds.access_key_id,
                                    creds.secret_access_key, server.endpoint)  # fmt: skip
            reads = []
            for _ in range(args.rounds):
                began = time.perf_counter()
                found = read_records(access, SITE, MONTH, MONTH + timedelta(days=31))
                reads.append(time.perf_counter() - began)
                assert len(found) == len(records) and not found.problems
        finally:
            lab_s3.stop(Path(state))
    print("| what | median |")
    print("| --- | --- |")
    print(f"| agent PUT of one record (stdlib SigV4 client, moto) | {statistics.median(puts) * 1000:.1f} ms |")
    print(f"| read_records: one site, one month, {len(records)} records | {statistics.median(reads):.2f} s |")
    record("evidence: the agent's PUT of one record", statistics.median(puts) * 1000, "ms")
    record(f"evidence: read one site-month ({len(records)} records)", statistics.median(reads), "s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
