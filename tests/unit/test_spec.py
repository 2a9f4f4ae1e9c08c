"""The spec's error messages name the exact key and say what would be valid."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.spec import (
    ClientSpec,
    PlatformSpec,
    SpecError,
    carestack_config,
    example_stacks,
    load_catalog,
    load_stack,
    merge,
    parse_stack,
)

STUDIO = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.studio.yaml"


def studio_config() -> dict[str, Any]:
    return carestack_config(str(STUDIO), yaml.safe_load(STUDIO.read_text()))


def problems_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_stack("Pulumi.test.yaml", config)
    return caught.value.problems


def test_every_example_stack_is_valid() -> None:
    specs = [load_stack(path) for path in example_stacks()]
    assert isinstance(specs[0], PlatformSpec)
    tiers = sorted(spec.tier_name for spec in specs if isinstance(spec, ClientSpec))
    assert tiers == ["basic", "premium", "standard"]


def test_tiers_inherit_and_replace() -> None:
    catalog = load_catalog()
    raw = catalog.raw
    # standard states no update window of its own: it comes from basic.
    assert catalog.tiers["standard"].updates == catalog.tiers["basic"].updates
    # a severity set to null in a child tier is gone, not merged.
    assert "normal" in catalog.tiers["basic"].sla.severities
    assert "normal" not in catalog.tiers["standard"].sla.severities
    assert raw["premium"]["hosting"]["mode"] == "dedicated"
    assert catalog.tiers["premium"].backup.every == catalog.tiers["standard"].backup.every


def test_merge_removes_null_keys_and_replaces_lists() -> None:
    assert merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": None}, "l": [2]}) == {"a": {"b": 1}, "l": [2]}


def test_nested_error_names_the_exact_path() -> None:
    config = studio_config()
    del config["sites"][1]["checks"][0]["keyword"]
    assert problems_of(config) == ["carestack:sites[1].checks[0].keyword: is required"]


def test_misspelt_key_gets_did_you_mean() -> None:
    config = studio_config()
    config["sites"][0]["checks"][0]["keywrd"] = config["sites"][0]["checks"][0].pop("keyword")
    [missing, unknown] = sorted(problems_of(config))
    assert missing == "carestack:sites[0].checks[0].keyword: is required"
    assert unknown.startswith("carestack:sites[0].checks[0].keywrd: unknown key; did you mean 'keyword'?")


def test_misspelt_top_level_key() -> None:
    config = studio_config()
    config["contact"] = config.pop("contacts")
    assert any("carestack:contact: unknown key; did you mean 'contacts'?" in p for p in problems_of(config))


def test_unknown_tier_lists_the_tiers() -> None:
    config = studio_config()
    config["tier"] = "gold"
    [problem] = problems_of(config)
    assert problem == "carestack:tier: unknown tier 'gold' (tiers: basic, standard, premium)"


def test_all_errors_at_once() -> None:
    config = studio_config()
    config["sites"][0]["domain"] = "not a domain"
    config["sites"][1]["kind"] = "joomla"
    config["timezone"] = "Mars/Olympus"
    problems = problems_of(config)
    assert len(problems) == 3
    assert any(p.startswith("carestack:sites[0].domain: expected a domain name") for p in problems)
    assert any(p.startswith("carestack:sites[1].kind: Input should be 'wordpress'") for p in problems)
    assert any(p.startswith("carestack:timezone: expected an IANA time zone") for p in problems)


def test_empty_lists_name_the_key_and_what_an_entry_is() -> None:
    config = studio_config()
    config["sites"] = []
    config["overrides"] = {"monitoring": {"channels": []}}
    assert sorted(problems_of(config)) == [
        "carestack:overrides.monitoring.channels: needs at least 1 entry, got none; entries from: email, sms, webhook",
        "carestack:sites: needs at least 1 entry, got none; each entry a mapping with keys: domain, aliases, dns, "
        "name, kind, https, checks",
    ]


def test_keep_last_and_yearly_are_retention_policies() -> None:
    config = studio_config()
    config["overrides"] = {"backup": {"keep": {"last": 10, "hourly": 0, "daily": 0, "weekly": 0, "yearly": 3}}}
    spec = parse_stack("Pulumi.test.yaml", config)
    assert isinstance(spec, ClientSpec)
    assert (spec.tier.backup.keep.last, spec.tier.backup.keep.yearly) == (10, 3)
    config["overrides"] = {"backup": {"keep": {"last": -1}}}
    assert problems_of(config) == ["carestack:overrides.backup.keep.last: Input should be greater than or equal to 0"]


def test_a_keep_that_keeps_nothing_names_every_policy() -> None:
    config = studio_config()
    config["overrides"] = {"backup": {"keep": {"hourly": 0, "daily": 0, "weekly": 0}}}
    [problem] = problems_of(config)
    assert problem.endswith(
        "backup.keep: keeps no snapshot at all; "
        "set at least one of last, hourly, daily, weekly, monthly, yearly above 0"
    )


def test_duplicate_domain() -> None:
    config = studio_config()
    config["sites"][1]["domain"] = config["sites"][0]["domain"].upper()
    [problem] = problems_of(config)
    assert problem == "carestack:sites[1].domain: www.studio.example is already sites[0].domain"


@pytest.mark.parametrize("domain", ["localhost", "-bad.example", "a..example", "x.123", "ex ample.com"])
def test_invalid_domain(domain: str) -> None:
    config = studio_config()
    config["sites"][0]["domain"] = domain
    [problem] = problems_of(config)
    assert problem.startswith("carestack:sites[0].domain: expected a domain name such as www.example.com")


def test_hourly_retention_on_a_nightly_schedule() -> None:
    config = studio_config()
    config["overrides"] = {"backup": {"every": "daily", "at": "01:00"}}
    [problem] = problems_of(config)
    assert problem.startswith("carestack:overrides: with tier standard and these overrides, backup.keep.hourly:")
    assert "can't be kept from one backup a day" in problem


def test_performance_sampling_and_retention_errors_name_the_key_and_what_would_do() -> None:
    config = studio_config()
    config["overrides"] = {"performance": {"sample": {"every": "5h", "at": "12:00"}, "keep": "28d", "timeout": "6h"}}
    problems = problems_of(config)
    prefix = "carestack:overrides."
    assert sorted(problems) == sorted([
        prefix + "performance.sample.every: 5h does not divide a day into whole hours; use one of 1h, 2h, 3h, "
        "4h, 6h, 8h, 12h, 24h",
        prefix + "performance.sample.at: expected a minute of the hour \":MM\" (\":00\"-\":59\"), got '12:00'",
        prefix + "performance.keep: 28d is shorter than the verdict reads (the week judged and the 4 before it); "
        "keep at least 35d",
        prefix + "performance.timeout: 6h is not shorter than the sampling period 5h",
    ])  # fmt: skip


def test_performance_limits_are_bounded() -> None:
    config = studio_config()
    config["overrides"] = {"performance": {"limit_percent": 0, "sample": {"requests": 50}}}
    assert sorted(problems_of(config)) == [
        "carestack:overrides.performance.limit_percent: Input should be greater than 0",
        "carestack:overrides.performance.sample.requests: Input should be less than or equal to 10",
    ]


def test_self_contradicting_override_names_the_override() -> None:
    config = studio_config()
    config["overrides"] = {"backup": {"every": "daily", "at": ":15", "keep": {"hourly": 0}}}
    [problem] = problems_of(config)
    assert problem.startswith('carestack:overrides.backup.at: expected a time of day "HH:MM"')


def test_override_type_error_names_the_override() -> None:
    config = studio_config()
    config["overrides"] = {"monitoring": {"interval": "5x"}}
    [problem] = problems_of(config)
    assert problem.startswith("carestack:overrides.monitoring.interval: expected a duration such as")


def test_override_misspelt_key() -> None:
    config = studio_config()
    config["overrides"] = {"backup": {"kepe": {"daily": 3}}}
    [problem] = problems_of(config)
    assert problem.startswith("carestack:overrides.backup.kepe: unknown key; did you mean 'keep'?")


def test_alert_promise_slower_than_checks() -> None:
    config = studio_config()
    config["overrides"] = {"monitoring": {"alert_within": "30s"}}
    [problem] = problems_of(config)
    assert "monitoring.alert_within: 30s can't be kept with a check every 1m" in problem


def test_more_pages_than_the_tier_checks() -> None:
    config = studio_config()
    config["tier"] = "basic"
    config["overrides"] = {}
    problems = problems_of(config)
    assert "carestack:sites[0].checks: 2 pages, but the tier checks at most 1 per site" in problems


def test_channel_without_a_reachable_contact() -> None:
    config = studio_config()
    for contact in config["contacts"]:
        contact.pop("phone", None)
    [problem] = problems_of(config)
    assert problem == "carestack:contacts: the tier alerts by sms, but no contact has a phone"


def test_ssh_from_the_whole_internet_is_refused() -> None:
    config = studio_config()
    config["admin_cidr"] = "0.0.0.0/0"
    [problem] = problems_of(config)
    assert problem.startswith("carestack:admin_cidr: must not be the whole internet")


def test_platform_stack_errors() -> None:
    with pytest.raises(SpecError) as caught:
        parse_stack("Pulumi.platform.yaml", {"role": "platform", "admin_cidr": "10.0.0.0/8", "shared_host": []})
    [hosts, standby, misspelt] = caught.value.problems
    assert hosts == "carestack:shared_hosts: is required"
    assert standby == "carestack:standby: is required"
    assert misspelt.startswith("carestack:shared_host: unknown key; did you mean 'shared_hosts'?")


def test_catalog_errors_name_the_catalog(tmp_path: Path) -> None:
    catalog = yaml.safe_load((Path(__file__).resolve().parents[2] / "infra/catalog/tiers.yaml").read_text())
    broken = copy.deepcopy(catalog)
    broken["tiers"]["premium"]["extends"] = "platinum"
    broken["tiers"]["standard"]["backup"]["keep"]["hourly"] = -1
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == ["tiers.premium.extends: unknown tier 'platinum' (tiers: basic, standard, premium)"]

    broken["tiers"]["premium"]["extends"] = "standard"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert "tiers.standard.backup.keep.hourly: Input should be greater than or equal to 0" in caught.value.problems


def test_circular_inheritance(tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump({"tiers": {"a": {"extends": "b"}, "b": {"extends": "a"}}}))
    with pytest.raises(SpecError) as caught:
        load_catalog(path)
    assert "circular inheritance a -> b -> a" in caught.value.problems[0]


def test_stack_file_name_and_format(tmp_path: Path) -> None:
    wrong_name = tmp_path / "client.yaml"
    wrong_name.write_text("config: {}\n")
    with pytest.raises(SpecError, match=r"named Pulumi\.<stack>\.yaml"):
        load_stack(wrong_name)
    no_config = tmp_path / "Pulumi.x.yaml"
    no_config.write_text("carestack:tier: basic\n")
    with pytest.raises(SpecError, match="config: a stack file holds its settings under config:"):
        load_stack(no_config)


def test_deployment_settings_are_left_to_the_program() -> None:
    config = studio_config()
    config.update(kuma_url="https://status.agency.example", kuma_password={"secure": "AAAB..."})
    assert isinstance(parse_stack("Pulumi.studio.yaml", config), ClientSpec)


def test_platform_host_names_are_unique() -> None:
    host = {"name": "shared-1", "instance_type": "t3.large", "volume_gb": 80}
    with pytest.raises(SpecError) as caught:
        parse_stack(
            "Pulumi.platform.yaml",
            {"role": "platform", "admin_cidr": "10.0.0.0/8", "shared_hosts": [host], "standby": host},
        )
    assert caught.value.problems == [
        "carestack:shared_hosts[0].name: 'shared-1' is used by more than one host; host names must be unique",
        "carestack:standby.name: 'shared-1' is used by more than one host; host names must be unique",
    ]
