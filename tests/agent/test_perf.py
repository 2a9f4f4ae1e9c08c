"""The performance trend's pieces on synthetic histories: the weekly verdict (stable weeks raise nothing,
a 300 ms slowdown of one page names that page, too little history says so), the history file (root-only,
pruned to retention, unreadable lines dropped and counted), and the job when no page answers. The samples
of a real site are taken on the lab (tests/lab/test_perf.py)."""

from __future__ import annotations

import random
import socket
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from carestack_agent import config as agent_config
from carestack_agent import exitcodes
from carestack_agent.actions import perf as perf_action
from carestack_agent.jobs import JobFailed
from carestack_agent.perf import history
from carestack_agent.perf.history import Sample
from carestack_agent.perf.verdict import judge
from carestack_agent.probe import Page
from carestack_agent.proc import Deadline

from infra.agent_config import dumps

from .conftest import PLAN_JOBS, PLAN_PERF, PLAN_RETENTION, PLAN_UPDATES, PushRecorder, write_secret

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
PAGES = ("/", "/shop/", "/checkout/")
TYPICAL_MS = {"/": 120.0, "/shop/": 250.0, "/checkout/": 400.0}


def samples_over(days: int, *, slower: dict[str, float] | None = None, slow_days: int = 7, seed: int = 7,
                 every_hours: int = 4, requests: int = 3) -> list[Sample]:  # fmt: skip
    """A history of `days` sampled like the plan's timer (every 4 h, 3 requests a page), with +-15 %
    jitter and an occasional cold request 3x as slow; `slower` adds ms to pages over the last `slow_days`."""
    rnd = random.Random(seed)
    out = []
    at = NOW - timedelta(days=days)
    while at <= NOW:
        for _ in range(requests):
            for path in PAGES:
                ms = TYPICAL_MS[path] * rnd.uniform(0.85, 1.15) * (3 if rnd.random() < 0.05 else 1)
                if slower and path in slower and at > NOW - timedelta(days=slow_days):
                    ms += slower[path]
                out.append(Sample(at, path, 200, ms * 0.9, ms, 30_000))
        at += timedelta(hours=every_hours)
    return out


def verdict_of(samples: list[Sample]):  # type: ignore[no-untyped-def]
    return judge(samples, PAGES, NOW, limit_percent=20, floor_ms=100, baseline_weeks=4)


def test_a_site_stable_over_five_weeks_raises_nothing() -> None:
    for seed in range(5):  # several jittered histories, each with its cold requests
        verdict = verdict_of(samples_over(35, seed=seed))
        assert not verdict.building and verdict.weeks_of_baseline == 4
        assert verdict.regressions == []
        assert all(p.week_samples and p.baseline_samples for p in verdict.pages)
    assert perf_action.describe("www.example.org", verdict).startswith("3 page(s) stable, slowest")


def test_a_300_ms_slowdown_of_one_page_names_that_page_and_both_medians() -> None:
    verdict = verdict_of(samples_over(35, slower={"/shop/": 300}))
    assert [p.path for p in verdict.regressions] == ["/shop/"]
    shop = verdict.regressions[0]
    assert shop.baseline_ms is not None and shop.week_ms is not None
    assert 230 < shop.baseline_ms < 270 and 530 < shop.week_ms < 570
    text = perf_action.describe("www.example.org", verdict)
    assert text.startswith("www.example.org/shop/ got slower: median ")
    assert f"{shop.week_ms:.0f} ms over the last 7 days vs {shop.baseline_ms:.0f} ms over the 4 weeks before" in text


def test_a_regression_needs_both_the_percentage_and_the_floor() -> None:
    # +60 ms on a 120 ms page is +50 %, but under the 100 ms floor
    assert verdict_of(samples_over(35, slower={"/": 60})).regressions == []
    # +150 ms on the 400 ms checkout is over the floor but +37 %: a regression at 20 %, not at a 50 % limit
    slow_checkout = samples_over(35, slower={"/checkout/": 150})
    assert judge(slow_checkout, PAGES, NOW, limit_percent=50, floor_ms=100, baseline_weeks=4).regressions == []
    assert [p.path for p in verdict_of(samples_over(35, slower={"/checkout/": 150})).regressions] == ["/checkout/"]


def test_a_slowdown_of_a_day_or_two_does_not_move_the_weeks_median() -> None:
    assert verdict_of(samples_over(35, slower={"/shop/": 300}, slow_days=2)).regressions == []


def test_too_little_history_says_how_many_weeks_the_baseline_has_and_raises_nothing() -> None:
    for days, weeks in ((3, 0), (10, 1), (24, 3)):
        verdict = verdict_of(samples_over(days, slower={"/shop/": 300}, slow_days=3))
        assert verdict.building and verdict.weeks_of_baseline == weeks
        assert verdict.regressions == []
        assert perf_action.describe("www.example.org", verdict) == f"baseline building: {weeks} of 4 weeks"


def test_failed_requests_count_neither_way() -> None:
    samples = samples_over(35) + [
        Sample(NOW - timedelta(hours=h), "/shop/", None, None, None, 0, "no answer (timed out)") for h in range(30)
    ]
    assert verdict_of(samples).regressions == []


def test_the_history_is_root_only_pruned_to_retention_and_survives_unreadable_lines(tmp_path: Path) -> None:
    path = history.history_file(tmp_path / "state", "s-www")
    samples = samples_over(40)
    history.save(path, history.pruned(samples, NOW, 35))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = history.load(path)
    assert loaded.unreadable == 0
    assert loaded.samples == history.pruned(samples, NOW, 35)  # every field survives the round trip
    assert loaded.samples[0].at >= NOW - timedelta(days=35) > samples[0].at
    with open(path, "a") as f:
        f.write('{"at": "yesterday", "path": "/"}\nnot json\n')
        f.write('{"at": "2026-11-30T00:00:00Z", "path": "/", "total_ms": -1}\n')
    again = history.load(path)
    assert again.unreadable == 3 and len(again.samples) == len(loaded.samples)


def test_sampling_stops_at_the_jobs_deadline() -> None:
    page = Page("s-www", "www.example.org", "/", "Welcome", 200)
    with pytest.raises(JobFailed) as e:
        perf_action.take_samples([page], 3, 10.0, Deadline(0))
    assert e.value.exit_code == exitcodes.TIMEOUT
    assert e.value.message == "the job's deadline of 0 s passed while timing the pages"


def write_config(tmp_path: Path, push: PushRecorder, checks: list[dict[str, object]]) -> Path:
    secrets = tmp_path / "secrets"
    write_secret(secrets / "pw", "unused\n")
    write_secret(secrets / "push.env", "PERF=tok-perf-555\n")
    site = {
        "domain": "www.example.org", "kind": "php", "root": str(tmp_path / "root"), "paths": [str(tmp_path)],
        "repository": str(tmp_path / "repo"), "password_file": str(secrets / "pw"), "exclude": [],
        "push_base_url": push.base_url, "push_tokens_file": str(secrets / "push.env"),
        "retention": PLAN_RETENTION | {"keep_daily": 7}, "jobs": PLAN_JOBS, "updates": PLAN_UPDATES,
        "perf": PLAN_PERF | {"requests_per_page": 1}, "checks": checks,
    }  # fmt: skip
    agent = {"host": "test-host", "state_dir": str(tmp_path / "state"), "probe_timeout_seconds": 2}
    (tmp_path / "agent.toml").write_text(dumps({"agent": agent, "sites": {"s-www": site}}))
    return tmp_path / "agent.toml"


def test_a_site_without_checked_pages_fails_rather_than_reporting_stable(tmp_path: Path) -> None:
    push = PushRecorder()
    try:
        result = perf_action.perf(agent_config.load(write_config(tmp_path, push, [])), "s-www")
        assert (result.ok, result.message) == (False, "the site has no checked pages to time")
        assert len(push.requests) == 1 and push.requests[0].startswith("/api/push/tok-perf-555?status=down")
    finally:
        push.close()


def _nothing_listens_on_port_80() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 80)) != 0


@pytest.mark.skipif(not _nothing_listens_on_port_80(), reason="a web server listens on 127.0.0.1:80 here")
def test_a_sample_that_times_no_page_fails_and_pushes_the_perf_monitor_down(tmp_path: Path) -> None:
    push = PushRecorder()
    try:
        config = write_config(tmp_path, push, [{"path": "/", "keyword": "Welcome", "status": 200}])
        result = perf_action.perf(agent_config.load(config), "s-www")
        assert (result.ok, result.exit_code) == (False, exitcodes.FAILED)
        assert result.message.startswith("no page could be timed: www.example.org/: no answer (")
        assert len(push.requests) == 1 and push.requests[0].startswith("/api/push/tok-perf-555?status=down")
        kept = history.load(history.history_file(tmp_path / "state", "s-www")).samples
        assert len(kept) == 1 and kept[0].error is not None  # the failure is in the history, never counted
    finally:
        push.close()
