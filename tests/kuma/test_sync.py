"""The monitor sync against a real Uptime Kuma: create, no-op, change, remove, ownership, interruption, dry run."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from uptime_kuma_api import MonitorType

from infra.kuma_client import KumaError, KumaLogin, KumaSession, connect
from infra.monitors import (
    KEY_TAG,
    OWNER_TAG,
    Change,
    SyncResult,
    desired_state,
    maintenance_title,
    nothing_desired,
    status_page_slug,
    sync,
    sync_clients,
)
from infra.monitors.desired import MAX_INTERVAL_SECONDS
from infra.plan import CarePlan
from lab.services import lab_alerting
from tests.kuma.conftest import Kuma, Receiver
from tests.kuma.support import add_by_hand, client_plan, loopback, owned, snapshot

pytestmark = pytest.mark.kuma


def run_sync(
    kuma: Kuma,
    receiver: Receiver,
    plan: CarePlan,
    addresses: Mapping[str, str] | None = None,
    **options: Any,
) -> tuple[SyncResult, list[str]]:
    lines: list[str] = []
    desired = desired_state(plan, lab_alerting(receiver.url), loopback(plan) if addresses is None else addresses)
    with connect(kuma.login) as session:
        result = sync(session, desired, report=lines.append, **options)
    return result, lines


def state(kuma: Kuma, client_id: str) -> dict[str, dict[str, Any]]:
    with connect(kuma.login) as session:
        return owned(session, client_id)


def save_page_by_hand(
    session: KumaSession, slug: str, settings: Mapping[str, Any], groups: list[dict[str, Any]]
) -> None:
    """What the agency does in Kuma's status page editor: change settings, list monitors."""
    page = session.status_page(slug)
    assert page is not None
    config = {k: v for k, v in page.items() if k != "publicGroupList"}
    session.save_status_page(slug, {**config, **settings}, groups)


def listing(session: KumaSession, client_id: str) -> list[tuple[str, list[int]]] | None:
    """The client's status page as Kuma shows it: (section, monitor ids); None without a page."""
    page = session.status_page(status_page_slug(client_id))
    if page is None:
        return None
    return [(g["name"], [m["id"] for m in g["monitorList"]]) for g in page["publicGroupList"]]


def sections(plan: CarePlan, monitors: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[int]]]:
    """What the page should list: per site, its page checks, then its jobs, by monitor id."""
    return [
        (
            site.domain,
            [monitors[f"{site.id} page {c.path}"]["id"] for c in site.checks]
            + [monitors[f"{site.id} job {j.name}"]["id"] for j in site.jobs],
        )
        for site in plan.sites
    ]


def test_sync_from_empty_creates_the_plan(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "fresh")
    addresses = {site.id: f"http://127.0.0.{n}:9" for n, site in enumerate(plan.sites, start=1)}
    result, lines = run_sync(kuma, receiver, plan, addresses)

    monitors = state(kuma, "fresh")
    pages = [(site, check) for site in plan.sites for check in site.checks]
    jobs = [(site, job) for site in plan.sites for job in site.jobs]
    assert len(monitors) == len(pages) + len(jobs)
    mon = plan.monitoring
    for site, check in pages:
        m = monitors[f"{site.id} page {check.path}"]
        assert m["type"] == MonitorType.KEYWORD
        assert (m["keyword"], m["accepted_statuscodes"]) == (check.keyword, [str(check.status)])
        assert (m["interval"], m["retryInterval"], m["maxretries"]) == (
            mon.interval_seconds,
            mon.retry_interval_seconds,
            mon.retries,
        )
        assert m["timeout"] == mon.timeout_seconds
        assert m["expiryNotification"] is (site.https and check == site.checks[0])  # one warning per site
        assert m["url"] == addresses[site.id] + check.path  # the site's address, its domain as Host header
        assert m["headers"] == f'{{"Host": "{site.domain}"}}'
        assert {(t["name"], t["value"]) for t in m["tags"]} >= {(OWNER_TAG, "fresh")}
    tokens = result.push_tokens
    for site, job in jobs:
        m = monitors[f"{site.id} job {job.name}"]
        assert m["type"] == MonitorType.PUSH
        assert m["interval"] == job.push_interval_seconds
        assert tokens[site.id][job.name] == m["pushToken"]
    assert len({t for by_job in tokens.values() for t in by_job.values()}) == len(jobs)
    # Tokens are handed back, never printed.
    printed = "\n".join(lines) + repr(result)
    assert not any(token in printed for by_job in tokens.values() for token in by_job.values())

    with connect(kuma.login) as session:
        notifications = {n["id"]: n for n in session.notifications() if n["name"].startswith("carestack fresh · ")}
        contacts = {
            f"carestack fresh · {channel} · {contact.name}"
            for channel in mon.channels
            for contact in plan.client.contacts
            if {"email": contact.email, "sms": contact.phone, "webhook": contact.webhook}[channel]
        }
        agency = {"carestack fresh · agency · webhook"}
        assert {n["name"] for n in notifications.values()} == contacts | agency
        assert all(n["webhookURL"].startswith(receiver.url) for n in notifications.values())
        by_name = {n["name"]: n["id"] for n in notifications.values()}

        def attached(key: str) -> set[str]:
            return {name for name, i in by_name.items() if i in monitors[key]["notificationIDList"]}

        # Site checks alert the client's contacts and the agency; job heartbeats the agency only.
        assert all(attached(f"{s.id} page {c.path}") == contacts | agency for s, c in pages)
        assert all(attached(f"{s.id} job {j.name}") == agency for s, j in jobs)
        window = next(w for w in session.maintenances() if w["title"] == maintenance_title("fresh"))
        assert (window["strategy"], window["cron"], window["timezoneOption"]) == (
            "cron",
            "0 6 * * 2",  # Tue 06:00 as the tier's update window says
            plan.client.timezone,
        )
        assert window["durationMinutes"] == mon.maintenance.duration_minutes
        page_ids = {monitors[f"{s.id} page {c.path}"]["id"] for s, c in pages}
        assert session.maintenance_monitors(int(window["id"])) == page_ids
        assert mon.cert_expiry_days in session.settings()["tlsExpiryNotifyDays"]

        page = session.status_page("carestack-fresh")
        assert page is not None and page["published"] and page["title"] == plan.client.name
        assert listing(session, "fresh") == sections(plan, monitors)
    # The public page names the monitors and nothing else: no addresses, tags or push tokens.
    with urllib.request.urlopen(f"{kuma.login.url}/api/status-page/carestack-fresh", timeout=10) as answer:
        public = answer.read().decode()
    assert "fresh-web · /projects/" in public
    secrets = [*addresses.values(), KEY_TAG, *(t for by_job in tokens.values() for t in by_job.values())]
    assert not [text for text in secrets if text in public]


def test_second_sync_changes_nothing(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("shop", "again")
    first, _ = run_sync(kuma, receiver, plan)
    with connect(kuma.login) as session:
        before = snapshot(session)

    second, lines = run_sync(kuma, receiver, plan)

    assert second.changes == () and second.writes == 0
    assert lines == ["again: monitors in sync, nothing to change"]
    assert second.push_tokens == first.push_tokens
    with connect(kuma.login) as session:
        assert snapshot(session) == before


def heartbeat_keys(plan: CarePlan) -> set[str]:
    """The job heartbeats' monitor keys a plan asks for."""
    return {f"{site.id} job {job.name}" for site in plan.sites for job in site.jobs}


def test_changed_tier_updates_in_place(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "upgrade")
    run_sync(kuma, receiver, plan)
    before = state(kuma, "upgrade")

    def upgrade(config: dict[str, Any]) -> None:  # standard -> premium, a page replaced on the web site
        config["tier"] = "premium"
        config["sites"][0]["checks"] = [config["sites"][0]["checks"][0], {"path": "/contact/", "keyword": "Contact"}]

    upgraded = client_plan("studio", "upgrade", upgrade)
    assert upgraded.monitoring.interval_seconds != plan.monitoring.interval_seconds
    _, lines = run_sync(kuma, receiver, upgraded)
    after = state(kuma, "upgrade")

    web = upgraded.sites[0].id
    new_jobs = heartbeat_keys(upgraded) - heartbeat_keys(plan)  # premium adds the standby's restore drill
    assert new_jobs
    assert set(after) == set(before) - {f"{web} page /projects/"} | {f"{web} page /contact/"} | new_jobs
    for key, monitor in after.items():
        if key in before:  # updated in place: same monitor, same history
            assert monitor["id"] == before[key]["id"]
            assert monitor.get("pushToken") == before[key].get("pushToken")
        if monitor["type"] == MonitorType.KEYWORD:
            assert monitor["interval"] == upgraded.monitoring.interval_seconds
            assert monitor["timeout"] == upgraded.monitoring.timeout_seconds
    assert f"- monitor {web} · /projects/" in lines
    assert f"+ monitor {web} · /contact/: keyword, every {upgraded.monitoring.interval_seconds}s" in lines
    assert any(line.startswith(f"~ monitor {web} · /: ") and "interval: 60 → 30" in line for line in lines)
    [page_line] = [line for line in lines if line.startswith("~ status page carestack-upgrade: ")]
    assert page_line.endswith(f"; listing: +{1 + len(new_jobs)} -1 monitors") and "Premium care" in page_line
    with connect(kuma.login) as session:
        assert listing(session, "upgrade") == sections(upgraded, after)
    assert run_sync(kuma, receiver, upgraded)[0].writes == 0


def test_a_job_heartbeat_alerting_the_client_is_routed_back_to_the_agency_and_hand_attached_alerts_stay(
    kuma: Kuma, receiver: Receiver
) -> None:
    plan = client_plan("bakery", "reroute")
    run_sync(kuma, receiver, plan)
    site = plan.sites[0]
    with connect(kuma.login) as session:
        names = {n["name"]: int(n["id"]) for n in session.notifications()}
        contact = names[f"carestack reroute · email · {plan.client.contacts[0].name}"]
        agency = names["carestack reroute · agency · webhook"]
        by_hand = session.save_notification(
            {
                "name": "reroute pager (by hand)",
                "type": "webhook",
                "webhookURL": receiver.url,
                "webhookContentType": "json",
            },
            None,
        )
        backup = owned(session, "reroute")[f"{site.id} job backup"]
        # As every monitor was before routing: the client's contact alerted of a job's heartbeat.
        ids = {agency, contact, by_hand}
        session.edit_monitors([{**backup, "notificationIDList": {str(i): True for i in ids}}])

    _, lines = run_sync(kuma, receiver, plan)

    assert f"~ monitor {site.id} · backup job: notifications: +0 -1" in lines
    after = state(kuma, "reroute")[f"{site.id} job backup"]
    assert sorted(after["notificationIDList"]) == sorted({agency, by_hand})
    with connect(kuma.login) as session:
        session.delete_notification(by_hand)


def test_a_pending_sites_pages_alert_nobody_and_going_live_routes_them_in_place(kuma: Kuma, receiver: Receiver) -> None:
    pending = client_plan("studio", "cutover", lambda c: c["sites"][0].update(dns="pending"))
    web = pending.sites[0].id
    run_sync(kuma, receiver, pending)
    before = state(kuma, "cutover")
    pages = {key for key in before if key.startswith(f"{web} page ")}
    assert pages
    for key, monitor in before.items():
        if key in pages:
            assert not monitor["notificationIDList"], key
        else:  # the other site's pages and every heartbeat, the pending site's own included
            assert monitor["notificationIDList"], key

    live = client_plan("studio", "cutover")
    _, lines = run_sync(kuma, receiver, live)
    after = state(kuma, "cutover")
    for key in pages:
        assert after[key]["id"] == before[key]["id"]  # the same monitor, its history kept
        assert after[key]["notificationIDList"], key
    assert sum("notifications: +" in line for line in lines) == len(pages)
    assert run_sync(kuma, receiver, live)[0].writes == 0


def test_removed_site_loses_its_monitors(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "shrink")
    run_sync(kuma, receiver, plan)
    before = state(kuma, "shrink")

    smaller = client_plan("studio", "shrink", lambda config: config.update(sites=config["sites"][:1]))
    result, _ = run_sync(kuma, receiver, smaller)
    after = state(kuma, "shrink")

    kept, removed = smaller.sites[0].id, plan.sites[1].id
    assert {k for k in before if k.startswith(removed)} and not {k for k in after if k.startswith(removed)}
    assert {k: m["id"] for k, m in after.items()} == {k: m["id"] for k, m in before.items() if k.startswith(kept)}
    assert sum(1 for c in result.changes if c.action == "delete" and c.kind == "monitor") == 2 + len(plan.sites[1].jobs)
    with connect(kuma.login) as session:
        window = next(w for w in session.maintenances() if w["title"] == maintenance_title("shrink"))
        assert session.maintenance_monitors(int(window["id"])) == {m["id"] for k, m in after.items() if " page " in k}
        assert listing(session, "shrink") == sections(smaller, after)  # the removed site's section is gone


def test_foreign_monitors_are_left_alone(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("bakery", "owner")
    site = plan.sites[0]
    with connect(kuma.login) as session:  # made by hand: no carestack tag, though named like ours
        tag = session.api.add_tag(name="team", color="#555555")
        by_hand = add_by_hand(
            session, type="keyword", name=f"{site.id} · /", url="http://127.0.0.1:9/", keyword="x", interval=600
        )
        session.api.add_monitor_tag(tag_id=tag["id"], monitor_id=by_hand, value="owner")
        other_push = add_by_hand(session, type="push", name=f"{site.id} · backup job", interval=600, pushToken="byhand")
        session.add_status_page("team", "The team's page")
        save_page_by_hand(session, "team", {}, [{"name": "ours", "monitorList": [{"id": by_hand}]}])
    run_sync(kuma, receiver, client_plan("bakery", "neighbour"))  # another client's monitors are foreign too
    with connect(kuma.login) as session:
        before = snapshot(session)
        foreign = [by_hand, other_push, *(m["id"] for m in owned(session, "neighbour").values())]
        pages_before = {slug: session.status_page(slug) for slug in ("team", "carestack-neighbour")}

    run_sync(kuma, receiver, plan)  # create
    run_sync(
        kuma, receiver, client_plan("bakery", "owner", lambda c: c.update(overrides={"monitoring": {"interval": "2m"}}))
    )
    with connect(kuma.login) as session:  # and remove everything "owner" has
        sync(session, nothing_desired("owner"), report=None)
    with connect(kuma.login) as session:
        after = snapshot(session)
        assert owned(session, "owner") == {}
        assert session.status_page("carestack-owner") is None
        assert {slug: session.status_page(slug) for slug in pages_before} == pages_before

    assert {i: after[i] for i in foreign} == {i: before[i] for i in foreign}


def test_interrupted_sync_is_completed_without_duplicates(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "crash")

    def interrupt_at(kind: str, action: str) -> Callable[[Change], None]:
        def applied(change: Change) -> None:
            if (change.kind, change.action) == (kind, action):
                raise KeyboardInterrupt(f"interrupted after {change}")

        return applied

    with pytest.raises(KeyboardInterrupt):  # after the first notification: no monitor yet
        run_sync(kuma, receiver, plan, on_applied=interrupt_at("notification", "create"))
    assert state(kuma, "crash") == {}
    # After the first monitors landed: those the bulk import cannot set up fully (a page without the
    # certificate warning), created first and not yet edited; the others, the window and the page not yet.
    with pytest.raises(KeyboardInterrupt):
        run_sync(kuma, receiver, plan, on_applied=interrupt_at("monitor", "create"))
    partial = state(kuma, "crash")
    wanted = {m.key: m for m in desired_state(plan, lab_alerting(receiver.url), loopback(plan)).monitors}
    assert partial and set(partial) < set(wanted)

    result, _ = run_sync(kuma, receiver, plan)
    complete = state(kuma, "crash")  # owned() fails on a second monitor with the same key
    assert set(complete) == set(wanted)
    assert {k: m["id"] for k, m in complete.items() if k in partial} == {k: m["id"] for k, m in partial.items()}
    created = [c.name for c in result.changes if (c.kind, c.action) == ("monitor", "create")]
    assert sorted(created) == sorted(wanted[k].fields["name"] for k in set(wanted) - set(partial))
    # Left to do besides: the edit of the monitors the import could not set up fully (2.x stable
    # creates each monitor complete), the maintenance window and the status page.
    with connect(kuma.login) as session:
        bulk = session.version.bulk_import
    unfinished = sorted(
        wanted[k].fields["name"] for k in partial if bulk and not wanted[k].fields["expiryNotification"]
    )
    assert sorted(c.name for c in result.changes if (c.kind, c.action) == ("monitor", "update")) == unfinished
    assert all(c.details == ("expiryNotification: True → False",) for c in result.changes if c.action == "update")
    assert [(c.kind, c.action) for c in result.changes if c.kind != "monitor"] == [
        ("maintenance", "create"),
        ("status page", "create"),
    ]
    assert run_sync(kuma, receiver, plan)[0].writes == 0


def test_a_monitor_whose_tags_never_came_is_taken_back_not_created_again(kuma: Kuma, receiver: Receiver) -> None:
    """On 2.x a monitor is an `add` and then its tags: a sync cut off in between leaves it untagged."""
    plan = client_plan("studio", "untagged")
    desired = desired_state(plan, lab_alerting(receiver.url), loopback(plan))
    page = next(m for m in desired.monitors if m.job is None)
    push = next(m for m in desired.monitors if m.job is not None)
    with connect(kuma.login) as session:  # what the cut-off sync left: our fields, no (or half the) tags
        page_id = add_by_hand(session, **page.fields)
        push_id = add_by_hand(session, **push.fields, pushToken="keptAcrossTheCut0123456789abcdef")
        owner_tag = session.api.add_tag(name=OWNER_TAG, color="#0f766e")
        session.api.add_monitor_tag(tag_id=owner_tag["id"], monitor_id=push_id, value="untagged")
        # named like ours, but another description: someone's own monitor
        foreign_id = add_by_hand(session, type="push", name=push.fields["name"], interval=600, pushToken="byhand")
        session.refresh_monitors()  # 2.x sends a single add alone, not in the list
        session.wait_for_monitors(lambda listed: foreign_id in {int(m["id"]) for m in listed})
        foreign_before = snapshot(session)[foreign_id]

    result, _ = run_sync(kuma, receiver, plan)

    restored = [c.name for c in result.changes if c.details == ("ownership tags restored",)]
    assert sorted(restored) == sorted([page.fields["name"], push.fields["name"]])
    with connect(kuma.login) as session:
        monitors = owned(session, "untagged")  # fails on two monitors of one key
        assert set(monitors) == {m.key for m in desired.monitors}
        assert monitors[page.key]["id"] == page_id
        assert monitors[push.key]["id"] == push_id
        assert monitors[push.key]["pushToken"] == "keptAcrossTheCut0123456789abcdef"
        assert result.push_tokens[push.site_id][str(push.job)] == "keptAcrossTheCut0123456789abcdef"
        assert snapshot(session)[foreign_id] == foreign_before
    assert run_sync(kuma, receiver, plan)[0].writes == 0


def test_status_page_keeps_the_agencys_look_and_its_listing_is_repaired(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "look")
    run_sync(kuma, receiver, plan)
    slug = status_page_slug("look")
    with connect(kuma.login) as session:  # by hand: a dark theme, a footer, and a monitor taken off the page
        page = session.status_page(slug)
        assert page is not None
        groups = page["publicGroupList"]
        dropped = groups[0]["monitorList"].pop()
        save_page_by_hand(session, slug, {"theme": "dark", "footerText": "Your agency"}, groups)

    result, lines = run_sync(kuma, receiver, plan)

    assert lines[0] == f"~ status page {slug}: listing: +1 -0 monitors"
    assert result.writes == 1  # one saveStatusPage, whatever the number of monitors
    with connect(kuma.login) as session:
        repaired = session.status_page(slug)
        assert repaired is not None and (repaired["theme"], repaired["footerText"]) == ("dark", "Your agency")
        assert listing(session, "look") == sections(plan, owned(session, "look"))
        assert dropped["id"] in [m["id"] for m in repaired["publicGroupList"][0]["monitorList"]]
    assert run_sync(kuma, receiver, plan)[0].writes == 0


def test_global_certificate_warning_days_are_only_ever_added_to(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("bakery", "certdays")
    day = plan.monitoring.cert_expiry_days
    agency_days = sorted({day - 7, day + 16})  # what the agency chose for its own monitors
    with connect(kuma.login) as session:
        session.save_settings({**session.settings(), "tlsExpiryNotifyDays": agency_days})

    _, lines = run_sync(kuma, receiver, plan)
    assert f"~ setting tlsExpiryNotifyDays: {agency_days} → {sorted([*agency_days, day])}" in lines
    with connect(kuma.login) as session:  # the client goes: its day stays, as do the agency's
        sync(session, nothing_desired("certdays"), report=None)
    with connect(kuma.login) as session:
        assert session.settings()["tlsExpiryNotifyDays"] == sorted([*agency_days, day])


def test_clients_synced_in_one_batch_hold_what_each_sync_alone_would(kuma: Kuma, receiver: Receiver) -> None:
    """`lab up` syncs every client in one batch: one reading, one import, the settings merged."""
    plans = [
        client_plan("studio", "batcha"),
        client_plan("shop", "batchb"),
        client_plan("bakery", "batchc", lambda c: c.update(overrides={"monitoring": {"cert_expiry_warning": "9d"}})),
    ]
    states = [desired_state(plan, lab_alerting(receiver.url), loopback(plan)) for plan in plans]
    with connect(kuma.login) as session:
        with pytest.raises(ValueError, match="given more than once: batcha"):
            sync_clients(session, [states[0], states[1], states[0]], report=None)
        results = sync_clients(session, states, report=None)

    assert [r.client_id for r in results] == ["batcha", "batchb", "batchc"]
    for plan, state_, result in zip(plans, states, results, strict=True):
        assert set(state(kuma, plan.client.id)) == {m.key for m in state_.monitors}
        alone, _ = run_sync(kuma, receiver, plan)
        assert alone.changes == () and alone.writes == 0
        assert result.push_tokens and alone.push_tokens == result.push_tokens
    with connect(kuma.login) as session:
        days = set(session.settings()["tlsExpiryNotifyDays"])
    assert {plan.monitoring.cert_expiry_days for plan in plans} <= days and 9 in days


def test_dry_run_prints_and_changes_nothing(kuma: Kuma, receiver: Receiver) -> None:
    plan = client_plan("studio", "dry")
    run_sync(kuma, receiver, plan)
    with connect(kuma.login) as session:
        before = snapshot(session)

    upgraded = client_plan("studio", "dry", lambda config: config.update(tier="premium"))
    result, lines = run_sync(kuma, receiver, upgraded, dry_run=True)

    assert result.dry_run and result.writes == 0 and result.changes
    assert lines[-1].startswith(f"dry: would create {len(heartbeat_keys(upgraded) - heartbeat_keys(plan))}, update ")
    assert lines[:-1] == [str(change) for change in result.changes]
    assert any(line.startswith("~ monitor ") and "interval: 60 → 30" in line for line in lines)
    with connect(kuma.login) as session:
        assert snapshot(session) == before


def test_wrong_password_is_a_clear_error(kuma: Kuma) -> None:
    wrong = KumaLogin(kuma.login.url, kuma.login.username, "not-the-password")
    with (
        pytest.raises(KumaError, match=r"refused the login of 'admin': Incorrect username or password"),
        connect(wrong),
    ):
        pass


def test_unreachable_kuma_is_a_clear_error() -> None:
    nowhere = KumaLogin("http://127.0.0.1:9", "admin", "whatever")
    with pytest.raises(KumaError, match=r"cannot reach Uptime Kuma at http://127\.0\.0\.1:9"), connect(nowhere):
        pass


def test_the_servers_version_is_read_at_login_and_chooses_the_write_path(kuma: Kuma, receiver: Receiver) -> None:
    with connect(kuma.login) as session:
        assert session.version.text == kuma.version
        # The bulk import exists on 1.23 and the 2.0.0-dev.0 snapshot; 2.x stable adds one monitor at a time.
        assert session.version.bulk_import is (kuma.version != "2.5.3")
    plan = client_plan("bakery", "writepath")
    result, _ = run_sync(kuma, receiver, plan)
    monitors = state(kuma, "writepath")
    [site] = plan.sites  # one page check and a heartbeat per job
    assert len(monitors) == len(site.checks) + len(site.jobs) and result.writes > 0


def test_a_monthly_drills_heartbeat_fits_kumas_longest_interval_with_one_pending_retry(
    kuma: Kuma, receiver: Receiver
) -> None:
    """The premium tier's restore drill pushes once a month, longer than any interval Kuma takes: the
    monitor Kuma stores waits its longest interval, then one retry for the rest of the month."""
    plan = client_plan("shop", "monthly")
    addresses = {site.id: f"http://127.0.0.{n}:9" for n, site in enumerate(plan.sites, start=1)}
    run_sync(kuma, receiver, plan, addresses)
    monitors = state(kuma, "monthly")
    for site in plan.sites:
        drill = site.job("drill")
        m = monitors[f"{site.id} job drill"]
        assert m["type"] == MonitorType.PUSH
        assert (m["interval"], m["maxretries"]) == (MAX_INTERVAL_SECONDS, 1)
        assert m["interval"] + m["retryInterval"] == drill.push_interval_seconds
    again, _ = run_sync(kuma, receiver, plan, addresses)  # stored as desired: a second sync changes nothing
    assert again.changes == (), again.summary()
