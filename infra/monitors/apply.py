"""Apply a compared `Work` to Uptime Kuma: notifications, monitors, maintenance, status page.

Monitors are created the fastest way the server's version has, edited and deleted
pipelined (see `infra.kuma_client`); fields the bulk import cannot set get one edit
afterwards. Several clients are applied together, each kind of write once for all.
Push tokens are chosen here; a monitor that has one keeps it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping, Sequence
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
# Fields Kuma's bulk import (1.23, 2.0.0-dev.0) does not copy, with what the new monitor holds instead
# (the column's default); such a monitor gets one edit after the import.
IMPORT_LEAVES: dict[str, Any] = {"expiryNotification": True}


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


def _created(session: KumaSession, wanted: Mapping[str, set[str]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The freshly imported monitors, client -> key -> monitor, once Kuma's list shows all of them."""

    def owned_keys(listed: list[dict[str, Any]], client_id: str) -> set[str | None]:
        return {tag_value(m, KEY_TAG) for m in listed if is_owned(m, client_id)}

    listed = session.wait_for_monitors(
        lambda monitors: all(keys <= owned_keys(monitors, client) for client, keys in wanted.items())
    )
    found: dict[str, dict[str, dict[str, Any]]] = {client: {} for client in wanted}
    for monitor in sorted(listed, key=lambda m: int(m["id"])):
        key = tag_value(monitor, KEY_TAG)
        for client, keys in wanted.items():
            if key in keys and key not in found[client] and is_owned(monitor, client):
                found[client][key] = monitor
    return found


def _import_leaves_unset(monitor: DesiredMonitor) -> bool:
    """Whether the bulk import will leave one of the monitor's fields other than wanted."""
    return any(monitor.fields.get(name, value) != value for name, value in IMPORT_LEAVES.items())


def apply_clients(
    session: KumaSession, works: Sequence[tuple[DesiredState, Work]], done: Callable[[Change], None]
) -> list[dict[str, dict[str, Any]]]:
    """Apply each client's compared `Work` (from one `compare_clients`); each client's monitors by key afterwards.

    Each kind of write is made for all clients at once: Kuma rebuilds and sends its whole monitor
    list after every import and every edit, so one import for every client's new monitors costs
    one rebuild where one per client cost one each. Within a client, changes land in the order
    of its `work.changes`.
    """
    settings = [w.settings for _, w in works if w.settings is not None]
    if settings:  # planned cumulatively: the last holds every client's
        session.save_settings(settings[-1])
        for _, work in works:
            for change in work.changes:
                if change.kind == "setting":
                    done(change)
    names = {int(n["id"]): str(n["name"]) for n in session.notifications()}
    for _, work in works:
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

    session.delete_monitors([monitor_id for _, w in works for _, monitor_id in w.deletes])
    session.add_monitor_tags([(monitor_id, tags) for _, w in works for _, monitor_id, tags in w.adoptions])
    for _, work in works:
        for change, _ in work.deletes:
            done(change)
        for change, _, _ in work.adoptions:
            done(change)
    finals = [dict(work.existing) for _, work in works]
    creates = [(n, change, m) for n, (_, work) in enumerate(works) for change, m in work.creates]
    # The monitors the import cannot fully set go first, and get their edit while Kuma's list is short.
    unfinished = [_import_leaves_unset(m) for _, _, m in creates]
    first = [c for c, later in zip(creates, unfinished, strict=True) if later]
    for batch in (first, [c for c, later in zip(creates, unfinished, strict=True) if not later]):
        if not batch:
            continue
        session.create_monitors([_import_record(m, works[n][0].client_id, routed(m)) for n, _, m in batch])
        wanted: dict[str, set[str]] = {}
        for n, _, m in batch:
            wanted.setdefault(works[n][0].client_id, set()).add(m.key)
        created = _created(session, wanted)
        for n, _, m in batch:
            finals[n][m.key] = created[works[n][0].client_id][m.key]
        for _, change, _ in batch:
            done(change)
        fixes = [(n, m) for n, _, m in batch if field_diff(finals[n][m.key], m.fields)]
        _edit(session, works, finals, [(n, finals[n][m.key], m) for n, m in fixes], routed, names)
    updates = [(n, have, wanted) for n, (_, work) in enumerate(works) for _, have, wanted in work.updates]
    _edit(session, works, finals, updates, routed, names)
    for _, work in works:
        for change, _, _ in work.updates:
            done(change)

    for (desired, work), final in zip(works, finals, strict=True):
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
    return finals


def _edit(
    session: KumaSession,
    works: Sequence[tuple[DesiredState, Work]],
    finals: list[dict[str, dict[str, Any]]],
    edits: Sequence[tuple[int, dict[str, Any], DesiredMonitor]],
    routed: Callable[[DesiredMonitor], list[int]],
    names: Mapping[int, str],
) -> None:
    """Save the edited monitors (client index, as read, as wanted), pipelined; `finals` follows."""
    records = [_edited(have, wanted, routed(wanted), names, works[n][0].owned_prefix) for n, have, wanted in edits]
    session.edit_monitors(records)
    for (n, _, wanted), record in zip(edits, records, strict=True):
        finals[n][wanted.key] = record


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
