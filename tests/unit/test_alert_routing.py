"""Who hears of what: the CarePlan's alert routing, and `carestack plan` showing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.cli import main as carestack
from infra.plan import AlertRoute, CarePlan, build_plan
from infra.spec import ClientSpec, load_stack

STACKS = Path(__file__).resolve().parents[2] / "stacks"
# What tiers.yaml says each tier alerts the client by (monitoring.channels), written out here
# so that a plan that stopped following the catalog fails.
TIER_CHANNELS = {"bakery": ("email",), "studio": ("email", "sms", "webhook"), "shop": ("email", "sms", "webhook")}


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


@pytest.mark.parametrize("client", sorted(TIER_CHANNELS))
def test_site_alerts_reach_the_client_by_the_tiers_channels_and_job_heartbeats_only_the_agency(client: str) -> None:
    plan = plan_of(client)
    assert plan.alerts.site_checks == AlertRoute(client_channels=TIER_CHANNELS[client], agency=True)
    assert plan.alerts.job_heartbeats == AlertRoute(client_channels=(), agency=True)


def test_the_routing_survives_the_plans_json() -> None:
    plan = plan_of("studio")
    assert CarePlan.from_dict(plan.to_dict()).alerts == plan.alerts


def test_carestack_plan_shows_who_hears_of_what(capsys: pytest.CaptureFixture[str]) -> None:
    assert carestack(["plan", str(STACKS / "Pulumi.studio.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    site = next(line for line in lines if line.startswith("alerts: site down/up"))
    jobs = next(line for line in lines if line.startswith("alerts: job heartbeats"))
    assert site.endswith("the client's contacts by email, sms, webhook (plain words) and the agency's on-call")
    assert jobs.endswith("the agency's on-call only")
