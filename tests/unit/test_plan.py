"""Every derived number of the CarePlan, from its formula and from the catalog it comes from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    forget_args,
    retention_days,
)
from infra.spec import ClientSpec, example_stacks, load_stack
from infra.units import parse_duration

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


def test_forget_args_skip_kinds_not_kept() -> None:
    keep = {"hourly": 24, "daily": 7, "weekly": 4, "monthly": 0}
    assert forget_args(keep) == ("--keep-hourly", "24", "--keep-daily", "7", "--keep-weekly", "4")


def test_retention_horizon() -> None:
    assert retention_days({"hourly": 48, "daily": 0, "weekly": 0, "monthly": 0}) == 2
    assert retention_days({"hourly": 24, "daily": 7, "weekly": 4, "monthly": 0}) == 28
    assert retention_days({"hourly": 48, "daily": 30, "weekly": 0, "monthly": 12}) == 372


def test_retries_and_timeout() -> None:
    assert check_timeout(60) == 48
    assert check_timeout(30) == 24
    assert check_retries(interval=60, alert_within=300, timeout=48) == 3
    assert check_retries(interval=300, alert_within=900, timeout=48) == 1
    assert check_retries(interval=300, alert_within=300, timeout=48) == 0


@pytest.mark.parametrize("spec", client_specs(), ids=lambda s: s.tier_name)
def test_plan_follows_its_tier(spec: ClientSpec) -> None:
    plan, tier = build_plan(spec), spec.tier
    assert plan.client.tier == spec.tier_name
    assert plan.backup.keep == tier.backup.keep.model_dump()
    assert plan.backup.forget_args == forget_args(plan.backup.keep)
    assert plan.backup.rpo_minutes * 60 == plan.backup.schedule.period_seconds
    assert plan.backup.timeout_seconds == tier.backup.timeout
    assert plan.backup.restore_timeout_seconds == tier.backup.timeout  # a restore moves a full backup back
    assert plan.backup.check_read_data_subsets == tier.backup.check.read_data_cycle
    assert plan.storage.object_lock_days * 86400 == tier.backup.object_lock
    assert plan.storage.retention_days == retention_days(plan.backup.keep)
    # Deleted versions outlive both the oldest kept snapshot and the lock.
    assert plan.storage.noncurrent_version_days == (
        max(plan.storage.retention_days, plan.storage.object_lock_days) + NONCURRENT_MARGIN_DAYS
    )
    assert plan.monitoring.interval_seconds == tier.monitoring.interval
    # Kuma alerts after the first failure and every retry: the promise holds.
    mon = plan.monitoring
    assert mon.interval_seconds * (mon.retries + 1) + mon.timeout_seconds <= mon.alert_within_seconds
    assert plan.sla.uptime_target_percent == tier.sla.uptime_target
    assert plan.sla.downtime_budget_minutes_per_month == downtime_budget_minutes(tier.sla.uptime_target, DAYS_PER_MONTH)
    assert plan.updates.window.duration_minutes * 60 == tier.updates.window.duration
    assert plan.updates.schedule.on_calendar.startswith(f"{tier.updates.window.day} *-*-* {tier.updates.window.at}:00")
    assert plan.hosting.mode == tier.hosting.mode
    for site in plan.sites:
        assert [job.name for job in site.jobs] == ["backup", "prune", "check", "update"]
        for job in site.jobs:
            assert job.push_interval_seconds == job.schedule.period_seconds + job.push_grace_seconds
            assert job.push_grace_seconds == (
                job.timeout_seconds + job.schedule.randomized_delay_seconds + PUSH_SLACK_SECONDS
            )
            assert job.schedule.on_calendar.endswith(f" {spec.stack.timezone}")
        assert site.job("backup").schedule == plan.backup.schedule
        assert site.job("update").timeout_seconds == plan.updates.timeout_seconds


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


def test_cli_reports_errors_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text((STACKS / "Pulumi.bakery.yaml").read_text().replace("tier: basic", "tier: gold"))
    assert carestack(["validate", str(bad)]) == 1
    assert "carestack:tier: unknown tier 'gold'" in capsys.readouterr().err
    assert carestack(["plan", str(STACKS / "Pulumi.platform.yaml")]) == 2
