"""The desired state derived from a CarePlan, without a Kuma: addresses, limits, notifications, the window."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from infra.alerting import (
    PLAIN_EMAIL_BODY,
    PLAIN_EMAIL_SUBJECT,
    AlertingConfig,
    AlertingError,
    load_alerting,
)
from infra.monitors import KumaPlanError, desired_state, nothing_desired
from infra.monitors.desired import MAX_INTERVAL_SECONDS
from lab.services import lab_alerting
from tests.kuma.support import client_plan, write_yaml

RECEIVER = "http://127.0.0.1:9099/alert"


def test_production_checks_public_urls_and_the_lab_its_servers() -> None:
    plan = client_plan("studio", "studio")
    web, plans = plan.sites
    desired = desired_state(plan, lab_alerting(RECEIVER), {web.id: "http://10.77.0.10"})
    pages = {m.key: m.fields for m in desired.monitors if m.job is None}
    for check in web.checks:
        fields = pages[f"{web.id} page {check.path}"]
        assert fields["url"] == "http://10.77.0.10" + check.path
        assert json.loads(fields["headers"]) == {"Host": web.domain}
    for check in plans.checks:
        fields = pages[f"{plans.id} page {check.path}"]
        assert (fields["url"], fields["headers"]) == (check.url, None)


def test_every_number_comes_from_the_plan() -> None:
    plan = client_plan("shop", "shop")
    desired = desired_state(plan, lab_alerting(RECEIVER))
    mon = plan.monitoring
    for monitor in desired.monitors:
        fields = monitor.fields
        if monitor.job is None:
            assert (fields["interval"], fields["retryInterval"], fields["maxretries"], fields["timeout"]) == (
                mon.interval_seconds,
                mon.retry_interval_seconds,
                mon.retries,
                mon.timeout_seconds,
            )
        else:
            job = plan.sites[0].job(monitor.job)
            # DOWN once the heartbeat is push_interval overdue: at once, or after one PENDING retry where Kuma's
            # longest interval is shorter than the job's period (the monthly restore drill)
            overdue = fields["interval"] + fields["retryInterval"] * fields["maxretries"]
            assert overdue == job.push_interval_seconds
            assert fields["maxretries"] == (0 if job.push_interval_seconds <= MAX_INTERVAL_SECONDS else 1)
    assert desired.cert_expiry_days == mon.cert_expiry_days
    assert desired.maintenance is not None
    assert (desired.maintenance["cron"], desired.maintenance["durationMinutes"]) == ("0 6 * * 2", 120)
    assert desired.maintenance["timezoneOption"] == plan.client.timezone


def test_one_certificate_warning_per_https_site() -> None:
    plan = client_plan("studio", "certs", lambda config: config["sites"][1].update(https=False))
    web, plans = plan.sites
    assert web.https and not plans.https and len(web.checks) > 1 and len(plans.checks) > 1
    desired = desired_state(plan, lab_alerting(RECEIVER))
    warned = [m.key for m in desired.monitors if m.fields.get("expiryNotification")]
    assert warned == [f"{web.id} page {web.checks[0].path}"]  # every page of a site shares its certificate
    assert all("expiryNotification" in m.fields for m in desired.monitors if m.job is None)


def test_the_clients_group_is_a_status_page_with_a_section_per_site() -> None:
    plan = client_plan("studio", "studio")
    desired = desired_state(plan, lab_alerting(RECEIVER))
    page = desired.status_page
    assert page is not None
    assert (page.slug, page.title) == ("carestack-studio", plan.client.name)
    assert plan.client.tier_title in page.description
    assert page.sections == tuple(
        (site.domain, tuple(m.key for m in desired.monitors if m.site_id == site.id)) for site in plan.sites
    )
    assert sorted(key for _, keys in page.sections for key in keys) == sorted(m.key for m in desired.monitors)
    assert nothing_desired("studio").status_page is None


def test_update_window_in_the_clients_time_zone() -> None:
    def late_friday(config: dict[str, object]) -> None:
        config["timezone"] = "America/New_York"
        config["overrides"] = {"updates": {"window": {"day": "Fri", "at": "22:30", "duration": "3h"}}}

    desired = desired_state(client_plan("bakery", "late", late_friday), lab_alerting(RECEIVER))
    assert desired.maintenance is not None
    assert desired.maintenance["cron"] == "30 22 * * 5"
    assert (desired.maintenance["durationMinutes"], desired.maintenance["timezoneOption"]) == (180, "America/New_York")


def test_bad_site_addresses_are_named() -> None:
    plan = client_plan("studio", "studio")
    with pytest.raises(KumaPlanError) as caught:
        desired_state(plan, lab_alerting(RECEIVER), {"studio-wbe": "http://10.77.0.10", "studio-web": "10.77.0.10"})
    message = str(caught.value)
    assert "site_addresses.studio-wbe: no such site in the plan (sites: studio-plans, studio-web)" in message
    assert "site_addresses.studio-web: expected a base URL such as http://10.77.0.10, got '10.77.0.10'" in message


def test_intervals_outside_kumas_range_are_refused() -> None:
    plan = client_plan("bakery", "bakery")
    site = plan.sites[0]
    too_short = replace(site, jobs=(replace(site.job("backup"), push_interval_seconds=5),))
    with pytest.raises(
        KumaPlanError, match=r"monitor 'bakery-bakery job backup': interval 5s is outside Kuma's 20\.\.2073600s"
    ):
        desired_state(replace(plan, sites=(too_short,)), lab_alerting(RECEIVER))


def test_agency_channels_become_kuma_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_alerting(
        write_yaml(
            tmp_path / "alerting.yaml",
            {
                "email": {
                    "host": "smtp.agency.example",
                    "port": 587,
                    "from": "alerts@agency.example",
                    "username": "alerts",
                    "password_env": "TEST_SMTP_PASSWORD",
                },
                "sms": {
                    "provider": "SMSEagle",
                    "recipient_field": "smseagleRecipient",
                    "settings": {"smseagleUrl": "https://sms.agency.example", "smseagleRecipientType": "smseagle-to"},
                    "secret_env": {"smseagleToken": "TEST_SMS_TOKEN"},
                },
                "agency": {"email": "oncall@agency.example", "webhook": "https://chat.agency.example/hook"},
            },
        )
    )
    plan = client_plan("studio", "studio")
    with pytest.raises(KumaPlanError, match="read from the environment variable TEST_SMTP_PASSWORD, which is not set"):
        desired_state(plan, config)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-secret")
    monkeypatch.setenv("TEST_SMS_TOKEN", "sms-secret")

    notifications = {n.name: n.fields for n in desired_state(plan, config).notifications}

    erik, on_call = plan.client.contacts
    email = notifications[f"carestack studio · email · {erik.name}"]
    assert (email["type"], email["smtpTo"], email["smtpPassword"]) == ("smtp", erik.email, "smtp-secret")
    assert email["customSubject"] == PLAIN_EMAIL_SUBJECT and email["customBody"] == PLAIN_EMAIL_BODY
    sms = notifications[f"carestack studio · sms · {erik.name}"]
    assert (sms["type"], sms["smseagleRecipient"], sms["smseagleToken"]) == ("SMSEagle", erik.phone, "sms-secret")
    hook = notifications[f"carestack studio · webhook · {on_call.name}"]
    assert (hook["type"], hook["webhookURL"], hook["webhookContentType"]) == ("webhook", on_call.webhook, "custom")
    agency_mail = notifications["carestack studio · agency · email"]
    assert (agency_mail["smtpTo"], "customSubject" in agency_mail) == ("oncall@agency.example", False)
    agency_hook = notifications["carestack studio · agency · webhook"]
    assert (agency_hook["webhookURL"], agency_hook["webhookContentType"]) == (
        "https://chat.agency.example/hook",
        "json",
    )
    assert len(notifications) == 5  # no e-mail for the on-call contact, no webhook for Erik, no SMS for the agency
    assert all(fields["isDefault"] is False for fields in notifications.values())


def test_the_lab_sends_every_channel_to_the_receiver() -> None:
    notifications = desired_state(client_plan("studio", "studio"), lab_alerting(RECEIVER)).notifications
    assert {n.fields["type"] for n in notifications} == {"webhook"}
    assert {n.fields["webhookURL"] for n in notifications} == {
        f"{RECEIVER}?client=studio&channel=email&to=Erik+Lindqvist",
        f"{RECEIVER}?client=studio&channel=sms&to=Erik+Lindqvist",
        f"{RECEIVER}?client=studio&channel=webhook&to=Studio+on-call",
        f"{RECEIVER}?client=studio&channel=webhook&to=agency",
    }


def test_job_heartbeats_alert_the_agency_only_and_site_checks_the_clients_contacts_too() -> None:
    plan = client_plan("studio", "studio")
    desired = desired_state(plan, lab_alerting(RECEIVER))
    agency = {"carestack studio · agency · webhook"}
    contacts = {
        "carestack studio · email · Erik Lindqvist",
        "carestack studio · sms · Erik Lindqvist",
        "carestack studio · webhook · Studio on-call",
    }
    pushes = [m for m in desired.monitors if m.job]
    pages = [m for m in desired.monitors if not m.job]
    assert len(pushes) == sum(len(site.jobs) for site in plan.sites)  # a heartbeat per job and site of the plan
    assert len(pages) == sum(len(site.checks) for site in plan.sites)
    assert all(set(m.notifications) == agency for m in pushes)
    assert all(set(m.notifications) == contacts | agency for m in pages)
    plain = {n.name: n.fields for n in desired.notifications}
    assert {name for name, fields in plain.items() if fields["webhookContentType"] == "custom"} == contacts


def test_without_an_agency_recipient_the_sync_refuses_and_says_what_to_add(tmp_path: Path) -> None:
    config = load_alerting(
        write_yaml(tmp_path / "alerting.yaml", {"email": {"host": "smtp.x", "port": 25, "from": "a@x"}})
    )
    with pytest.raises(KumaPlanError, match=r"alerting: no agency section: .*give agency: \{email, phone or webhook\}"):
        desired_state(client_plan("bakery", "bakery"), config)


def test_an_agency_section_without_any_address_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "alerting.yaml", {"agency": {"name": "Ops"}})
    with pytest.raises(AlertingError, match="agency: give at least one of email, phone, webhook"):
        load_alerting(path)


def test_unknown_sms_provider_is_named(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "alerting.yaml", {"sms": {"provider": "Pigeon", "recipient_field": "to"}})
    with pytest.raises(AlertingError, match="sms: provider: unknown Kuma notification provider 'Pigeon'"):
        load_alerting(path)
    assert AlertingConfig() == load_alerting(write_yaml(tmp_path / "empty.yaml", None))
