"""The tier's credit table and time bank and the client's fee: validated, carried by the plan, shown by `plan`."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.plan import build_plan
from infra.sla_terms import credit_for, month_credit
from infra.spec import ClientSpec, SpecError, carestack_config, load_catalog, load_stack, parse_stack

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "infra" / "catalog" / "tiers.yaml"
STACKS = ROOT / "stacks"


def client(name: str) -> ClientSpec:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return spec


def config_of(name: str) -> dict[str, Any]:
    path = STACKS / f"Pulumi.{name}.yaml"
    return carestack_config(str(path), yaml.safe_load(path.read_text()))


def catalog_problems(tmp_path: Path, change: Any) -> list[str]:
    data = yaml.safe_load(CATALOG.read_text())
    change(data["tiers"])
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    return caught.value.problems


def stack_problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_stack("Pulumi.test.yaml", config)
    return caught.value.problems


def test_every_tier_has_credits_and_a_time_bank() -> None:
    tiers = load_catalog().tiers
    assert tiers["basic"].sla.credits.cap == 50
    # lists replace: standard's bands are its own, the claim rule is inherited from basic.
    assert [b.below for b in tiers["standard"].sla.credits.bands] == [99.9, 99.0, 95.0]
    assert tiers["premium"].sla.credits.claim == tiers["basic"].sla.credits.claim == "next_invoice"
    assert tiers["basic"].sla.time_bank.rollover_months == 0
    assert tiers["premium"].sla.time_bank.per_month == 8 * 3600


def test_plan_carries_credits_with_amounts_from_the_fee() -> None:
    plan = build_plan(client("studio"))
    credits = plan.sla.credits
    assert plan.sla.fee is not None and (plan.sla.fee.monthly, plan.sla.fee.currency) == (180.0, "EUR")
    assert [(b.below_percent, b.credit_percent, b.credit_amount) for b in credits.bands] == [
        (99.9, 10.0, 18.0),
        (99.0, 25.0, 45.0),
        (95.0, 100.0, 180.0),
    ]
    assert (credits.cap_percent, credits.cap_amount, credits.currency) == (100.0, 180.0, "EUR")
    assert (plan.sla.time_bank.included_minutes_per_month, plan.sla.time_bank.rollover_months) == (240, 1)


def test_without_a_fee_credits_are_percentages_only() -> None:
    plan = build_plan(client("bakery"))
    assert plan.sla.fee is None
    assert plan.sla.credits.currency is None and plan.sla.credits.cap_amount is None
    assert all(band.credit_amount is None for band in plan.sla.credits.bands)
    assert credit_for(plan.sla.credits, 98.0).percent == 25.0
    assert credit_for(plan.sla.credits, 98.0).amount is None


@pytest.mark.parametrize(
    ("uptime", "percent", "amount"),
    [(100.0, 0.0, 0.0), (99.95, 0.0, 0.0), (99.94, 10.0, 65.0), (99.5, 10.0, 65.0), (99.49, 25.0, 162.5),
     (98.99, 50.0, 325.0), (94.0, 100.0, 650.0)],
)  # fmt: skip
def test_credit_for_uptime_takes_the_lowest_band_reached(uptime: float, percent: float, amount: float) -> None:
    credit = credit_for(build_plan(client("shop")).sla.credits, uptime)
    assert (credit.percent, credit.amount) == (percent, amount)


def test_a_months_credits_add_up_to_the_cap() -> None:
    credits = build_plan(client("studio")).sla.credits  # cap 100 % = 180 EUR
    two_sites = [credit_for(credits, 98.0), credit_for(credits, 99.95)]
    assert (month_credit(credits, two_sites).percent, month_credit(credits, two_sites).amount) == (25.0, 45.0)
    both_down = [credit_for(credits, 90.0), credit_for(credits, 98.0)]
    total = month_credit(credits, both_down)
    assert (total.percent, total.amount) == (100.0, 180.0)
    assert total.band is not None and total.band.below_percent == 95.0
    assert month_credit(credits, []).percent == 0.0 and month_credit(credits, []).band is None

    basic = build_plan(client("bakery")).sla.credits  # no fee: percentages only, cap 50 %
    total = month_credit(basic, [credit_for(basic, 99.2), credit_for(basic, 98.0)])
    assert (total.percent, total.amount) == (35.0, None)
    total = month_credit(basic, [credit_for(basic, 90.0), credit_for(basic, 98.0)])
    assert (total.percent, total.amount) == (50.0, None)


def test_credit_table_must_start_at_or_below_the_target(tmp_path: Path) -> None:
    def change(tiers: dict[str, Any]) -> None:
        tiers["standard"]["sla"]["credits"]["bands"][0]["below"] = 99.95

    problems = catalog_problems(tmp_path, change)
    assert problems == [
        "tiers.standard.sla.credits.bands[0].below: 99.95 is above the uptime target 99.9, so a month that met "
        "the target would owe a credit; start at or below the target"
    ]


def test_credit_bands_go_down_in_uptime_and_up_in_credit(tmp_path: Path) -> None:
    def change(tiers: dict[str, Any]) -> None:
        tiers["premium"]["sla"]["credits"]["bands"][2] = {"below": 99.6, "percent": 20}

    problems = catalog_problems(tmp_path, change)
    assert "tiers.premium.sla.credits.bands[2].below: 99.6 is not below the previous band's 99.5; " in problems[0]
    assert problems[1].startswith("tiers.premium.sla.credits.bands[2].percent: 20.0 is not more than")


def test_credit_band_above_the_cap(tmp_path: Path) -> None:
    def change(tiers: dict[str, Any]) -> None:
        tiers["basic"]["sla"]["credits"]["cap"] = 30

    problems = catalog_problems(tmp_path, change)
    assert problems == [
        "tiers.basic.sla.credits.bands[2].percent: 50.0 is above the cap 30.0; raise the cap or lower the band"
    ]


def test_credit_and_time_bank_typos_are_named(tmp_path: Path) -> None:
    def change(tiers: dict[str, Any]) -> None:
        tiers["basic"]["sla"]["credits"]["claim"] = "next_month"
        tiers["basic"]["sla"]["time_bank"]["rollover"] = tiers["basic"]["sla"]["time_bank"].pop("rollover_months")

    problems = catalog_problems(tmp_path, change)
    assert "tiers.basic.sla.credits.claim: Input should be 'next_invoice' or 'on_request'" in problems
    assert any(
        p.startswith("tiers.basic.sla.time_bank.rollover: unknown key; did you mean 'rollover_months'?")
        for p in problems
    )
    assert "tiers.basic.sla.time_bank.rollover_months: is required" in problems


def test_fee_errors_are_named() -> None:
    config = config_of("studio")
    config["fee"] = {"monthy": 180, "currency": "euro"}
    problems = stack_problems(config)
    assert "carestack:fee.monthly: is required" in problems
    assert any(p.startswith("carestack:fee.monthy: unknown key; did you mean 'monthly'?") for p in problems)
    assert "carestack:fee.currency: expected an ISO 4217 currency code such as EUR or USD, got 'euro'" in problems


def test_override_of_a_credit_band_is_checked_against_the_target() -> None:
    config = copy.deepcopy(config_of("studio"))
    config["overrides"] = {"sla": {"uptime_target": 99.5}}
    problems = stack_problems(config)
    assert problems == [
        "carestack:overrides: with tier standard and these overrides, sla.credits.bands[0].below: 99.9 is above "
        "the uptime target 99.5, so a month that met the target would owe a credit; start at or below the target"
    ]


def test_plan_table_shows_the_terms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(STACKS / "Pulumi.studio.yaml")]) == 0
    out = capsys.readouterr().out
    assert "time bank" in out and "4h of support a month, unused time kept 1 month(s)" in out
    assert "fee" in out and "180.00 EUR a month" in out
    assert re.search(r"^credit below 99\.0 % +25\.0 % of the monthly fee = 45\.00 EUR$", out, re.M)
    assert (
        "credit cap" in out and "100.0 % of the monthly fee = 180.00 EUR; credits deducted from the next invoice" in out
    )
