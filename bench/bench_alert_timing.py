"""Site down -> alert, measured per tier on the booted lab; prints a table, asserts nothing.

For each tier of the catalog, bench clients ("alertb0", "alerts0", "alertp0",
...: tier letter and number) whose one page check has the tier's real settings
(interval, retries, retry interval, timeout, notifications) watch the same lab
server's site. Their monitors are created a fraction of the longest interval
apart, so their checks fall at different moments. Then nginx on that server
stops: each monitor's time from the stop (the moment `systemctl stop nginx`
returned) to the first "down" alert the lab's alert receiver got is one sample.
nginx starts again once every monitor alerted, the monitors recover, and the
next run begins. Samples per tier: runs x monitors. The bench clients are
removed at the end (the lab's own clients are left as they were; those on the
same server alert too, as a real outage would make them).

Printed per tier: median, minimum and maximum of the samples, next to the plan's
`alert_within` and the window the settings allow (next check, then the retries).

    CARESTACK_LAB_DIR=/var/lib/cs-lab-81 .venv/bin/python bench/bench_alert_timing.py [--runs 1] [--per-tier 4]
"""

from __future__ import annotations

import argparse
import datetime
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import record  # noqa: E402

from infra.kuma_client import connect  # noqa: E402
from infra.monitors import desired_state, monitor_states, nothing_desired, sync  # noqa: E402
from infra.plan import CarePlan, build_plan  # noqa: E402
from infra.spec import STACKS_DIR, ClientSpec, carestack_config, parse_stack  # noqa: E402
from lab.alert_receiver import read_alerts  # noqa: E402
from lab.services import lab_alerting  # noqa: E402
from lab.state import LabState  # noqa: E402

TIERS = ("basic", "standard", "premium")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def tier_plan(stack: str, client_id: str, tier: str) -> CarePlan:
    """The lab client's example stack under `client_id` at `tier`: its first site's first page, no jobs.

    The update window moves three days away (a check inside it is maintenance, and never alerts).
    """
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    config = carestack_config(str(path), yaml.safe_load(path.read_text()))
    config["client"]["id"] = client_id
    config["tier"] = tier
    site = config["sites"][0]
    config["sites"] = [{**site, "checks": site["checks"][:1]}]  # every tier checks one page
    spec = parse_stack(f"{path} as {client_id} at {tier}", config)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    site = plan.sites[0]
    in_three_days = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    window = replace(plan.monitoring.maintenance, weekday=_WEEKDAYS[in_three_days.weekday()])
    return replace(
        plan,
        monitoring=replace(plan.monitoring, maintenance=window),
        sites=(replace(site, checks=site.checks[:1], jobs=()),),
    )


def window(plan: CarePlan) -> tuple[float, float]:
    """Earliest and latest seconds the settings allow from a refused connection to the alert."""
    mon = plan.monitoring
    retries = mon.retries * mon.retry_interval_seconds
    return float(retries), float(mon.interval_seconds + retries)


def monitor_name(plan: CarePlan) -> str:
    site = plan.sites[0]
    return f"{site.id} · {site.checks[0].path}"


def states(lab: LabState, plans: dict[str, CarePlan]) -> dict[str, str]:
    with connect(lab.kuma_login()) as session:
        return {c: monitor_states(session, c).get(monitor_name(p), "") for c, p in plans.items()}


def wait(lab: LabState, plans: dict[str, CarePlan], state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = states(lab, plans)
        if all(s == state for s in now.values()):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"monitors not {state} after {timeout:.0f}s: {now}")
        time.sleep(5)


def first_down(lab: LabState, plans: dict[str, CarePlan], since: float, timeout: float) -> dict[str, float]:
    """Seconds from `since` to each bench client's first down alert."""
    assert lab.alert_log is not None
    deadline = time.monotonic() + timeout
    while True:
        got: dict[str, float] = {}
        for alert in read_alerts(lab.alert_log.parent):
            plan = plans.get(str(alert.client))
            fresh = plan is not None and alert.status == "down" and alert.received_at >= since
            if fresh and plan is not None and alert.monitor == monitor_name(plan):
                got.setdefault(str(alert.client), alert.received_at - since)
        if len(got) == len(plans) or time.monotonic() > deadline:
            return got
        time.sleep(2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="outages (default 1)")
    parser.add_argument("--per-tier", type=int, default=4, help="monitors per tier, checking at different moments")
    parser.add_argument("--client", default="studio", help="the lab client whose site (and server) is stopped")
    args = parser.parse_args()
    lab = LabState.load()
    assert lab.alert_url is not None
    source = next(c for c in lab.clients if c.id == args.client)
    server = source.server
    stack = source.id
    address = f"http://{lab.host(server).address}"
    ids = {f"alert{tier[0]}{n}": tier for n in range(args.per_tier) for tier in TIERS}
    plans = {client: tier_plan(stack, client, tier) for client, tier in ids.items()}
    longest = max(p.monitoring.interval_seconds for p in plans.values())
    latest = max(window(p)[1] for p in plans.values())
    with connect(lab.kuma_login()) as session:
        version = str(session.version)
    print(f"Uptime Kuma {version}; site on {server} ({address}); {args.per_tier} monitors per tier, {args.runs} runs")
    samples: dict[str, list[float]] = {tier: [] for tier in TIERS}
    try:
        for n in range(args.per_tier):
            for tier in TIERS:
                client = f"alert{tier[0]}{n}"
                plan = plans[client]
                desired = desired_state(plan, lab_alerting(lab.alert_url), {plan.sites[0].id: address})
                with connect(lab.kuma_login()) as session:
                    sync(session, desired, report=None)
            if n + 1 < args.per_tier:
                time.sleep(longest / args.per_tier)
        wait(lab, plans, "up", 2 * longest + 60)
        for run in range(args.runs):
            done = lab.ssh(server, "systemctl stop nginx")
            stopped = time.time()
            assert done.returncode == 0, done.stderr
            try:
                got = first_down(lab, plans, stopped, latest + 120)
            finally:
                assert lab.ssh(server, "systemctl start nginx").returncode == 0
            for client, seconds in sorted(got.items()):
                samples[plans[client].client.tier].append(seconds)
            missing = sorted(set(plans) - set(got))
            print(f"run {run + 1}: " + ", ".join(f"{c} {s:.0f}s" for c, s in sorted(got.items())))
            if missing:
                print(f"run {run + 1}: no down alert from {', '.join(missing)}")
            if run + 1 < args.runs:
                wait(lab, plans, "up", 2 * longest + 60)
    finally:
        with connect(lab.kuma_login()) as session:
            for client in plans:
                sync(session, nothing_desired(client), report=None)
    print(f"\nSite down -> alert on Uptime Kuma {version} (seconds; lab site, nginx stopped)")
    print(f"{'tier':<10}{'samples':>8}{'median':>8}{'min':>7}{'max':>7}{'allowed':>12}{'alert_within':>14}")
    for tier in TIERS:
        plan = next(p for p in plans.values() if p.client.tier == tier)
        taken = samples[tier]
        low, high = window(plan)
        figures = (
            f"{statistics.median(taken):>8.0f}{min(taken):>7.0f}{max(taken):>7.0f}"
            if taken
            else f"{'-':>8}{'-':>7}{'-':>7}"
        )
        allowed = f"{low:.0f}-{high:.0f}"
        print(f"{tier:<10}{len(taken):>8}{figures}{allowed:>12}{plan.monitoring.alert_within_seconds:>14}")
        within = plan.monitoring.alert_within_seconds
        record(f"site down -> alert, {tier} tier, Kuma {version}", statistics.median(taken) if taken else math.nan,
               "s", goal=f"<= alert_within ({within} s)", met=bool(taken) and max(taken) <= within)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
