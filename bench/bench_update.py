"""Figures of updates: how fast a broken update is undone, and what a no-op update run costs.

    .venv/bin/python bench/bench_update.py [--runs 5]

Needs the lab up (`carestack lab up`). Runs on the studio client's server the
same scenarios as tests/updates (real packages, a real release, a real
plugin, built here), puts the sites back as they were at the end, and prints a
table of medians (and the spread). Asserts nothing about time.

- broken update -> healthy: from the moment the broken version is in place to
  the site answering its probes again after the rollback (the agent's own
  `healthy_after_seconds`): the probe's settle time and retries that notice the
  breakage, the providers' rollback, the snapshot's files and database swapped
  back in, the settle time and probes that prove the site healthy. Goal: under
  60 s for the lab's WordPress site.
- rollback alone: the part of it after the probes gave up.
- no-op update run: `carestack-agent update SITE` with the plan's providers and
  nothing to update, wall time over ssh: probes, apt-get update (the test
  repositories), the WordPress inventory, no snapshot.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import record  # noqa: E402

from lab.state import LabState  # noqa: E402
from tests.updates import artifacts  # noqa: E402
from tests.updates.conftest import UpdatesLab, updates_lab  # noqa: E402

ROLLED_BACK = 6


def broken_run(lab: UpdatesLab, provider: str) -> tuple[float, float, float]:
    """One broken update rolled back: (healthy after, rollback, whole run) in seconds."""
    site = lab.web if provider == "wordpress" else lab.plans
    lab.forget_failed()
    if provider == "wordpress":
        lab.offer_plugin("1.2")
    elif provider == "release":
        lab.offer_release("1.2")
    else:
        lab.publish_apt({"security": [f"{artifacts.NGINX}_1.0", f"{artifacts.NGINX}_2.0"], "updates": []})
    lab.configure({site.id: [provider]})
    started = time.monotonic()
    done = lab.server.agent("update", site.id)
    wall = time.monotonic() - started
    if done.returncode != ROLLED_BACK:
        raise SystemExit(f"{provider}: expected a rollback, got exit {done.returncode}: {done.stderr.strip()}")
    figures = lab.server.last_update(site)["figures"]
    lab.offer_release()
    return float(figures["healthy_after_seconds"]), float(figures["rollback_seconds"]), wall


def noop_run(lab: UpdatesLab, site_name: str) -> float:
    site = getattr(lab, site_name)
    lab.publish_apt({"security": [f"{artifacts.TOOLS}_1.0", f"{artifacts.NGINX}_1.0"], "updates": []})
    lab.offer_plugin()
    lab.offer_release()
    lab.configure({site.id: list(site.providers)})
    started = time.monotonic()
    done = lab.server.agent("update", site.id)
    wall = time.monotonic() - started
    if done.returncode != 0 or "no updates" not in done.stdout:
        raise SystemExit(f"no-op run of {site.id} did something: {done.stdout.strip()} {done.stderr.strip()}")
    return wall


def row(name: str, values: list[float]) -> str:
    return (f"{name:<64} {statistics.median(values):8.1f} {min(values):8.1f} {max(values):8.1f} "
            f"{len(values):5d}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    state = LabState.load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-update-") as tmp, updates_lab(state, Path(tmp)) as lab:
        for provider, site in (("wordpress", lab.web), ("release", lab.plans), ("apt", lab.plans)):
            healthy, rollback, wall = [], [], []
            for _ in range(args.runs):
                h, r, w = broken_run(lab, provider)
                healthy.append(h)
                rollback.append(r)
                wall.append(w)
            what = f"{provider} ({site.kind} site {site.id})"
            record(f"update: broken {provider} release undone (whole run)", statistics.median(wall), "s",
                   anchor="an admin restoring the backup by hand")  # fmt: skip
            rows += [row(f"broken {what}: applied -> healthy", healthy),
                     row(f"broken {what}: rollback alone", rollback),
                     row(f"broken {what}: whole run", wall)]  # fmt: skip
        for name in ("web", "plans"):
            site = getattr(lab, name)
            runs = [noop_run(lab, name) for _ in range(args.runs)]
            record(f"update: no-op run ({site.id})", statistics.median(runs), "s")
            rows.append(row(f"no-op update run ({site.id}: {', '.join(site.providers)})", runs))
    print(f"{'figure (seconds)':<64} {'median':>8} {'min':>8} {'max':>8} {'runs':>5}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
