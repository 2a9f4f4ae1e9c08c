#!/usr/bin/env python3
"""`make bench` / `make bench-quick`: every benchmark, then ONE table and bench/results.json.

Runs each bench script in its own process (its full output in bench/logs/<script>.log), collects
the summary rows the scripts hand over through `bench/rows.py`, and prints one table: measure,
anchor (what a user would do instead), goal, median, ratio to the anchor, goal met. A script that
fails, or is skipped because what it needs is missing (root, a running lab, Kuma's source
tarballs), is listed as such under the table: nothing is left out silently.

`--quick` runs every script that can run small with small sizes and one run (a developer's check
before a change: the numbers are not comparable with a full run's); the scripts that need a booted
lab of their own or a running lab run only in the full set.
    .venv/bin/python bench/run.py [--quick] [--only SCRIPT ...] [--out bench/results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import ROWS_ENV

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
LAB_DIR_ENV = "CARESTACK_LAB_DIR"
SOURCES_ENV = "CARESTACK_KUMA_SOURCES"
# The agency-sized fleet (`carestack lab fleet`), written before its bench runs.
FLEET = (20, 60)
FLEET_DIR = Path("/var/lib/carestack-bench-fleet-stacks")
FLEET_STACKS = (f"{FLEET_DIR}/Pulumi.*.yaml",)  # expanded in run_one


@dataclass(frozen=True)
class Bench:
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...] | None  # None: full set only
    needs: frozenset[str] = frozenset()  # "root", "lab" (a running lab), "sources" (Kuma tarballs), "fleet"
    label: str = ""  # tells apart two entries of one script

    @property
    def name(self) -> str:
        return f"{self.script} ({self.label})" if self.label else self.script


BENCHES = (
    Bench("bench_agent_backup.py", ("--files-mb", "300", "--db-mb", "60", "--runs", "3"),
          ("--files-mb", "30", "--db-mb", "6", "--runs", "1"), frozenset({"root"})),
    Bench("bench_update.py", ("--runs", "3"), None, frozenset({"root", "lab"})),
    Bench("bench_drill.py", (), ("--files-mb", "20", "--db-mb", "5", "--runs", "1"), frozenset({"root"})),
    Bench("bench_scan.py", (), ("--files", "2000", "--latency-seconds", "5")),
    Bench("bench_evidence.py", (), ("--rounds", "1")),
    Bench("bench_import_rewrite.py", (), ("--mb", "2", "--runs", "1")),
    Bench("bench_report.py", (), ("--runs", "1")),
    Bench("bench_kuma_sync.py", (), ("--naive", "20", "--monitors", "50", "--outage-sites", "1")),
    Bench("bench_kuma_versions.py", (), ("--monitors", "50", "--naive", "20", "--fleet-servers", "4",
                                        "--fleet-sites", "6"), frozenset({"sources"})),
    Bench("bench_converge.py", ("--runs", "1", "--reruns", "3"), None, frozenset({"root"})),
    Bench("bench_lab.py", ("--runs", "2", "--cold-runs", "0"), None, frozenset({"root"})),
    Bench("bench_failover.py", ("--runs", "1"), None, frozenset({"root", "lab"})),
    Bench("bench_alert_timing.py", ("--runs", "1", "--per-tier", "2"), None, frozenset({"root", "lab"})),
    Bench("bench_lab.py", ("--runs", "1", "--cold-runs", "0", "--state-dir", "/var/lib/carestack-lab-fleet",
                           "--stacks", *FLEET_STACKS), None, frozenset({"root", "fleet"}), label="fleet"),
)  # fmt: skip


def missing(bench: Bench) -> str | None:
    """Why the bench cannot run here, or None."""
    if "root" in bench.needs and os.geteuid() != 0:
        return "needs root"
    if "sources" in bench.needs and not os.environ.get(SOURCES_ENV):
        return f"needs {SOURCES_ENV} (Kuma 1.23.16 and 2.5.3 source tarballs)"
    if "lab" in bench.needs:
        state = Path(os.environ.get(LAB_DIR_ENV, "/var/lib/carestack-lab")) / "lab.json"
        if not state.exists():
            return "needs a running lab (carestack lab up)"
    return None


def machine() -> dict[str, object]:
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.machine(),
        ),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return done.stdout.strip() + ("-dirty" if dirty.strip() else "")


def run_one(bench: Bench, quick: bool, logs: Path, timeout: float) -> dict[str, object]:
    args = list((bench.quick if quick else bench.full) or ())
    stem = bench.name.replace(" ", "-").replace("(", "").replace(")", "")
    rows_file = logs / f"{stem}.rows.jsonl"
    rows_file.unlink(missing_ok=True)
    log = logs / f"{stem}.log"
    env = {**os.environ, ROWS_ENV: str(rows_file)}
    started = time.monotonic()
    print(f"bench: {bench.name} {' '.join(args)}", file=sys.stderr, flush=True)
    with open(log, "w") as out:
        if "fleet" in bench.needs:
            args = _with_fleet(args, out)
        try:
            done = subprocess.run(
                [sys.executable, str(BENCH / bench.script), *args], cwd=ROOT, env=env, stdout=out,
                stderr=subprocess.STDOUT, timeout=timeout,
            )  # fmt: skip
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
        except subprocess.TimeoutExpired:
            status = f"failed (no end within {timeout:.0f} s)"
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()] if rows_file.exists() else []
    if status == "ok" and not rows:
        status = "failed (it handed over no rows)"
    return {
        "script": bench.name,
        "args": args,
        "status": status,
        "seconds": round(time.monotonic() - started, 1),
        "log": str(log.relative_to(ROOT)),
        "rows": rows,
    }


def _with_fleet(args: list[str], out: Any) -> list[str]:
    """Write the agency-sized fleet's stack files and put them in place of the glob in `args`."""
    carestack = str(Path(sys.executable).with_name("carestack"))
    servers, sites = FLEET
    command = [carestack, "lab", "fleet", "--servers", str(servers), "--sites", str(sites), "--out", str(FLEET_DIR)]
    subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    stacks = [str(p) for p in sorted(FLEET_DIR.glob("Pulumi.*.yaml"))]
    return [a for arg in args for a in (stacks if arg in FLEET_STACKS else [arg])]


def _number(value: object, unit: str = "") -> str:
    if not isinstance(value, (int, float)):
        return "-"
    text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{text} {unit}".strip()


def render(results: list[dict[str, object]]) -> str:
    header = ("measure", "anchor", "goal", "median", "ratio", "met")
    lines: list[tuple[str, ...]] = []
    for result in results:
        for row in result["rows"]:  # type: ignore[attr-defined]
            anchor = row["anchor"] or "-"
            if row["anchor_median"] is not None:
                anchor += f" ({_number(row['anchor_median'], row['unit'])})"
            met = {True: "yes", False: "NO", None: "-"}[row["met"]]
            ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
            lines.append((row["measure"], anchor, row["goal"] or "-", _number(row["median"], row["unit"]), ratio, met))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-|-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.append("")
    for result in results:
        if result["status"] != "ok":
            out.append(f"{result['script']}: {result['status']} (see {result.get('log', '-')})")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run, no lab")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="run only these scripts (e.g. bench_report.py)")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script (default 900 quick, 7200)")
    args = parser.parse_args()
    known = {b.script for b in BENCHES}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; the scripts are {', '.join(sorted(known))}")
    timeout = args.timeout or (900.0 if args.quick else 7200.0)
    logs = BENCH / "logs"
    logs.mkdir(exist_ok=True)
    started = datetime.now(UTC)
    host = machine()
    measured = commit()  # at the start: the scripts run from this tree, which may move on meanwhile
    results: list[dict[str, object]] = []
    for bench in BENCHES:
        if args.only and bench.script not in args.only:
            continue
        if args.quick and bench.quick is None:
            results.append({"script": bench.name, "status": "skipped: full set only (needs a lab)", "rows": []})
            continue
        reason = missing(bench)
        if reason is not None:
            results.append({"script": bench.name, "status": f"skipped: {reason}", "rows": []})
            continue
        results.append(run_one(bench, args.quick, logs, timeout))
    document = {
        "date": started.isoformat(timespec="seconds"),
        "commit": measured,
        "machine": host,
        "mode": "quick" if args.quick else "full",
        "results": results,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(render(results))
    print(f"\n{args.out}: written")
    return 0 if all(r["status"] == "ok" or str(r["status"]).startswith("skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
