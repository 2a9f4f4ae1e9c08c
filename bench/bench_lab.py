"""Figures of the lab: how long `carestack lab up` takes, and how much memory the lab uses.

    .venv/bin/python bench/bench_lab.py [--runs 3] [--cold-runs 1] [--keep]

Runs the real CLI in its own state directory, subnet, bridge and ports (so a
developer's lab keeps running) and prints a table of medians:
- cold `lab up`: no cached base image (debootstrap included), to all example clients onboarded
- warm `lab up`: the image cached, after `lab down --keep-image`
- no-op `lab up`: everything already up
- the lab's memory: the PSS of all its processes (guests, nspawn, services), per part
- with --jobs (the default with --stacks: a fleet's goals): `lab status --json`, every site's backup
  started at once (all timers firing together), the failed jobs counted, and `carestack report --all`
  for every client from its real sources (Kuma's history, the buckets' snapshots and evidence)
Goals: warm under 3 min (a fleet: under 15 min), no-op under 10 s, status under 5 s, the fleet in
16 GiB, no failed backup, the report of every client under 1 min. Needs root. `--cold-runs 0`
shares the developer lab's cached base image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import at_most, record  # noqa: E402

from lab import hosts, procs  # noqa: E402
from lab.config import LabConfig, load_config  # noqa: E402
from lab.footprint import lab_processes  # noqa: E402
from lab.report_access import write_lab_outputs  # noqa: E402
from lab.state import LabState  # noqa: E402

CARESTACK = str(Path(sys.executable).with_name("carestack"))


def _carestack(state_dir: Path, *args: str) -> float:
    """Run a carestack lab command; its wall time in seconds (its output goes to a log)."""
    env = {**os.environ, "CARESTACK_LAB_DIR": str(state_dir)}
    log = state_dir.with_name(state_dir.name + ".bench.log")
    started = time.monotonic()
    with open(log, "a") as out:
        done = subprocess.run([CARESTACK, "lab", *args], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"carestack lab {' '.join(args)} failed ({done.returncode}); see {log}")
    return seconds


def bench_config(state_dir: Path, share_image: bool = False) -> LabConfig:
    """Its own subnet, bridge and ports: a developer's lab may keep running meanwhile."""
    return LabConfig(
        state_dir,
        subnet="10.77.10.0/24",
        bridge="csbench",
        apt_port=3160,
        s3_port=9010,
        kuma_port=3010,
        alert_port=9110,
        image_cache=str(load_config().image_dir) if share_image else "",
    )


def _status_seconds(state_dir: Path, runs: int) -> list[float]:
    env = {**os.environ, "CARESTACK_LAB_DIR": str(state_dir)}
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([CARESTACK, "lab", "status", "--json"], env=env, capture_output=True, check=True)
        times.append(time.monotonic() - started)
    return times


def _all_backups_at_once(state: LabState) -> tuple[float, int, int, list[str]]:
    """Every site's backup unit started on every server at the same moment, as when all timers fire.

    Returns the seconds until the last one ended, the jobs, the failed ones and their names."""
    start = "systemctl start --no-block $(systemctl list-units --all --plain --no-legend 'carestack-backup@*.timer' \
        | awk '{print $1}' | sed 's/[.]timer$/.service/')"
    wait = (
        "while systemctl list-units --plain --no-legend --state=activating,active 'carestack-backup@*.service' "
        "| grep -q .; do sleep 2; done; "
        "for u in $(systemctl list-units --all --plain --no-legend 'carestack-backup@*.service' | awk '{print $1}'); "
        'do echo "$u $(systemctl show -p Result --value "$u")"; done'
    )
    servers = [h.name for h in state.hosts if h.role != "standby"]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        list(pool.map(lambda name: state.ssh(name, start), servers))
        results = list(pool.map(lambda name: state.ssh(name, wait, timeout=3600), servers))
    seconds = time.monotonic() - started
    lines = [line for r in results for line in r.stdout.split("\n") if line.strip()]
    failed = [line.split()[0] for line in lines if not line.endswith(" success")]
    return seconds, len(lines), len(failed), failed


def _report_all_seconds(state: LabState, stacks: list[Path]) -> float | None:
    """`carestack report --all` over the lab's stack files (this month to date), every client's outputs
    and Kuma's credentials given, so each source is read for real; None when the stacks are not one
    directory's (`--all` reads a directory)."""
    folders = {stack.parent for stack in stacks} or {ROOT / "stacks"}
    if len(folders) != 1 or state.kuma_credentials_file is None:
        return None
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        outputs = Path(tmp) / "outputs"
        outputs.mkdir()
        for client in state.clients:
            write_lab_outputs(state, client.id, outputs / f"{client.id}.outputs.json")
        command = [CARESTACK, "report", "--all", "--stacks", str(folders.pop()), "--outputs-dir", str(outputs),
                   "--credentials", str(state.kuma_credentials_file), "--out", str(Path(tmp) / "reports")]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            sys.exit(f"carestack report --all failed ({done.returncode}): {done.stderr.strip()[-600:]}")
        return seconds


def _up_args(config: LabConfig, stacks: list[Path]) -> list[str]:
    args = ["up", *map(str, stacks)]
    for key, value in config.to_json().items():
        if value != "":
            flag = "image-dir" if key == "image_cache" else key.replace("_", "-")  # the config's name for it
            args += [f"--{flag}", str(value)]
    return args


def _memory(config: LabConfig) -> dict[str, int]:
    """PSS in KiB of the lab's processes, grouped: each server (guest + nspawn + supervisor), the rest."""
    state = LabState.load(config.state_dir)
    everything = set(lab_processes(config))
    parts: dict[str, int] = {}
    for host in state.hosts:
        h = hosts.host(config, host.name, host.address)
        supervisor = procs.running(h.supervisor_pid)
        pids = set(procs.descendants([supervisor.pid])) if supervisor else set()
        pids |= set(hosts.guest_pids(h))
        parts[f"server {host.name}"] = sum(procs.pss_kib(pid) for pid in pids & everything)
        everything -= pids
    for pid in sorted(everything):
        name = Path(f"/proc/{pid}/comm").read_text().strip() if Path(f"/proc/{pid}").exists() else "?"
        parts[name] = parts.get(name, 0) + procs.pss_kib(pid)
    return parts


def _row(name: str, values: list[float], goal: str = "") -> str:
    median = statistics.median(values)
    spread = f"{min(values):.1f}..{max(values):.1f}" if len(values) > 1 else ""
    return f"| {name:<44} | {median:>9.1f} | {len(values):>4} | {spread:>12} | {goal:<10} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="warm and no-op runs (median)")
    parser.add_argument("--cold-runs", type=int, default=1, help="cold runs (each builds the image)")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/carestack-lab-bench"))
    parser.add_argument("--keep", action="store_true", help="leave the bench lab up at the end")
    parser.add_argument("--jobs", action=argparse.BooleanOptionalAction, default=None,
                        help="also time `lab status --json`, all backups at once and `report --all` "
                        "(default: with --stacks)")  # fmt: skip
    parser.add_argument("--stacks", nargs="+", type=Path, default=[], help="stack files (default: the examples), "
                        "e.g. a fleet written by `carestack lab fleet`")  # fmt: skip
    args = parser.parse_args()
    if args.jobs is None:
        args.jobs = bool(args.stacks)
    if os.geteuid() != 0:
        sys.exit("bench_lab: run as root (the lab boots servers)")
    state_dir: Path = args.state_dir
    config = bench_config(state_dir, share_image=args.cold_runs == 0)

    cold, warm, noop = [], [], []
    for _ in range(args.cold_runs):
        if state_dir.exists():
            _carestack(state_dir, "down")
        cold.append(_carestack(state_dir, *_up_args(config, args.stacks)))
    for _ in range(args.runs):
        _carestack(state_dir, "down", "--keep-image")
        warm.append(_carestack(state_dir, *_up_args(config, args.stacks)))
    for _ in range(args.runs):
        noop.append(_carestack(state_dir, *_up_args(config, args.stacks)))
    memory = _memory(config)
    state = LabState.load(state_dir)
    status_s = _status_seconds(state_dir, args.runs) if args.jobs else []
    backups = _all_backups_at_once(state) if args.jobs else None
    report_s = _report_all_seconds(state, args.stacks) if args.jobs else None
    if not args.keep:
        _carestack(state_dir, "down")

    print(f"\nlab: {len(state.hosts)} servers, {len(state.clients)} clients, all onboarded")
    print()
    print(f"| {'carestack lab up':<44} | {'median s':>9} | {'runs':>4} | {'min..max':>12} | {'goal':<10} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 6}|{'-' * 14}|{'-' * 12}|")
    for name, values, goal in (
        ("cold (no cached image, debootstrap)", cold, ""),
        ("warm (cached image, after down --keep-image)", warm, "< 180 s" if not args.stacks else "< 15 min"),
        ("no-op (everything up)", noop, "< 10 s"),
    ):
        if values:
            print(_row(name, values, goal))
    if status_s:
        print(_row("`lab status --json`", status_s, "< 5 s"))
    if report_s is not None:
        print(_row(f"`report --all` ({len(state.clients)} clients)", [report_s], "< 60 s"))
    print()
    print(f"| {'lab memory (PSS)':<44} | {'MiB':>9} |")
    print(f"|{'-' * 46}|{'-' * 11}|")
    for name, kib in sorted(memory.items(), key=lambda item: -item[1]):
        print(f"| {name:<44} | {kib / 1024:>9.1f} |")
    print(f"| {'total':<44} | {sum(memory.values()) / 1024:>9.1f} |")
    which = f"{len(state.hosts)} servers, {len(state.clients)} clients"
    if warm:
        record(f"lab up, warm ({which})", statistics.median(warm), "s",
               goal="< 180 s" if not args.stacks else "< 15 min",
               met=at_most(statistics.median(warm), 180 if not args.stacks else 900))  # fmt: skip
    if noop:
        record(f"lab up, no-op ({which})", statistics.median(noop), "s", goal="< 10 s",
               met=at_most(statistics.median(noop), 10))  # fmt: skip
    if backups is not None:
        seconds, jobs, failed, names = backups
        print(f"\nall backups at once: {jobs} jobs on {len(state.hosts) - 1} servers, {failed} failed, "
              f"{seconds:.0f} s until the last ended {names if names else ''}")  # fmt: skip
        record(f"backups, every site at once ({jobs} jobs)", failed, "failed jobs", goal="0", met=failed == 0)
    if status_s:
        record(f"lab status --json ({which})", statistics.median(status_s), "s", goal="< 5 s",
               met=at_most(statistics.median(status_s), 5))  # fmt: skip
    if report_s is not None:
        record(f"report --all from real sources ({which})", report_s, "s", goal="< 60 s", met=at_most(report_s, 60))
    total_gib = sum(memory.values()) / 1024 / 1024
    record(f"lab memory, PSS ({which})", total_gib, "GiB", goal="< 16 GiB", met=at_most(total_gib, 16))
    return 0


if __name__ == "__main__":
    sys.exit(main())
