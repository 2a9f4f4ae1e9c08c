#!/usr/bin/env python3
"""The report's cost: one client-month (document, HTML, PDF) and `report --all` over the example stacks.

One client-month: the studio client's synthetic November (tests/report_sample.py: 4 page monitors
with their response samples, a month of hourly snapshots, evidence records, the example ledger)
through build_report and each renderer, in this process. `--all`: the real CLI in its own process
over stacks/ (no sources given, so it measures planning and rendering; each source's own read cost
is in its bench: Kuma history in bench_kuma_versions.py, restic and S3 in bench_agent_backup.py).
With --lab, also the real CLI against the lab in $CARESTACK_LAB_DIR (Kuma, restic and evidence).
Options: --runs N (default 5), --sample-seconds S (a response sample per page every S seconds, default
60: a month of Kuma 1.23 beats at the standard tier's interval), --lab CLIENT.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import record  # noqa: E402

from infra.report.build import build_report  # noqa: E402
from infra.report.pdf import html_to_pdf  # noqa: E402
from infra.report.render_html import render_html  # noqa: E402
from infra.report.render_md import render_md  # noqa: E402
from tests.report_sample import NOW, sample_period, sample_sources, studio_plan  # noqa: E402


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def lab_seconds(client: str, tmp: Path) -> float:
    """The real CLI on today's report of a lab client ($CARESTACK_LAB_DIR), sources read for real."""
    from lab.report_access import write_lab_outputs
    from lab.state import LabState

    state = LabState.load()
    outputs = write_lab_outputs(state, client, tmp / f"{client}.outputs.json")
    today = datetime.now(UTC).date()
    command = [
        sys.executable,
        "-m",
        "infra.cli",
        "report",
        str(state.client(client).stack),
        "--from",
        today.isoformat(),
        "--to",
        (today + timedelta(days=1)).isoformat(),
        "--outputs",
        str(outputs),
        "--credentials",
        str(state.kuma_credentials_file),
        "--out",
        str(tmp / "lab.html"),
    ]
    return median_seconds(lambda: subprocess.run(command, cwd=ROOT, check=True, capture_output=True), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sample-seconds", type=int, default=60, help="a response sample this often (default 60)")
    parser.add_argument("--lab", metavar="CLIENT", help="also report this lab client from its real sources")
    args = parser.parse_args()
    plan, period = studio_plan(), sample_period()
    every = args.sample_seconds
    sources = sample_sources(plan, period, every)
    doc = build_report(plan, period, sources, NOW)
    html = render_html(doc)
    n = args.runs
    rows = [
        (
            "one client-month: sources built (synthetic)",
            median_seconds(lambda: sample_sources(plan, period, args.sample_seconds), n),
        ),
        (
            "one client-month: document (accounting)",
            median_seconds(lambda: build_report(plan, period, sources, NOW), n),
        ),
        ("one client-month: HTML", median_seconds(lambda: render_html(doc), n)),
        ("one client-month: Markdown", median_seconds(lambda: render_md(doc), n)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "r.pdf"
        rows.append(("one client-month: PDF (chromium)", median_seconds(lambda: html_to_pdf(html, pdf), 3)))
        command = [
            sys.executable,
            "-m",
            "infra.cli",
            "report",
            "--all",
            "--month",
            "2026-11",
            "--stacks",
            str(ROOT / "stacks"),
            "--out",
            str(Path(tmp) / "all"),
        ]
        run_all = lambda: subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # noqa: E731
        rows.append(("report --all, example stacks, CLI process", median_seconds(run_all, args.runs)))
        if args.lab:
            rows.append((f"lab client {args.lab}: CLI with Kuma, restic, S3", lab_seconds(args.lab, Path(tmp))))
    width = max(len(name) for name, _ in rows)
    print(f"{'what'.ljust(width)} | median s")
    print(f"{'-' * width}-|---------")
    for name, seconds in rows:
        print(f"{name.ljust(width)} | {seconds:8.3f}")
    goals = {  # the report's own bounds
        "one client-month: document (accounting)": 5.0,
        "report --all, example stacks, CLI process": 15.0,
    }
    for name, seconds in rows:
        if name in goals or name.startswith("lab client"):
            limit = goals.get(name)
            record(f"report: {name}", seconds, "s", goal=f"< {limit:g} s" if limit else None,
                   met=seconds < limit if limit else None)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
