"""Monitor sync on each supported Uptime Kuma version, side by side; prints one table, asserts nothing.

Per version, on a fresh server on loopback: the initial sync of N monitors (the bulk import
on 1.23 and 2.0.0-dev.0, pipelined `add`s plus tags on 2.x stable), a no-op resync (time and
writes, after Kuma settled from the previous login), and one changed monitor (writes). On 2.x
stable, where no bulk import exists, also the naive path for comparison: one `add` at a time, each
awaited, then its two tags (what a client library's add_monitor does, without its version look-ups).
Then an agency's fleet (`carestack lab fleet`'s clients: every tier, sites with several pages) into
a fresh server: every client in one batch (`sync_clients`, what `lab up` does) against one sync per
client after another (what it did before).
1.23.16 and 2.5.3 are installed from the source tarballs in CARESTACK_KUMA_SOURCES.

    CARESTACK_KUMA_SOURCES=../shared/vendor/uptime-kuma .venv/bin/python bench/bench_kuma_versions.py \
        [--monitors 500] [--fleet-servers 20 --fleet-sites 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import record  # noqa: E402

from bench.bench_kuma_sync import MONITORS_PER_SITE, bench_plan, desired, free_port, site_server  # noqa: E402
from infra.kuma_client import KumaLogin, connect  # noqa: E402
from infra.monitors import DesiredState, desired_state, sync, sync_clients  # noqa: E402
from lab import alert_receiver, kuma_server  # noqa: E402
from lab.fleet import write_fleet  # noqa: E402
from lab.kuma_sources import ensure_source_install  # noqa: E402
from lab.placement import place  # noqa: E402
from lab.services import lab_alerting  # noqa: E402

VERSIONS = (kuma_server.KUMA_VERSION, "1.23.16", "2.5.3")
SETTLE_SECONDS = 20  # a login makes Kuma send every monitor's heartbeats for a while


@contextlib.contextmanager
def fresh_kuma(version: str) -> Iterator[KumaLogin]:
    package = (
        None if version == kuma_server.KUMA_VERSION else ensure_source_install(version, kuma_server.default_cache_dir())
    )
    with tempfile.TemporaryDirectory(prefix=f"bench-kuma-{version}-") as tmp:
        server = kuma_server.start(Path(tmp), port=free_port(), package=package)
        try:
            creds = kuma_server.ensure_admin(server, Path(tmp))
            yield KumaLogin(creds.url, creds.username, creds.password)
        finally:
            kuma_server.stop(Path(tmp))


def timed_sync(login: KumaLogin, state: DesiredState) -> tuple[float, int]:
    started = time.perf_counter()
    with connect(login) as session:
        result = sync(session, state, report=None)
    return time.perf_counter() - started, result.writes


def one_changed(state: DesiredState) -> DesiredState:
    """The same state with one page monitor's keyword changed."""
    first = next(m for m in state.monitors if m.job is None)
    changed = replace(first, fields={**first.fields, "keyword": first.fields["keyword"] + " (changed)"})
    return replace(state, monitors=tuple(changed if m is first else m for m in state.monitors))


def naive_adds(login: KumaLogin, state: DesiredState, count: int) -> float:
    """Seconds per monitor for `count` monitors created one awaited request after another."""
    from infra.monitors.apply import _import_record  # the records the sync would send

    records = [_import_record(m, "naive", []) for m in state.monitors[:count]]
    with connect(login) as session:
        tags = {str(t["name"]): str(t["color"]) for t in records[0]["tags"]}
        tag_ids = {
            t: session.api.sio.call("addTag", {"name": t, "color": c}, timeout=60)["tag"]["id"] for t, c in tags.items()
        }
        started = time.perf_counter()
        for record in records:
            fields = {k: v for k, v in record.items() if k != "tags"}
            added = session.api.sio.call("add", {**fields, "conditions": []}, timeout=60)
            for tag in record["tags"]:
                session.api.sio.call(
                    "addMonitorTag", (tag_ids[tag["name"]], added["monitorID"], tag["value"]), timeout=60
                )
        return (time.perf_counter() - started) / len(records)


def measure(version: str, sites: int, receiver_url: str, address: str, naive: int) -> dict[str, object]:
    state = desired(bench_plan("versions", sites), receiver_url, address)
    with fresh_kuma(version) as login:
        initial, initial_writes = timed_sync(login, state)
        noops = []
        for _ in range(3):
            time.sleep(SETTLE_SECONDS)
            noops.append(timed_sync(login, state))
        time.sleep(SETTLE_SECONDS)
        _, change_writes = timed_sync(login, one_changed(state))
    per_naive = None
    if naive and version != kuma_server.KUMA_VERSION and not version.startswith("1."):
        with fresh_kuma(version) as login:
            per_naive = naive_adds(login, state, naive)
    return {
        "naive": per_naive,
        "monitors": len(state.monitors),
        "initial": initial,
        "initial_writes": initial_writes,
        "noop": statistics.median(t for t, _ in noops),
        "noop_writes": sorted({w for _, w in noops}),
        "change_writes": change_writes,
    }


def fleet_states(servers: int, sites: int, receiver_url: str, address: str) -> list[DesiredState]:
    """The desired states of a generated fleet's clients, every site at `address`."""
    with tempfile.TemporaryDirectory() as out:
        plans = [client.plan for client in place(list(write_fleet(Path(out), servers, sites).files)).clients]
    alerting = lab_alerting(receiver_url)
    return [desired_state(plan, alerting, {site.id: address for site in plan.sites}) for plan in plans]


def measure_fleet(version: str, states: list[DesiredState]) -> tuple[float, float]:
    """Seconds to sync every client in one batch, and one client after another; a fresh server each."""
    with fresh_kuma(version) as login:
        started = time.perf_counter()
        with connect(login) as session:
            sync_clients(session, states, report=None)
        batch = time.perf_counter() - started
    with fresh_kuma(version) as login:
        started = time.perf_counter()
        with connect(login) as session:
            for state in states:
                sync(session, state, report=None)
        one_by_one = time.perf_counter() - started
    return batch, one_by_one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--monitors", type=int, default=500, help="monitors per client (default 500)")
    parser.add_argument("--naive", type=int, default=100, help="monitors for the naive path on 2.x (default 100)")
    parser.add_argument("--versions", nargs="*", default=list(VERSIONS), help=f"default: {' '.join(VERSIONS)}")
    parser.add_argument("--fleet-servers", type=int, default=20, help="the fleet's servers (default 20)")
    parser.add_argument("--fleet-sites", type=int, default=60, help="the fleet's sites (default 60; 0: no fleet)")
    args = parser.parse_args()
    sites = max(1, args.monitors // MONITORS_PER_SITE)
    rows = {}
    fleets: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as alerts, alert_receiver.serve(Path(alerts)) as receiver, site_server() as web:
        address = f"http://127.0.0.1:{web.server_address[1]}"
        states = fleet_states(args.fleet_servers, args.fleet_sites, receiver.url, address) if args.fleet_sites else []
        for version in args.versions:
            rows[version] = measure(version, sites, receiver.url, address, args.naive)
            if states:
                fleets[version] = measure_fleet(version, states)
    print(f"\nMonitor sync per Uptime Kuma version ({sites} sites, fresh server each)")
    print(
        f"{'version':<14}{'monitors':>9}{'initial s':>11}{'writes':>8}{'no-op s':>9}{'writes':>8}"
        f"{'1 change writes':>17}"
    )
    for version, row in rows.items():
        print(
            f"{version:<14}{row['monitors']:>9}{row['initial']:>11.1f}{row['initial_writes']:>8}"
            f"{row['noop']:>9.2f}{row['noop_writes']!s:>8}{row['change_writes']:>17}"
        )
    for version, row in rows.items():
        count, initial = int(str(row["monitors"])), float(str(row["initial"]))
        naive = float(str(row["naive"])) * count if row["naive"] is not None else None
        record(f"monitors sync on Kuma {version}: initial, {count} monitors", initial, "s",
               anchor="one awaited add + tags per monitor (estimated)" if naive else None, anchor_median=naive,
               goal=">= 5x faster" if naive else None, met=naive / initial >= 5 if naive else None)  # fmt: skip
        noop, writes = float(str(row["noop"])), row["noop_writes"]
        record(f"monitors sync on Kuma {version}: no-op resync", noop, "s", goal="< 5 s, 0 writes",
               met=noop < 5 and writes == [0])  # fmt: skip
        record(f"monitors sync on Kuma {version}: one change", float(str(row["change_writes"])), "writes",
               goal="1 write", met=row["change_writes"] == 1)  # fmt: skip
    for version, row in rows.items():
        if row["naive"] is not None:
            per, initial, count = float(str(row["naive"])), float(str(row["initial"])), int(str(row["monitors"]))
            print(
                f"{version}: naive one-add-at-a-time {per:.3f} s/monitor (on {args.naive}) -> {per * count:.0f} s for "
                f"{count}, {per * count / initial:.1f}x the sync's {initial:.1f} s"
            )
    if fleets:
        clients, monitors = len(states), sum(len(state.monitors) for state in states)
        print(f"\nA fleet's monitors into a fresh server ({clients} clients, {monitors} monitors)")
        print(f"{'version':<14}{'one batch s':>12}{'one by one s':>14}{'ratio':>7}")
        for version, (batch, one_by_one) in fleets.items():
            print(f"{version:<14}{batch:>12.1f}{one_by_one:>14.1f}{batch / one_by_one:>7.2f}")
            record(f"monitors sync on Kuma {version}: a fleet's {clients} clients, {monitors} monitors, one batch",
                   batch, "s", anchor="one sync per client", anchor_median=one_by_one,
                   goal="< 30 s" if monitors <= 600 else None, met=batch < 30 if monitors <= 600 else None)  # fmt: skip
    print(
        f"(no-op: median of 3, each {SETTLE_SECONDS} s after the previous login; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
