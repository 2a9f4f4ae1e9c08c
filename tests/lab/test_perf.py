"""The performance trend on a real lab server: four weeks of history seeded from real samples of the
unchanged site, then a must-use plugin that sleeps 300 ms on one checked page. `perf` must name that
page and turn the site's PERF push monitor down; with the plugin gone and the week's samples fast again,
the monitor comes back up.

The history is seeded from the site's own samples: `perf` runs against the unchanged site, then the test
copies those runs' lines back by one to four weeks in the agent's history file (its documented format,
perf/history.py), as if the timer had run for five weeks. Nothing in the agent is faked."""

from __future__ import annotations

import json
import shlex
import time
from datetime import UTC, datetime, timedelta

import pytest

from infra.kuma_client import KumaLogin, connect
from infra.monitors.states import monitor_states
from infra.plan import SitePlan
from lab.state import LabState

pytestmark = pytest.mark.lab

SLEEP_PLUGIN = "carestack-test-slow-page.php"


def site_with_two_pages(lab: LabState) -> tuple[str, SitePlan]:
    for client in lab.clients:
        for site in lab.plan(client.id).sites:
            if site.kind in ("wordpress", "woocommerce") and len(site.checks) >= 2:
                return client.server, site
    pytest.skip("no WordPress site with two checked pages in the lab")


def perf(lab: LabState, server: str, site: SitePlan) -> tuple[int, str]:
    run = lab.ssh(server, f"carestack-agent perf {shlex.quote(site.id)}")
    return run.returncode, run.stdout + run.stderr


def perf_monitor(lab: LabState, site: SitePlan) -> str:
    assert lab.kuma_url and lab.kuma_credentials_file
    saved = json.loads(lab.kuma_credentials_file.read_text())
    with connect(KumaLogin(lab.kuma_url, saved["username"], saved["password"]), timeout=30) as session:
        for client in lab.clients:
            for name, state in monitor_states(session, client.id).items():
                if name.startswith(site.id) and name.endswith("perf job"):
                    return state
    raise AssertionError(f"no perf monitor for {site.id}")


def wait_for_monitor(lab: LabState, site: SitePlan, state: str) -> str:
    deadline = time.monotonic() + 30
    while (seen := perf_monitor(lab, site)) != state and time.monotonic() < deadline:
        time.sleep(2)
    return seen


def read_history(lab: LabState, server: str, site: SitePlan) -> list[dict[str, object]]:
    text = lab.ssh(server, f"cat /var/lib/carestack/perf/{site.id}.jsonl").stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_history(lab: LabState, server: str, site: SitePlan, samples: list[dict[str, object]]) -> None:
    body = "".join(json.dumps(s, sort_keys=True) + "\n" for s in samples)
    path = f"/var/lib/carestack/perf/{site.id}.jsonl"
    write = lab.ssh(server, f"umask 077 && printf %s {shlex.quote(body)} > {path}")
    assert write.returncode == 0, write.stderr


def at(sample: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(sample["at"]).replace("Z", "+00:00"))


def timed_perf(lab: LabState, server: str, site: SitePlan) -> tuple[int, str, tuple[datetime, datetime]]:
    """One run, and the window its samples fall in (lab servers share this machine's clock)."""
    started = datetime.now(UTC) - timedelta(seconds=1)
    code, out = perf(lab, server, site)
    return code, out, (started, datetime.now(UTC) + timedelta(seconds=1))


def move_to_baseline(lab: LabState, server: str, site: SitePlan, windows: list[tuple[datetime, datetime]]) -> None:
    """The samples of these runs move into each of the 4 weeks before the last 7 days (a day clear of
    the week's edge), as if the timer had taken them then."""
    kept, moved = [], []
    for sample in read_history(lab, server, site):
        if any(start <= at(sample) <= end for start, end in windows):
            for weeks in (1, 2, 3, 4):
                when = at(sample) - timedelta(weeks=weeks, days=1)
                moved.append({**sample, "at": when.isoformat(timespec="seconds").replace("+00:00", "Z")})
        else:
            kept.append(sample)
    assert moved, "no samples in the runs' windows"
    write_history(lab, server, site, moved + kept)


def drop_last_week(lab: LabState, server: str, site: SitePlan) -> None:
    since = datetime.now(UTC) - timedelta(days=6)
    write_history(lab, server, site, [s for s in read_history(lab, server, site) if at(s) < since])


def test_a_page_that_got_300_ms_slower_is_named_and_the_perf_monitor_goes_down(lab: LabState) -> None:
    """The baseline's runs and the judged runs alternate: the lab shares a busy machine, whose load moves
    every page's time; alternating runs see the same load, so only the plugin's sleep tells them apart."""
    server, site = site_with_two_pages(lab)
    slow, fast = site.checks[1].path, site.checks[0].path
    history = f"/var/lib/carestack/perf/{site.id}.jsonl"
    assert lab.ssh(server, f"rm -f {history}").returncode == 0
    timers = lab.ssh(server, f"systemctl list-timers --all --no-pager carestack-perf@{site.id}.timer").stdout
    assert f"carestack-perf@{site.id}.timer" in timers
    code, out = perf(lab, server, site)
    assert code == 0 and "baseline building: 0 of 4 weeks" in out, out
    # The unchanged site against its own history: nothing raised.
    baseline = []
    for _ in range(3):
        baseline.append(timed_perf(lab, server, site)[2])
        assert perf(lab, server, site)[0] == 0
    move_to_baseline(lab, server, site, baseline)
    code, out = perf(lab, server, site)
    assert code == 0 and "stable" in out, out
    # One page 300 ms slower, judged against runs of the unchanged site taken in between.
    drop_last_week(lab, server, site)
    mu = f"{site.root}/wp-content/mu-plugins"
    plugin = (
        "<?php\n// carestack lab test: one checked page 300 ms slower\n"
        f"if (strpos($_SERVER['REQUEST_URI'] ?? '', {json.dumps(slow)}) === 0) {{ usleep(300000); }}\n"
    )
    plant = f"mkdir -p {mu} && printf %s {shlex.quote(plugin)} > {mu}/{SLEEP_PLUGIN}"
    remove = f"rm -f {mu}/{SLEEP_PLUGIN}"
    try:
        baseline = []
        for _ in range(3):
            assert lab.ssh(server, plant).returncode == 0
            perf(lab, server, site)
            assert lab.ssh(server, remove).returncode == 0
            baseline.append(timed_perf(lab, server, site)[2])
        move_to_baseline(lab, server, site, baseline)
        assert lab.ssh(server, plant).returncode == 0
        code, out = perf(lab, server, site)
        assert code == 1, out
        assert f"{site.domain}{slow} got slower" in out and f"{site.domain}{fast} " not in out, out
        assert wait_for_monitor(lab, site, "down") == "down"
    finally:
        assert lab.ssh(server, remove).returncode == 0
    # Fast again: the last week's samples are the unchanged site's, and the monitor comes back up.
    drop_last_week(lab, server, site)
    for _ in range(2):
        code, out = perf(lab, server, site)
    assert code == 0 and "stable" in out, out
    assert wait_for_monitor(lab, site, "up") == "up"
    assert lab.ssh(server, f"rm -f {history}").returncode == 0
