"""Certificates and DNS stages in the plan: the agency's ACME account, a site's names and stage, what
the monitors and the servers make of them. Without servers or Kuma (the lab test orders for real)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.ansible_vars import (
    AcmeOverride,
    Client,
    ClientSecrets,
    HostAccess,
    Realization,
    RealizationError,
    check_realization,
    inventory,
)
from infra.aws.onboarding import pending_site_addresses
from infra.monitors import KumaPlanError, desired_state
from infra.plan import CarePlan, build_plan
from infra.spec import (
    LETS_ENCRYPT_DIRECTORY,
    STACKS_DIR,
    ClientSpec,
    SpecError,
    load_catalog,
    parse_stack,
)
from lab.failover import on_standby
from lab.services import lab_alerting
from tests.unit.agency_catalog import catalog_with

RECEIVER = "http://127.0.0.1:9099/alert"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def studio_config() -> dict[str, Any]:
    document = yaml.safe_load((STACKS_DIR / "Pulumi.studio.yaml").read_text())
    return {k.split(":", 1)[1]: v for k, v in document["config"].items() if k.startswith("carestack:")}


def studio_plan(change: Any = None, catalog_path: Path | None = None) -> CarePlan:
    config = copy.deepcopy(studio_config())
    if change:
        change(config)
    catalog = load_catalog(catalog_path) if catalog_path else None
    spec = parse_stack("studio", config, catalog)
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def problems_of(config_change: Any) -> list[str]:
    config = copy.deepcopy(studio_config())
    config_change(config)
    with pytest.raises(SpecError) as raised:
        parse_stack("studio", config)
    return raised.value.problems


def write_catalog(tmp_path: Path, acme: Any) -> Path:
    return catalog_with(tmp_path, "acme", acme)


# --- the agency's ACME account ---------------------------------------------------


def test_the_acme_account_is_the_agencys_and_lets_encrypt_by_default(tmp_path: Path) -> None:
    assert studio_plan().certificates.acme_email == "certificates@agency.example"
    assert studio_plan().certificates.acme_directory == LETS_ENCRYPT_DIRECTORY
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    plan = studio_plan(catalog_path=write_catalog(tmp_path, {"directory": staging}))
    assert (plan.certificates.acme_directory, plan.certificates.acme_email) == (staging, None)
    assert CarePlan.from_dict(plan.to_dict()) == plan


def test_a_bad_acme_account_is_named(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, {"directory": "http://ca.internal/dir", "email": "certs", "server": "x"})
    with pytest.raises(SpecError) as raised:
        load_catalog(path)
    text = "\n".join(raised.value.problems)
    assert "agency.acme.directory: expected an https:// URL of an ACME directory, got 'http://ca.internal/dir'" in text
    assert "agency.acme.email: expected an e-mail address, got 'certs'" in text
    assert "agency.acme.server" in text


# --- a site's names and DNS stage --------------------------------------------------


def test_a_site_is_live_unless_its_stack_says_pending() -> None:
    def stages(config: dict[str, Any]) -> None:
        config["sites"][0].update(dns="pending", aliases=["studio.example"])
        config["sites"][1]["https"] = False

    web, plans = studio_plan(stages).sites
    assert (web.dns, web.names, web.certificate) == ("pending", ("www.studio.example", "studio.example"), False)
    assert (plans.dns, plans.names, plans.certificate) == ("live", ("plans.studio.example",), False)
    assert [s.certificate for s in studio_plan().sites] == [True, True]


def test_bad_stages_and_names_are_named() -> None:
    def bad(config: dict[str, Any]) -> None:
        config["sites"][0].update(dns="soon", aliases=["plans.studio.example", "not a name"])

    problems = problems_of(bad)
    assert any(p.startswith("carestack:sites[0].dns: ") and "'pending'" in p and "'live'" in p for p in problems)
    assert any(p.startswith("carestack:sites[0].aliases[1]: expected a domain name") for p in problems)

    def taken(config: dict[str, Any]) -> None:
        config["sites"][1]["aliases"] = ["www.studio.example"]

    assert problems_of(taken) == ["carestack:sites[1].aliases[0]: www.studio.example is already sites[0].domain"]


# --- the monitors follow the stage -------------------------------------------------


def test_a_pending_site_is_checked_on_its_servers_address_and_a_live_one_by_name() -> None:
    plan = studio_plan(lambda c: c["sites"][0].update(dns="pending"))
    web, plans = plan.sites
    desired = desired_state(plan, lab_alerting(RECEIVER), {web.id: "http://203.0.113.7"})
    pages = {m.key: m.fields for m in desired.monitors if m.job is None}
    for check in web.checks:
        fields = pages[f"{web.id} page {check.path}"]
        assert (fields["url"], fields["headers"]) == (f"http://203.0.113.7{check.path}", f'{{"Host": "{web.domain}"}}')
        assert fields["expiryNotification"] is False  # no certificate a CA signed before the cutover
    for n, check in enumerate(plans.checks):
        fields = pages[f"{plans.id} page {check.path}"]
        assert (fields["url"], fields["headers"]) == (check.url, None)
        assert check.url.startswith("https://plans.studio.example/")
        assert fields["expiryNotification"] is (n == 0)
        assert fields["ignoreTls"] is False


def test_a_pending_sites_page_checks_page_nobody_until_it_is_live() -> None:
    plan = studio_plan(lambda c: c["sites"][0].update(dns="pending"))
    web, plans = plan.sites
    desired = desired_state(plan, lab_alerting(RECEIVER), {web.id: "http://203.0.113.7"})
    live = desired_state(studio_plan(), lab_alerting(RECEIVER))
    routed = {m.key: m.notifications for m in live.monitors}
    assert all(routed.values())  # live, every monitor alerts someone
    for monitor in desired.monitors:
        if monitor.site_id == web.id and monitor.job is None:
            assert monitor.notifications == ()
        else:  # the other site's pages, and every job heartbeat (the pending site's backups are real)
            assert monitor.notifications == routed[monitor.key]
    assert any(m.site_id == web.id and m.job is not None and m.notifications for m in desired.monitors)
    assert plans.dns == "live"


def test_a_pending_site_without_an_address_is_refused() -> None:
    plan = studio_plan(lambda c: c["sites"][1].update(dns="pending"))
    with pytest.raises(KumaPlanError) as raised:
        desired_state(plan, lab_alerting(RECEIVER))
    assert "site_addresses.studio-plans: the site's DNS is pending" in str(raised.value)


def test_production_hands_the_server_address_to_pending_sites_only() -> None:
    plan = studio_plan(lambda c: c["sites"][1].update(dns="pending"))
    assert pending_site_addresses(plan, "203.0.113.7") == {"studio-plans": "http://203.0.113.7"}
    assert pending_site_addresses(studio_plan(), "203.0.113.7") == {}


def test_a_failover_drill_orders_no_certificate_on_the_standby() -> None:
    moved = on_standby(studio_plan(), "standby-1")
    assert moved.hosting.server == "standby-1"
    assert [(s.dns, s.certificate) for s in moved.sites] == [("pending", False), ("pending", False)]


# --- what the servers are told -----------------------------------------------------


def realization(acme: AcmeOverride | None = None) -> Realization:
    return Realization(hosts={"shared-1": HostAccess("10.77.0.10")}, s3_endpoint="http://10.77.0.1:9000", acme=acme)


def secrets() -> ClientSecrets:
    return ClientSecrets("pw", "key", "secret")


def host_vars(clients: list[Client], acme: AcmeOverride | None = None) -> dict[str, Any]:
    hosts = inventory(clients, realization(acme))["all"]["children"]["carestack"]["hosts"]
    found: dict[str, Any] = hosts["shared-1"]
    return found


def test_the_servers_get_each_sites_names_and_stage_and_the_agencys_account() -> None:
    plan = studio_plan(lambda c: c["sites"][0].update(dns="pending", aliases=["studio.example"]))
    found = host_vars([Client(plan, secrets())])
    web, plans = (found["carestack_sites"][s.id] for s in plan.sites)
    assert (web["names"], web["dns"], web["certificate"]) == (
        ["www.studio.example", "studio.example"],
        "pending",
        False,
    )
    assert (plans["names"], plans["dns"], plans["certificate"]) == (["plans.studio.example"], "live", True)
    assert found["carestack_acme"] == {
        "directory": LETS_ENCRYPT_DIRECTORY,
        "email": "certificates@agency.example",
        "endpoint_ca_pem": None,
    }
    lab = AcmeOverride("https://10.77.0.1:14000/dir", PEM)
    assert host_vars([Client(plan, secrets())], lab)["carestack_acme"]["directory"] == lab.directory
    assert host_vars([Client(plan, secrets())], lab)["carestack_acme"]["endpoint_ca_pem"] == PEM


def test_a_bad_stand_in_ca_and_two_accounts_on_one_server_are_refused(tmp_path: Path) -> None:
    plan = studio_plan()
    with pytest.raises(RealizationError) as raised:
        check_realization([Client(plan, secrets())], realization(AcmeOverride("http://10.77.0.1:14000/dir", "x")))
    assert "acme.directory: must be an https:// URL, got 'http://10.77.0.1:14000/dir'" in str(raised.value)
    assert "acme.endpoint_ca_pem: must be a PEM certificate" in str(raised.value)

    def other_client(config: dict[str, Any]) -> None:
        config["client"]["id"] = "other"

    other = studio_plan(other_client, write_catalog(tmp_path, {"email": "certs@other-agency.de"}))
    with pytest.raises(RealizationError) as raised:
        check_realization([Client(plan, secrets()), Client(other, secrets())], realization())
    assert "agency.acme: clients studio and other share server shared-1" in str(raised.value)
