"""Apply a compared `Work` to Uptime Kuma: notifications, monitors, maintenance, status page.

Monitors are created the fastest way the server's version has, edited and deleted
pipelined (see `infra.kuma_client`); fields the bulk import cannot set get one edit
afterwards.
Push tokens are chosen here; a monitor that has one keeps it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from infra.kuma_client import KumaError, KumaSession
from infra.monitors.desired import MAX_REDIRECTS, DesiredMonitor, DesiredState, status_page_fields
from infra.monitors.diff import Change, Work, field_diff, our_notifications
from infra.monitors.ownership import KEY_TAG, is_owned, owner_tags, status_page_slug, tag_value

PUSH_TOKEN_LENGTH = 20  # push_token is VARCHAR(20); 20 alphanumerics are 119 random bits
# Fields every imported monitor needs even where they mean nothing (NOT NULL columns).
_IMPORT_DEFAULTS: dict[str, Any] = {
    "active": 1,
    "method": "GET",
    "ignoreTls": False,
    "upsideDown": False,
    "invertKeyword": False,
    "maxredirects": MAX_REDIRECTS,
    "accepted_statuscodes": ["200-299"],
    "resendInterval": 0,
    "timeout": 48,
}


def _new_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(PUSH_TOKEN_LENGTH))


def _import_record(monitor: DesiredMonitor, client_id: str, notification_ids: list[int]) -> dict[str, Any]:
    record: dict[str, Any] = {**_IMPORT_DEFAULTS, **monitor.fields}
    if monitor.job:
        record["pushToken"] = _new_token()
    record["notificationIDList"] = {str(i): True for i in notification_ids}
    record["tags"] = owner_tags(client_id, monitor.key)
    return record


def _edited(
    have: dict[str, Any], wanted: DesiredMonitor, ours: list[int], names: Mapping[int, str], prefix: str
) -> dict[str, Any]:
    """The full record Kuma's editMonitor wants: as read, with our fields and our notifications.

    Notifications someone attached by hand (not carestack's) stay attached.
    """
    # `names` holds every notification that exists now: one deleted by this sync is no longer kept.
    kept = [i for i in our_notifications(have.get("notificationIDList"), names, prefix, ours=False) if i in names]
    record = {**have, **wanted.fields}
    record["notificationIDList"] = {str(i): True for i in sorted({*kept, *ours})}
    if wanted.job and not have.get("pushToken"):
        record["pushToken"] = _new_token()
    return record


def _created(session: KumaSession, desired: DesiredState, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The freshly imported monitors, by key, once Kuma's list shows all of them."""

    def owned_keys(listed: list[dict[str, Any]]) -> set[str | None]:
        return {tag_value(m, KEY_TAG) for m in listed if is_owned(m, desired.client_id)}

    listed = session.wait_for_monitors(lambda monitors: keys <= owned_keys(monitors))
    found: dict[str, dict[str, Any]] = {}
    for monitor in sorted(listed, key=lambda m: int(m["id"])):
        key = tag_value(monitor, KEY_TAG)
        if key in keys and key not in found and is_owned(monitor, desired.client_id):
            found[key] = monitor
    return found


def apply_work(
    session: KumaSession, desired: DesiredState, work: Work, done: Callable[[Change], None]
) -> dict[str, dict[str, Any]]:
    """Apply `work` in the order of `work.changes`; returns the client's monitors by key afterwards."""
    if work.settings is not None:
        session.save_settings(work.settings)
        done(work.changes[0])
    names = {int(n["id"]): str(n["name"]) for n in session.notifications()}
    for change, notification_id, notification in work.notification_saves:
        names[session.save_notification(notification.fields, notification_id)] = notification.name
        done(change)
    for change, notification_id in work.notification_deletes:
        session.delete_notification(notification_id)
        names.pop(notification_id, None)
        done(change)
    ids = {name: i for i, name in names.items()}

    def routed(monitor: DesiredMonitor) -> list[int]:
        return sorted(ids[name] for name in monitor.notifications)

    session.delete_monitors([monitor_id for _, monitor_id in work.deletes])
    for change, _ in work.deletes:
        done(change)
    session.add_monitor_tags([(monitor_id, tags) for _, monitor_id, tags in work.adoptions])
    for change, _, _ in work.adoptions:
        done(change)
    final = dict(work.existing)
    session.create_monitors([_import_record(m, desired.client_id, routed(m)) for _, m in work.creates])
    if work.creates:
        final.update(_created(session, desired, {m.key for _, m in work.creates}))
    for change, _ in work.creates:
        done(change)
    # Edits: changed monitors, and created ones whose fields the import could not set.
    edits = [(have, wanted) for _, have, wanted in work.updates]
    edits += [(final[m.key], m) for _, m in work.creates if field_diff(final[m.key], m.fields)]
    records = [_edited(have, wanted, routed(wanted), names, desired.owned_prefix) for have, wanted in edits]
    session.edit_monitors(records)
    for (_, wanted), record in zip(edits, records, strict=True):
        final[wanted.key] = record
    for change, _, _ in work.updates:
        done(change)

    if work.maintenance is not None:
        if desired.maintenance is None:
            if work.maintenance_id is not None:
                session.delete_maintenance(work.maintenance_id)
        else:
            maintenance_id = session.save_maintenance(desired.maintenance, work.maintenance_id)
            page_ids = sorted(int(final[m.key]["id"]) for m in desired.monitors if m.job is None)
            session.set_maintenance_monitors(maintenance_id, page_ids)
        done(work.maintenance)
    if work.status_page is not None:
        _apply_status_page(session, desired, work.status_page_have, final)
        done(work.status_page)
    return final


def _apply_status_page(
    session: KumaSession, desired: DesiredState, have: dict[str, Any] | None, final: Mapping[str, Mapping[str, Any]]
) -> None:
    """Create, save or delete the client's status page; settings carestack doesn't manage
    (logo, theme, custom CSS, domain names) stay as they are."""
    slug = status_page_slug(desired.client_id)
    page = desired.status_page
    if page is None:
        session.delete_status_page(slug)
        return
    if have is None:
        session.add_status_page(slug, page.title)
        have = session.status_page(slug)
        if have is None:
            raise KumaError(f"Uptime Kuma did not keep the new status page {slug}")
    section_ids = {str(group["name"]): group["id"] for group in have.get("publicGroupList") or []}
    groups = [
        {"id": section_ids.get(heading), "name": heading, "monitorList": [{"id": int(final[k]["id"])} for k in keys]}
        for heading, keys in page.sections
    ]
    config = {k: v for k, v in have.items() if k != "publicGroupList"}
    session.save_status_page(slug, {**config, **status_page_fields(page)}, groups)
