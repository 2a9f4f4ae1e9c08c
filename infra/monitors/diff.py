"""Compare one reading of Uptime Kuma with a client's desired state: the changes, none applied.

`compare_clients` reads Kuma once (the reads side by side) and returns the `Work`: every
`Change` in the order it will apply, with what applying each needs. Only what
carestack owns is compared; a monitor's notifications attached by hand stay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from infra.kuma_client import KumaSession
from infra.monitors.desired import DesiredMonitor, DesiredNotification, DesiredState, status_page_fields
from infra.monitors.ownership import (
    KEY_TAG,
    OWNER_TAG,
    is_owned,
    maintenance_title,
    owner_tags,
    status_page_slug,
    tag_value,
)
from infra.monitors.retention import SETTING as RETENTION_SETTING
from infra.monitors.retention import kept_days, raised_retention


@dataclass(frozen=True)
class Change:
    action: str  # "create" | "update" | "delete"
    kind: str  # "monitor" | "notification" | "maintenance" | "status page" | "setting"
    name: str
    details: tuple[str, ...] = ()

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        return f"{sign} {self.kind} {self.name}" + (f": {'; '.join(self.details)}" if self.details else "")


def _normal(name: str, value: Any) -> Any:
    """Compare what Kuma returns with what we send: JSON text as data, numbers as numbers."""
    if name == "headers":
        return json.loads(value) if isinstance(value, str) and value.strip() else None
    if name == "description":
        return value or ""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return getattr(value, "value", value)


def field_diff(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (current.get(name), wanted)
        for name, wanted in fields.items()
        if _normal(name, current.get(name)) != _normal(name, wanted)
    }


def _show(value: Any) -> str:
    value = getattr(value, "value", value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (str, list, dict)) else str(value)


@dataclass
class Work:
    """What one sync will do, derived from one reading of Kuma; `changes` in the order they apply."""

    changes: list[Change] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    notification_saves: list[tuple[Change, int | None, DesiredNotification]] = field(default_factory=list)
    notification_deletes: list[tuple[Change, int]] = field(default_factory=list)
    deletes: list[tuple[Change, int]] = field(default_factory=list)
    creates: list[tuple[Change, DesiredMonitor]] = field(default_factory=list)
    adoptions: list[tuple[Change, int, list[dict[str, str]]]] = field(default_factory=list)  # id, tags to add
    updates: list[tuple[Change, dict[str, Any], DesiredMonitor]] = field(default_factory=list)
    maintenance: Change | None = None
    maintenance_id: int | None = None
    status_page: Change | None = None
    status_page_have: dict[str, Any] | None = None  # the page as read, with its sections
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the owned monitor kept


def _plan_settings(desired: DesiredState, settings: Mapping[str, Any], work: Work) -> None:
    days = [int(d) for d in settings.get("tlsExpiryNotifyDays") or []]
    if desired.cert_expiry_days is not None and desired.cert_expiry_days not in days:
        new = sorted({*days, desired.cert_expiry_days})
        work.settings = {**(work.settings or settings), "tlsExpiryNotifyDays": new}
        work.changes.append(Change("update", "setting", "tlsExpiryNotifyDays", (f"{days} → {new}",)))
    keep = raised_retention(settings) if desired.monitors else None
    if keep is not None:
        work.settings = {**(work.settings or settings), RETENTION_SETTING: keep}
        detail = f"{kept_days(settings)} → {keep} days (the SLA report reads the previous and current month)"
        work.changes.append(Change("update", "setting", RETENTION_SETTING, (detail,)))


def _plan_notifications(desired: DesiredState, current: list[dict[str, Any]], work: Work) -> None:
    by_name = {n["name"]: n for n in current if str(n.get("name", "")).startswith(desired.owned_prefix)}
    for wanted in desired.notifications:
        have = by_name.pop(wanted.name, None)
        if have is None:
            change = Change("create", "notification", wanted.name, (f"via {wanted.fields['type']}",))
            work.notification_saves.append((change, None, wanted))
            continue
        changed = sorted(field_diff(have, wanted.fields))
        if changed:  # provider fields may be secret: name them, never show them
            change = Change("update", "notification", wanted.name, (f"changed {', '.join(changed)}",))
            work.notification_saves.append((change, int(have["id"]), wanted))
    for name, stale in sorted(by_name.items()):
        work.notification_deletes.append((Change("delete", "notification", name), int(stale["id"])))
    work.changes += [c for c, _, _ in work.notification_saves] + [c for c, _ in work.notification_deletes]


def our_notifications(notification_ids: Any, names: Mapping[int, str], prefix: str, *, ours: bool = True) -> list[int]:
    """The ids among `notification_ids` that are (or, with ours=False, are not) carestack's for this client."""
    return sorted(int(i) for i in notification_ids or [] if names.get(int(i), "").startswith(prefix) is ours)


def _plan_monitors(desired: DesiredState, monitors: list[dict[str, Any]], names: Mapping[int, str], work: Work) -> None:
    owned = sorted((m for m in monitors if is_owned(m, desired.client_id)), key=lambda m: int(m["id"]))
    wanted_keys = {m.key for m in desired.monitors}
    keyless = []
    for monitor in owned:  # the oldest monitor of a key is kept; copies and leftovers go
        key = tag_value(monitor, KEY_TAG)
        if key is None:
            keyless.append(monitor)
        elif key in wanted_keys and key not in work.existing:
            work.existing[key] = monitor
        else:
            work.deletes.append((Change("delete", "monitor", str(monitor["name"])), int(monitor["id"])))
    untagged = [m for m in monitors if tag_value(m, OWNER_TAG) is None and tag_value(m, KEY_TAG) is None]
    adopted = _adopt(desired, sorted([*keyless, *untagged], key=lambda m: int(m["id"])), work)
    for monitor in keyless:
        if int(monitor["id"]) not in adopted:
            work.deletes.append((Change("delete", "monitor", str(monitor["name"])), int(monitor["id"])))
    for wanted in desired.monitors:
        have = work.existing.get(wanted.key)
        if have is None:
            kind = "push" if wanted.job else "keyword"
            change = Change(
                "create", "monitor", wanted.fields["name"], (f"{kind}, every {wanted.fields['interval']}s",)
            )
            work.creates.append((change, wanted))
            continue
        details = [
            f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in field_diff(have, wanted.fields).items()
        ]
        ours = {names[i] for i in our_notifications(have.get("notificationIDList"), names, desired.owned_prefix)}
        if ours != set(wanted.notifications):
            added, removed = len(set(wanted.notifications) - ours), len(ours - set(wanted.notifications))
            details.append(f"notifications: +{added} -{removed}")
        if wanted.job and not have.get("pushToken"):
            details.append("push token: new")
        if details:
            work.updates.append((Change("update", "monitor", wanted.fields["name"], tuple(details)), have, wanted))
    work.changes += [c for c, _ in work.deletes] + [c for c, _, _ in work.adoptions]
    work.changes += [c for c, _ in work.creates] + [c for c, _, _ in work.updates]


def _adopt(desired: DesiredState, candidates: list[dict[str, Any]], work: Work) -> set[int]:
    """Monitors a sync created whose ownership tags never came, taken back instead of created again.

    On Kuma 2.x a monitor is an `add` and then its tags: a sync cut off in between leaves a monitor
    without them (or with the owner tag alone). It is carestack's own by its name and description,
    which name the client's site and care plan; the oldest such monitor of a desired key that no
    tagged monitor holds gets its tags. Untagged monitors matching nothing stay foreign.
    """
    adopted: set[int] = set()
    for wanted in desired.monitors:
        if wanted.key in work.existing:
            continue
        match = next(
            (
                m
                for m in candidates
                if int(m["id"]) not in adopted
                and m.get("name") == wanted.fields["name"]
                and m.get("type") == wanted.fields["type"]
                and (m.get("description") or "") == wanted.fields["description"]
            ),
            None,
        )
        if match is None:
            continue
        have = {t.get("name") for t in match.get("tags") or []}
        missing = [t for t in owner_tags(desired.client_id, wanted.key) if t["name"] not in have]
        change = Change("update", "monitor", wanted.fields["name"], ("ownership tags restored",))
        work.adoptions.append((change, int(match["id"]), missing))
        work.existing[wanted.key] = match
        adopted.add(int(match["id"]))
    return adopted


def _plan_maintenance(desired: DesiredState, have: dict[str, Any] | None, attached_ids: set[int], work: Work) -> None:
    title = maintenance_title(desired.client_id)
    work.maintenance_id = int(have["id"]) if have else None
    wanted = desired.maintenance
    if wanted is None:
        if have is not None:
            work.maintenance = Change("delete", "maintenance", title)
    elif have is None:
        work.maintenance = Change(
            "create", "maintenance", title, (f"cron {wanted['cron']} {wanted['timezoneOption']}",)
        )
    else:
        compared = ("description", "strategy", "active", "cron", "durationMinutes", "timezoneOption")
        diff = field_diff(have, {k: wanted[k] for k in compared})
        details = [f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in diff.items()]
        page_keys = {m.key for m in desired.monitors if m.job is None}
        covered = {key for key, m in work.existing.items() if int(m["id"]) in attached_ids}
        if covered != page_keys:
            details.append(f"monitors covered: {len(covered)} → {len(page_keys)}")
        if details:
            work.maintenance = Change("update", "maintenance", title, tuple(details))
    if work.maintenance:
        work.changes.append(work.maintenance)


def _listed(have: Mapping[str, Any]) -> list[tuple[str, list[int]]]:
    """The page's sections as Kuma shows them: (heading, monitor ids)."""
    return [
        (str(group["name"]), [int(m["id"]) for m in group.get("monitorList") or []])
        for group in have.get("publicGroupList") or []
    ]


def _plan_status_page(desired: DesiredState, have: dict[str, Any] | None, work: Work) -> None:
    slug = status_page_slug(desired.client_id)
    work.status_page_have = have
    wanted = desired.status_page
    if wanted is None:
        if have is not None:
            work.status_page = Change("delete", "status page", slug)
    else:
        count = sum(len(keys) for _, keys in wanted.sections)
        shown = f"{len(wanted.sections)} sections, {count} monitors"
        if have is None:
            work.status_page = Change("create", "status page", slug, (shown,))
        else:
            diff = field_diff(have, status_page_fields(wanted))
            details = [f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in diff.items()]
            # A monitor still to be created has no id yet: the listing differs.
            listing = [
                (heading, [int(work.existing[k]["id"]) if k in work.existing else -1 for k in keys])
                for heading, keys in wanted.sections
            ]
            current = _listed(have)
            if current != listing:
                listed = {i for _, ids in current for i in ids}
                wanted_ids = [i for _, ids in listing for i in ids]
                added = sum(1 for i in wanted_ids if i not in listed)
                removed = len(listed - set(wanted_ids))
                details.append(f"listing: +{added} -{removed} monitors" if added or removed else "listing: reordered")
            if details:
                work.status_page = Change("update", "status page", slug, tuple(details))
    if work.status_page:
        work.changes.append(work.status_page)


def compare_clients(session: KumaSession, states: Sequence[DesiredState]) -> list[Work]:
    """Read Kuma once and work out every change for each client (nothing is written).

    What all clients share (settings, notifications, monitors, maintenance windows) is read once.
    The reads run side by side: Kuma answers the small ones while it builds the monitor list, which
    takes seconds at hundreds of monitors. A client's settings changes are planned on top of the
    previous client's, so one save at the end holds them all.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        wants_settings = [d.cert_expiry_days is not None or bool(d.monitors) for d in states]
        settings = pool.submit(session.settings) if any(wants_settings) else None
        maintenances = pool.submit(session.maintenances)
        pages = [pool.submit(session.status_page, status_page_slug(d.client_id)) for d in states]
        monitors = pool.submit(session.monitors)
        notifications = session.notifications()
        names = {int(n["id"]): str(n["name"]) for n in notifications}
        windows: list[dict[str, Any] | None] = []
        for desired in states:
            title = maintenance_title(desired.client_id)
            windows.append(next((m for m in maintenances.result() if m.get("title") == title), None))
        attached = [pool.submit(session.maintenance_monitors, int(have["id"])) if have else None for have in windows]
        planned = settings.result() if settings is not None else None
        works = []
        for desired, wants, page, window, covered in zip(states, wants_settings, pages, windows, attached, strict=True):
            work = Work()
            if planned is not None and wants:
                _plan_settings(desired, planned, work)
                planned = work.settings or planned
            _plan_notifications(desired, notifications, work)
            _plan_monitors(desired, monitors.result(), names, work)
            _plan_maintenance(desired, window, covered.result() if covered else set(), work)
            _plan_status_page(desired, page.result(), work)
            works.append(work)
    return works
