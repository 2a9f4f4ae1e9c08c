"""Monitor sync figures against real Uptime Kuma servers (fresh ones, on loopback); prints tables, asserts nothing.

1. Creating monitors: carestack's sync (one bulk import) against the naive loop of
   uptime-kuma-api `add_monitor` calls (plus the two ownership tags per monitor),
   each on a fresh Kuma. The naive loop is measured on 100 monitors only (it is
   slow, and gets slower: every add rebuilds the whole monitor list), so its
   per-monitor median understates what it costs at 500.
   The large sync's time is split by what it was doing (login and reading Kuma,
   notifications, the import, the maintenance window, the client's status page).
2. A no-op resync of 500 monitors: time and writes. Then what the client's
   group costs at 500 monitors: repairing the status page's listing (one
   monitor taken off by hand), against the rejected alternative, a Kuma GROUP
   monitor, whose membership only `editMonitor` can set (one list rebuild per
   monitor; sampled on a few monitors).
3. Site down -> alert: the premium tier's real check settings (the shortest
   interval of the catalog) against local sites that are stopped, one sample per
   site; the other tiers' times are computed from their plans.

    .venv/bin/python bench/bench_kuma_sync.py [--naive 100] [--monitors 500] [--outage-sites 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from uptime_kuma_api import MonitorType, UptimeKumaApi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import record  # noqa: E402

from infra.kuma_client import KumaLogin, connect  # noqa: E402
from infra.monitors import (  # noqa: E402
    KEY_TAG,
    OWNER_TAG,
    TAG_COLOR,
    DesiredState,
    desired_state,
    is_owned,
    status_page_slug,
    sync,
)
from infra.plan import CarePlan, build_plan  # noqa: E402
from infra.spec import STACKS_DIR, ClientSpec, carestack_config, parse_stack  # noqa: E402
from lab import alert_receiver, kuma_server  # noqa: E402
from lab.services import lab_alerting  # noqa: E402

KEYWORD = "Bench site"
MONITORS_PER_SITE = 5  # one page and four agent jobs
SETTLE_SECONDS = 20
GROUP_SAMPLES = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def site_server(port: int = 0) -> Iterator[ThreadingHTTPServer]:
    """A local site whose every page contains KEYWORD."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"<html><body>{KEYWORD}</body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def bench_plan(client_id: str, sites: int, stack: str = "studio") -> CarePlan:
    """The example stack's client and tier with `sites` one-page sites (five monitors each)."""
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    config = carestack_config(str(path), yaml.safe_load(path.read_text()))
    config["client"] = {"id": client_id, "name": f"Bench {client_id}"}
    config["sites"] = [
        {
            "domain": f"site{i}.{client_id}.example",
            "name": f"s{i}",
            "kind": "php",
            "checks": [{"path": "/", "keyword": KEYWORD}],
        }
        for i in range(sites)
    ]
    spec = parse_stack(f"{path} as {client_id}", config)
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


@contextlib.contextmanager
def fresh_kuma() -> Iterator[tuple[kuma_server.KumaServer, KumaLogin]]:
    with tempfile.TemporaryDirectory(prefix="bench-kuma-") as tmp:
        server = kuma_server.start(Path(tmp), port=free_port())
        try:
            yield server, kuma_server.ensure_admin(server, Path(tmp))
        finally:
            kuma_server.stop(Path(tmp))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def desired(plan: CarePlan, receiver_url: str, address: str) -> DesiredState:
    return desired_state(plan, lab_alerting(receiver_url), {site.id: address for site in plan.sites})


def timed_sync(login: KumaLogin, state: DesiredState, dry_run: bool = False) -> tuple[float, int]:
    started = time.perf_counter()
    with connect(login) as session:
        result = sync(session, state, dry_run=dry_run, report=None)
    return time.perf_counter() - started, result.writes


def phased_sync(login: KumaLogin, state: DesiredState) -> tuple[float, int, dict[str, float]]:
    """A sync's total, writes, and seconds per phase: logging in and reading Kuma (until the changes
    are reported), then each kind of change (each change's time since the one before)."""
    phases: dict[str, float] = {}
    started = previous = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal previous
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - previous
        previous = now

    def reported(_line: str) -> None:
        if not phases:
            lap("login, read Kuma")

    with connect(login) as session:
        result = sync(session, state, report=reported, on_applied=lambda change: lap(f"{change.kind}s"))
    return time.perf_counter() - started, result.writes, phases


def page_repair(login: KumaLogin, state: DesiredState) -> tuple[float, int, dict[str, float]]:
    """Take one monitor off the client's status page by hand; the sync that puts it back."""
    slug = status_page_slug(state.client_id)
    with connect(login) as session:
        page = session.status_page(slug)
        if page is None:
            raise SystemExit(f"the sync made no status page {slug}")
        groups = page["publicGroupList"]
        groups[0]["monitorList"].pop()
        session.save_status_page(slug, {k: v for k, v in page.items() if k != "publicGroupList"}, groups)
    time.sleep(SETTLE_SECONDS)
    return phased_sync(login, state)


def group_edits(login: KumaLogin, client_id: str, samples: int) -> tuple[list[float], int]:
    """Put `samples` of the client's monitors into a GROUP monitor, one editMonitor each (as Kuma's UI does).

    Returns the seconds of each edit and how many monitors Kuma then shows in the group.
    """
    with connect(login) as session:
        group_id = session.api.add_monitor(type=MonitorType.GROUP, name="bench group")["monitorID"]
        chosen = [m for m in session.monitors() if is_owned(m, client_id)][:samples]
        times = []
        for monitor in chosen:
            started = time.perf_counter()
            # The library lists notification ids; editMonitor wants them as {id: true}.
            notifications = {str(i): True for i in monitor.get("notificationIDList") or []}
            session.edit_monitors([{**monitor, "notificationIDList": notifications, "parent": group_id}])
            times.append(time.perf_counter() - started)
        session.refresh_monitors()
        members = session.wait_for_monitors(lambda ms: sum(1 for m in ms if m.get("parent") == group_id) >= samples)
    return times, sum(1 for m in members if m.get("parent") == group_id)


def naive_loop(login: KumaLogin, state: DesiredState) -> list[float]:
    """What a straightforward client does: add_monitor, then tag it, one monitor after the other.

    The library as it comes (its default event wait), one login.
    """
    api = UptimeKumaApi(login.url, timeout=120)
    api.login(login.username, login.password)
    notification_ids = [
        int(api.add_notification(**{**n.fields, "applyExisting": False})["id"]) for n in state.notifications
    ]
    tags = {name: api.add_tag(name=name, color=TAG_COLOR)["id"] for name in (OWNER_TAG, KEY_TAG)}
    times = []
    for monitor in state.monitors:
        fields = {k: v for k, v in monitor.fields.items() if k != "headers" or v}
        started = time.perf_counter()
        monitor_id = api.add_monitor(**fields, notificationIDList=notification_ids)["monitorID"]
        api.add_monitor_tag(tag_id=tags[OWNER_TAG], monitor_id=monitor_id, value=state.client_id)
        api.add_monitor_tag(tag_id=tags[KEY_TAG], monitor_id=monitor_id, value=monitor.key)
        times.append(time.perf_counter() - started)
    api.disconnect()
    return times


def creation(naive_count: int, count: int) -> None:
    sites_small, sites_large = naive_count // MONITORS_PER_SITE, count // MONITORS_PER_SITE
    with tempfile.TemporaryDirectory() as alerts, alert_receiver.serve(Path(alerts)) as receiver, site_server() as web:
        address = f"http://127.0.0.1:{web.server_address[1]}"
        with fresh_kuma() as (_, login):
            naive = naive_loop(login, desired(bench_plan("naive", sites_small), receiver.url, address))
        with fresh_kuma() as (_, login):
            small, small_writes = timed_sync(login, desired(bench_plan("small", sites_small), receiver.url, address))
        with fresh_kuma() as (server, login):
            large_state = desired(bench_plan("large", sites_large), receiver.url, address)
            large, large_writes, phases = phased_sync(login, large_state)
            rss_after_create = rss_mib(server.pid)
            settled = []
            for _ in range(3):  # a login makes Kuma send every monitor's heartbeats and stats for seconds
                time.sleep(SETTLE_SECONDS)
                settled.append(timed_sync(login, large_state))
            back_to_back = [timed_sync(login, large_state) for _ in range(3)]
            time.sleep(SETTLE_SECONDS)
            floor = []
            for _ in range(3):  # what any client waits for: the login and Kuma's monitor list
                started = time.perf_counter()
                with connect(login) as session:
                    session.monitors()
                floor.append(time.perf_counter() - started)
                time.sleep(SETTLE_SECONDS)
            repair = page_repair(login, large_state)
            time.sleep(SETTLE_SECONDS)
            edits, grouped = group_edits(login, large_state.client_id, GROUP_SAMPLES)

    naive_median = statistics.median(naive)
    n_small, n_large = sites_small * MONITORS_PER_SITE, len(large_state.monitors)
    print(f"\nCreating monitors (fresh Kuma each; the naive loop is measured on {len(naive)} monitors only)")
    print(f"{'path':<26}{'monitors':>9}{'total s':>10}{'median s/monitor':>18}{'writes':>8}")
    print(f"{'naive add_monitor loop':<26}{len(naive):>9}{sum(naive):>10.1f}{naive_median:>18.4f}{3 * len(naive):>8}")
    print(f"{'carestack sync':<26}{n_small:>9}{small:>10.1f}{small / n_small:>18.4f}{small_writes:>8}")
    print(f"{'carestack sync':<26}{n_large:>9}{large:>10.1f}{large / n_large:>18.4f}{large_writes:>8}")
    print("(carestack's s/monitor is its total over the count: one import creates them all)")
    print(f"ratio at {n_small} monitors (naive median / carestack per monitor): {naive_median * n_small / small:.0f}x")
    estimate = naive_median * n_large
    print(f"naive at {n_large} monitors, estimated from its {len(naive)}-monitor median: {estimate:.0f} s")
    print(f"  (a lower bound: each add rebuilds a list that keeps growing) -> ratio {estimate / large:.0f}x")
    record(f"monitors sync: initial, {n_large} monitors (default Kuma)", large, "s",
           anchor="naive add_monitor loop (estimated from its median)", anchor_median=estimate,
           goal=">= 5x faster", met=estimate / large >= 5)  # fmt: skip
    print(f"Kuma RSS after creating {len(large_state.monitors)} monitors: {rss_after_create:.0f} MiB")
    print(f"\nWhere the {n_large}-monitor sync's {large:.1f} s went")
    for name, seconds in phases.items():
        print(f"  {name:<40}{seconds:>7.2f}")
    print(f"\nNo-op resync of {n_large} monitors (each run a new connection, login by token)")
    print(f"{'runs':<44}{'median s':>9}{'max s':>7}{'writes':>8}")
    for name, runs in (
        (f"3, each {SETTLE_SECONDS} s after the previous login", settled),
        ("3 back to back (Kuma still busy from the last)", back_to_back),
    ):
        times, writes = [t for t, _ in runs], sorted({w for _, w in runs})
        print(f"{name:<44}{statistics.median(times):>9.2f}{max(times):>7.2f}{writes!s:>8}")
    name = "Kuma alone: login and its monitor list"
    print(f"{name:<44}{statistics.median(floor):>9.2f}{max(floor):>7.2f}{'-':>8}")
    print(f"(load average of this machine meanwhile: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    edit_median = statistics.median(edits)
    print(f"\nThe client's group at {n_large} monitors")
    print(f"{'realization':<52}{'s':>8}{'writes':>8}")
    print(f"{'status page: listing repaired, whole sync':<52}{repair[0]:>8.2f}{repair[1]:>8}")
    print(f"{'  of which saveStatusPage':<52}{repair[2].get('status pages', 0.0):>8.2f}{'':>8}")
    print(f"{'GROUP monitor: one editMonitor (parent), median':<52}{edit_median:>8.2f}{1:>8}")
    all_placed = f"GROUP monitor: all {n_large} placed, estimated"
    print(f"{all_placed:<52}{edit_median * n_large:>8.0f}{n_large:>8}")
    print(
        f"(editMonitor sampled on {len(edits)} monitors, max {max(edits):.2f} s; "
        f"Kuma then showed {grouped} in the group)"
    )


def predicted(plan: CarePlan) -> tuple[float, float]:
    """Mean and worst seconds from a refused connection to the alert: the next check, then the retries."""
    mon = plan.monitoring
    retries = mon.retries * mon.retry_interval_seconds
    return mon.interval_seconds / 2 + retries, mon.interval_seconds + retries


def wait_for(alerts_dir: Path, status: str, since: dict[str, float], timeout: float) -> list[float]:
    """Seconds from since[monitor] to that monitor's first `status` alert (those that came within `timeout`)."""
    first: dict[str, float] = {}
    deadline = max(since.values()) + timeout
    while time.time() < deadline and not set(since) <= set(first):
        for alert in alert_receiver.read_alerts(alerts_dir):
            start = since.get(alert.monitor or "")
            if alert.status == status and start is not None and alert.received_at >= start:
                first.setdefault(str(alert.monitor), alert.received_at - start)
        time.sleep(1)
    return sorted(first.values())


def outage(sites: int) -> None:
    """Stop the sites one after the other, spread over one check interval, so the samples cover every phase."""
    plan = bench_plan("outage", sites, stack="shop")  # premium: the catalog's shortest interval
    interval = plan.monitoring.interval_seconds
    with tempfile.TemporaryDirectory() as tmp, alert_receiver.serve(Path(tmp)) as receiver, fresh_kuma() as kuma:
        with contextlib.ExitStack() as running:
            servers = [running.enter_context(site_server()) for _ in plan.sites]
            ports = [server.server_address[1] for server in servers]
            addresses = {site.id: f"http://127.0.0.1:{port}" for site, port in zip(plan.sites, ports, strict=True)}
            with connect(kuma[1]) as session:
                sync(session, desired_state(plan, lab_alerting(receiver.url), addresses), report=None)
            time.sleep(2 * interval)  # every site checked up at least once
            stopped = {}
            for site, server in zip(plan.sites, servers, strict=True):
                server.shutdown()
                server.server_close()
                stopped[f"{site.id} · /"] = time.time()
                time.sleep(interval / len(plan.sites))
        downs = wait_for(Path(tmp), "down", stopped, 2 * predicted(plan)[1] + 60)
        with contextlib.ExitStack() as running:
            started = {}
            for site, port in zip(plan.sites, ports, strict=True):
                running.enter_context(site_server(port))
                started[f"{site.id} · /"] = time.time()
                time.sleep(interval / len(plan.sites))
            ups = wait_for(Path(tmp), "up", started, 2 * interval + 30)

    mean, worst = predicted(plan)
    print(f"\nSite down -> alert: {sites} local sites stopped (connection refused), premium settings")
    print(f"measured: {len(downs)}/{sites} alerts, median {statistics.median(downs):.1f} s, max {max(downs):.1f} s")
    print(
        f"computed for premium: mean {mean:.0f} s, worst {worst:.0f} s; recovery median {statistics.median(ups):.1f} s"
    )
    print(f"{'tier':<10}{'interval s':>11}{'retries':>8}{'retry s':>8}{'mean s':>8}{'worst s':>8}{'promised s':>11}")
    for stack_name in ("bakery", "studio", "shop"):
        tier_plan = bench_plan(f"tier{stack_name}", 1, stack=stack_name)
        m = tier_plan.monitoring
        tier_mean, tier_worst = predicted(tier_plan)
        print(
            f"{tier_plan.client.tier:<10}{m.interval_seconds:>11}{m.retries:>8}{m.retry_interval_seconds:>8}"
            f"{tier_mean:>8.0f}{tier_worst:>8.0f}{m.alert_within_seconds:>11}"
        )
    print(
        f"(a check that times out rather than being refused adds up to its timeout, {plan.monitoring.timeout_seconds} s"
    )
    print(" for premium, per attempt)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--naive", type=int, default=100, help="monitors for the naive loop (default 100)")
    parser.add_argument("--monitors", type=int, default=500, help="monitors for carestack's sync (default 500)")
    parser.add_argument("--outage-sites", type=int, default=5, help="sites stopped for the alert latency (default 5)")
    args = parser.parse_args()
    kuma_server.ensure_installed()
    creation(args.naive, args.monitors)
    outage(args.outage_sites)
    return 0


if __name__ == "__main__":
    sys.exit(main())
