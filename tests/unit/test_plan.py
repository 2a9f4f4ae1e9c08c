"""Every derived number of the CarePlan, from its formula and from the catalog it comes from."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from carestack_agent.config import parse as parse_agent_config

from infra import agent_config
from infra.cli import main as carestack
from infra.plan import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    NONCURRENT_MARGIN_DAYS,
    PUSH_SLACK_SECONDS,
    CarePlan,
    backup_schedule,
    build_plan,
    check_retries,
    check_timeout,
    downtime_budget_minutes,
    repository_stall_seconds,
    retention_days,
    sample_schedule,
)
from infra.plan_table import render
from infra.spec import ClientSpec, carestack_config, example_stacks, load_catalog, load_stack, merge, parse_stack
from infra.units import format_duration, parse_duration

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def client_specs() -> list[ClientSpec]:
    return [spec for spec in map(load_stack, example_stacks()) if isinstance(spec, ClientSpec)]


def plan_of(name: str) -> tuple[ClientSpec, CarePlan]:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return spec, build_plan(spec)


@pytest.mark.parametrize(
    ("target", "per_month", "per_year_hours"),
    [(99.9, 43.83, 8.77), (99.5, 219.15, 43.83), (99.95, 21.91, 4.38)],
)
def test_downtime_budget(target: float, per_month: float, per_year_hours: float) -> None:
    assert downtime_budget_minutes(target, DAYS_PER_MONTH) == per_month
    assert round(downtime_budget_minutes(target, DAYS_PER_YEAR) / 60, 2) == per_year_hours


def test_schedules_become_systemd_calendars() -> None:
    hourly = backup_schedule("hourly", ":15", "Europe/Berlin")
    assert (hourly.on_calendar, hourly.period_seconds) == ("*-*-* *:15:00 Europe/Berlin", 3600)
    assert hourly.randomized_delay_seconds == 180
    nightly = backup_schedule("daily", "02:30", "UTC")
    assert (nightly.on_calendar, nightly.period_seconds) == ("*-*-* 02:30:00 UTC", 86400)
    assert nightly.randomized_delay_seconds == 300


def raw_tier(spec: ClientSpec) -> dict[str, Any]:
    """The tier as written: the catalog's YAML (with `extends` applied) and the stack's overrides."""
    return merge(load_catalog().raw[spec.tier_name], spec.stack.overrides)


@pytest.mark.parametrize("name", ["studio", "shop", "bakery"])
def test_the_plan_table_shows_the_retention_agent_toml_carries(name: str) -> None:
    spec, plan = plan_of(name)
    fragment = tomllib.loads(agent_config.client_fragment(plan, "http://s3.example", {}))
    keep_row = next(line for line in render(plan).splitlines() if line.startswith("keep "))
    for site in plan.sites:
        retention = fragment["sites"][site.id]["retention"]
        written = {f"keep_{kind}": count for kind, count in raw_tier(spec)["backup"]["keep"].items()}
        assert {key: n for key, n in retention.items() if n} == {key: n for key, n in written.items() if n}
        assert keep_row.endswith(f"[agent.toml: {', '.join(f'{k} = {v}' for k, v in retention.items())}]")


def test_retention_horizon() -> None:
    hour, day = 3600, 86400
    assert retention_days({"hourly": 48, "daily": 0, "weekly": 0, "monthly": 0}, hour) == 2
    assert retention_days({"hourly": 24, "daily": 7, "weekly": 4, "monthly": 0}, hour) == 28
    assert retention_days({"hourly": 48, "daily": 30, "weekly": 0, "monthly": 12}, hour) == 372
    # `last` counts snapshots: as far back as that many backups reach.
    assert retention_days({"last": 72, "daily": 2}, hour) == 3
    assert retention_days({"last": 10, "daily": 7}, day) == 10
    assert retention_days({"daily": 7, "yearly": 2}, day) == 732


def test_keep_last_and_yearly_reach_agent_toml_and_the_agents_config() -> None:
    document = yaml.safe_load((STACKS / "Pulumi.bakery.yaml").read_text())
    document["config"]["carestack:overrides"] = {"backup": {"keep": {"last": 5, "yearly": 2}}}
    spec = parse_stack("Pulumi.bakery.yaml", carestack_config("Pulumi.bakery.yaml", document))
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    assert plan.storage.retention_days == 2 * 366
    fragment = agent_config.client_fragment(plan, "http://s3.example", {})
    config = parse_agent_config({"agent": agent_config.agent_table("shared-1")["agent"], **tomllib.loads(fragment)})
    site = config.site(plan.sites[0].id)
    # the agent reads them as its keep_last and keep_yearly (which it hands to restic's forget)
    assert (site.retention.keep_last, site.retention.keep_daily, site.retention.keep_yearly) == (5, 7, 2)
    assert "the last 5, 7 daily, 2 yearly  [agent.toml: keep_last = 5, keep_hourly = 0" in render(plan)


def test_retries_and_timeout() -> None:
    assert check_timeout(60) == 48
    assert check_timeout(30) == 24
    assert check_retries(interval=60, alert_within=300, timeout=48) == 3
    assert check_retries(interval=300, alert_within=900, timeout=48) == 1
    assert check_retries(interval=300, alert_within=300, timeout=48) == 0


def test_sampling_schedules_divide_the_day() -> None:
    assert sample_schedule(3600, ":05", "UTC").on_calendar == "*-*-* *:05:00 UTC"
    assert sample_schedule(4 * 3600, ":40", "UTC").on_calendar == "*-*-* 00/4:40:00 UTC"
    assert sample_schedule(86400, ":00", "UTC").on_calendar == "*-*-* 00:00:00 UTC"


@pytest.mark.parametrize("spec", client_specs(), ids=lambda s: s.tier_name)
def test_plan_follows_its_tier(spec: ClientSpec) -> None:
    """Each value against the tier as written in the catalog (and the stack's overrides), not the plan."""
    plan, raw = build_plan(spec), raw_tier(spec)
    backup, updates, monitoring, sla = raw["backup"], raw["updates"], raw["monitoring"], raw["sla"]
    assert plan.client.tier == spec.tier_name
    assert plan.client.tier_title == raw["title"]
    assert {k: n for k, n in plan.backup.keep.items() if n} == {k: n for k, n in backup["keep"].items() if n}
    assert plan.backup.rpo_minutes == {"hourly": 60, "daily": 24 * 60}[backup["every"]]
    assert plan.backup.timeout_seconds == parse_duration(backup["timeout"])
    # a restore moves a full backup back
    assert plan.backup.restore_timeout_seconds == parse_duration(backup["timeout"])
    assert plan.backup.check_read_data_subsets == backup["check"]["read_data_cycle"]
    assert plan.backup.prune.on_calendar.startswith(f"{backup['prune']['day']} *-*-* {backup['prune']['at']}:00 ")
    assert plan.storage.object_lock_days * 86400 == parse_duration(backup["object_lock"])
    assert plan.storage.retention_days == retention_days(backup["keep"], plan.backup.schedule.period_seconds)
    # Deleted versions outlive both the oldest kept snapshot and the lock.
    assert plan.storage.noncurrent_version_days == (
        max(plan.storage.retention_days, plan.storage.object_lock_days) + NONCURRENT_MARGIN_DAYS
    )
    assert plan.monitoring.interval_seconds == parse_duration(monitoring["interval"])
    assert plan.monitoring.alert_within_seconds == parse_duration(monitoring["alert_within"])
    assert list(plan.monitoring.channels) == monitoring["channels"]
    # Kuma alerts after the first failure and every retry: the promise holds.
    mon = plan.monitoring
    assert mon.interval_seconds * (mon.retries + 1) + mon.timeout_seconds <= mon.alert_within_seconds
    assert plan.sla.uptime_target_percent == sla["uptime_target"]
    assert plan.sla.downtime_budget_minutes_per_month == downtime_budget_minutes(sla["uptime_target"], DAYS_PER_MONTH)
    assert [s.name for s in plan.sla.severities] == list(sla["severities"])
    assert (plan.sla.failover is None) == (sla["failover"] is None)
    assert plan.updates.window.duration_minutes * 60 == parse_duration(updates["window"]["duration"])
    window = updates["window"]
    assert plan.updates.schedule.on_calendar.startswith(f"{window['day']} *-*-* {window['at']}:00")
    assert (plan.updates.apt_policy, plan.updates.wordpress_policy) == (updates["apt"], updates["wordpress"])
    assert plan.updates.rollback is updates["rollback"]
    assert plan.updates.probe_slowdown_limit == updates["probe_slowdown_limit"]
    assert plan.hosting.mode == raw["hosting"]["mode"]
    perf, sample = raw["performance"], raw["performance"]["sample"]
    hours = parse_duration(sample["every"]) // 3600
    assert plan.performance.sample.on_calendar.startswith(f"*-*-* 00/{hours}:{sample['at'][1:]}:00 ")
    assert plan.performance.sample.period_seconds == parse_duration(sample["every"])
    assert plan.performance.requests_per_page == sample["requests"]
    assert (plan.performance.limit_percent, plan.performance.floor_ms) == (perf["limit_percent"], perf["floor_ms"])
    assert plan.performance.keep_days * 86400 == parse_duration(perf["keep"])
    assert plan.performance.timeout_seconds == parse_duration(perf["timeout"])
    drill = raw["sla"]["restore_drill"]
    for site in plan.sites:
        on_server = ["backup", "prune", "check", "update", "scan", "perf"]
        assert [job.name for job in site.jobs] == on_server + (["drill"] if drill else [])
        assert [job.name for job in site.jobs if not job.on_standby] == on_server
        assert site.job("perf").schedule == plan.performance.sample
        if drill:  # on the standby, on the drill's schedule, its deadline the failover RTO it rehearses
            assert site.job("drill").on_standby and site.job("drill").schedule == plan.sla.restore_drill
            assert plan.sla.failover is not None
            assert site.job("drill").timeout_seconds == plan.sla.failover.rto_minutes * 60
        for job in site.jobs:
            assert job.push_interval_seconds == job.schedule.period_seconds + job.push_grace_seconds
            assert job.push_grace_seconds == (
                job.timeout_seconds + job.schedule.randomized_delay_seconds + PUSH_SLACK_SECONDS
            )
            assert job.schedule.on_calendar.endswith(f" {spec.stack.timezone}")
        assert site.job("backup").schedule == plan.backup.schedule
        assert site.job("update").timeout_seconds == parse_duration(updates["window"]["duration"])
        assert set(site.providers) <= set(updates["providers"])


def test_standard_client_with_override() -> None:
    spec, plan = plan_of("studio")
    # The stack overrides daily retention; the rest comes from the tier.
    assert plan.backup.keep["daily"] == spec.stack.overrides["backup"]["keep"]["daily"]
    assert plan.backup.keep["hourly"] == spec.tier.backup.keep.hourly
    assert plan.hosting.mode == "shared"
    assert plan.hosting.server == spec.stack.shared_host
    assert plan.sla.failover is not None
    assert plan.sla.failover.rto_minutes * 60 == parse_duration("3h")
    assert [s.name for s in plan.sla.severities] == ["critical", "high", "medium", "low"]
    web, plans = plan.sites
    assert (web.id, web.linux_user, web.database, web.root) == (
        "studio-web",
        "studio-web",
        "studio_web",
        "/srv/www/studio-web",
    )
    assert web.providers == ("apt", "wordpress")
    assert plans.providers == ("apt", "release")
    assert plans.repository_path == f"{plan.storage.bucket}/studio-plans"
    assert [c.url for c in web.checks] == ["https://www.studio.example/", "https://www.studio.example/projects/"]


def test_premium_client_is_dedicated_with_object_lock() -> None:
    spec, plan = plan_of("shop")
    assert plan.hosting.mode == "dedicated"
    assert plan.hosting.server == "shop-1"
    assert plan.hosting.instance_type == spec.tier.hosting.instance_type
    assert plan.storage.object_lock_days > 0
    assert plan.sla.restore_drill is not None
    assert plan.sla.restore_drill.on_calendar == "*-*-01 05:00:00 Europe/Berlin"


def test_basic_client_has_no_failover_or_lock() -> None:
    _, plan = plan_of("bakery")
    assert plan.storage.object_lock_days == 0
    assert plan.sla.failover is None
    assert plan.sla.restore_drill is None
    assert plan.sites[0].id == "bakery-bakery"


def test_cli_plan_json_is_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert carestack(["plan", str(STACKS / "Pulumi.shop.yaml"), "--json"]) == 0
    _, plan = plan_of("shop")
    assert json.loads(capsys.readouterr().out) == plan.to_dict()


def test_cli_plan_table_and_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert carestack(["plan", str(STACKS / "Pulumi.studio.yaml")]) == 0
    table = capsys.readouterr().out
    assert "99.9 % = 43.83 min/month, 8.77 h/year of downtime" in table
    assert carestack(["validate", *map(str, example_stacks())]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(example_stacks())


def test_repository_stall_limit_follows_the_backup_period() -> None:
    assert repository_stall_seconds(3600) == 60  # hourly: a 60th of the period
    assert repository_stall_seconds(600) == 60  # never under a minute
    assert repository_stall_seconds(86400) == 300  # daily: capped, a silent hang is worth an alert by then
    _, studio = plan_of("studio")  # standard: hourly backups
    _, bakery = plan_of("bakery")  # basic: daily backups
    assert (studio.backup.stall_seconds, bakery.backup.stall_seconds) == (60, 300)
    for spec in client_specs():
        plan = build_plan(spec)
        assert plan.backup.stall_seconds < plan.backup.timeout_seconds  # a stall fails the job before its deadline


def test_cli_plan_shows_the_repository_stall_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert carestack(["plan", str(STACKS / "Pulumi.studio.yaml")]) == 0
    assert "a job whose repository makes no progress for 1m fails" in capsys.readouterr().out


def test_cli_reports_errors_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text((STACKS / "Pulumi.bakery.yaml").read_text().replace("tier: basic", "tier: gold"))
    assert carestack(["validate", str(bad)]) == 1
    assert "carestack:tier: unknown tier 'gold'" in capsys.readouterr().err
    assert carestack(["plan", str(STACKS / "Pulumi.platform.yaml")]) == 2


def test_cli_plan_shows_the_performance_trend_and_its_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert carestack(["plan", str(STACKS / "Pulumi.studio.yaml")]) == 0
    table = capsys.readouterr().out
    _, plan = plan_of("studio")
    perf = plan.performance
    delay, timeout = format_duration(perf.sample.randomized_delay_seconds), format_duration(perf.timeout_seconds)
    assert (
        f"pages timed {perf.sample.on_calendar} (+ up to {delay}), {perf.requests_per_page} request(s) each, "
        f"timeout {timeout}; a page slower by {perf.limit_percent:g} % and {perf.floor_ms} ms (last week's "
        f"median vs the {perf.baseline_weeks} weeks before) alerts; samples kept {perf.keep_days} d"
    ) in table
    interval = format_duration(plan.sites[0].job("perf").push_interval_seconds)
    assert f"  job perf              push expected every {interval}" in table
