"""Figures of the standby restore: how long `carestack lab failover CLIENT` takes against the plan's RTO.

    .venv/bin/python bench/bench_failover.py [--client studio] [--runs 3]

Needs the lab up with the example stacks (`carestack lab up`). The first run starts from a fresh standby
(rebuilt from the image: the failover of a server nobody prepared), the others
from a standby that already carries the client (a repeated drill). Prints the
medians of each step and of the whole, and the plan's promise (standard: 180
min, premium: 60 min, from the plan). Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab import servers  # noqa: E402
from lab.config import load_config  # noqa: E402
from lab.failover import FailoverReport, failover  # noqa: E402
from lab.state import LabState  # noqa: E402
from lab.up import lab_up  # noqa: E402


def row(name: str, reports: list[FailoverReport], pick: str) -> str:
    values = [r.rto_seconds if pick == "total" else r.steps[pick] for r in reports]
    return f"{name:<44} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f} {len(values):5d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", default="studio")
    parser.add_argument("--runs", type=int, default=3, help="repeated drills after the fresh one")
    args = parser.parse_args()
    config = load_config()
    state = LabState.load(config.state_dir)
    if state.standby is None:
        sys.exit("the lab has no standby")
    servers.take_down(config, state.standby, remove_data=True)
    lab_up(config, out=io.StringIO())  # the example stacks; boots the standby fresh
    fresh = [failover(config, args.client, out=io.StringIO())]
    again = [failover(config, args.client, out=io.StringIO()) for _ in range(args.runs)]
    target = fresh[0].rto_target_minutes
    print(f"{'failover of ' + args.client + ' (seconds)':<44} {'median':>8} {'min':>8} {'max':>8} {'runs':>5}")
    for label, reports in (("fresh standby", fresh), ("standby already prepared", again)):
        for step in ("converge", "restore", "pages"):
            print(row(f"{label}: {step}", reports, step))
        print(row(f"{label}: whole (plan promises {target} min)", reports, "total"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
