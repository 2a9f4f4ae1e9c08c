"""Monitors as code: a client's CarePlan reconciled into Uptime Kuma.

Desired state, from the CarePlan only (`desired_state`):
- per site, one HTTP keyword monitor per configured page: the tier's interval,
  retries, retry interval and timeout, the page's status and required text;
- per https site, one certificate-expiry warning: Kuma warns per monitor, and
  every page of a site shares its certificate, so only the monitor of the
  site's first page has `expiryNotification` (the others would repeat the
  same warning, one per page; the bulk import always switches it on, so
  those others get one edit after they are created);
- per site, one push monitor per agent job (backup, prune, check, update)
  whose interval is the job's `push_interval_seconds` (its period plus grace):
  a job that stops reporting turns its monitor down;
- one notification per tier channel and reachable contact (e-mail via the
  agency's SMTP, SMS via its gateway, the contact's webhook: `infra.alerting`),
  attached to every monitor of the client;
- one recurring maintenance window for the tier's update window in the
  client's time zone, covering the page monitors (planned update minutes are
  not downtime; a job that fails to report still alerts);
- per client, a group: the status page `carestack-<client id>` with one
  section per site listing that site's monitors (see Groups).

Where a site is reached differs per realization: production checks
`check.url`; the lab passes `site_addresses` {site id: "http://10.77.0.10"}
and the monitor requests that address with the site's domain as Host header.

Ownership: every monitor carestack creates carries the tag `carestack` with
the client id as value, and `carestack-key` with a key that is stable per
desired monitor ("studio-web page /projects/"). A monitor without the
client's tag is never edited or deleted. Notifications and the maintenance
window (Kuma gives them no tags) are carestack's by their names, which start
with "carestack <client id> · "; the status page by its slug.

Groups: the client's group is a Kuma status page, not a GROUP monitor. Kuma
2.0.0-dev.0 sets a monitor's `parent` only through `add`/`editMonitor`, each
of which rebuilds and broadcasts the whole monitor list before it answers
(measured at 500 monitors: 2.3 to 3.8 s per call, depending on the machine's
load; `bench/bench_kuma_sync.py`), and the bulk import that makes creation
fast copies a fixed list of fields that lacks `parent` (server/server.js,
uploadBackup), so neither one import nor an import of the groups followed by
one of the children can place a monitor in a group. Real groups would cost
one full-list rebuild per monitor at every onboarding (500 monitors: about
20 to 30 minutes instead of seconds). A status page costs two requests when
created (`addStatusPage`, `saveStatusPage`; 0.4 to 0.8 s with 500 monitors
listed) and one when its listing changes (0.5 s), whatever the number of
monitors, and reading it adds nothing measurable to a no-op sync; it is also
what the agency shares with the client: a public page (at
/status/carestack-<client id>) showing each site's checks and job heartbeats
by name and state, never URLs, tags or tokens. Its title, description,
sections and listing are carestack's; logo, theme, custom CSS and domain
names set by hand stay. The `carestack: <client>` tag still selects a
client's monitors in Kuma's monitor list.

Kuma's certificate warning days (`tlsExpiryNotifyDays`) are one global
setting of the whole Kuma. The sync adds the tier's day when it is missing
and never removes a day, nor restores the list when a client goes: on an
agency's shared Kuma the other days may be the agency's own or another
tier's, and Kuma cannot say who added which. An added day only adds one
warning, on that day, to every monitor that warns (the agency's own too);
it takes no warning away.

Sync (`sync`): read Kuma once, compute the changes, print them, apply them
unless `dry_run`: create what is missing (one bulk import), edit only
monitors whose managed fields differ, delete owned monitors no longer
desired. A second sync finds nothing to do and sends nothing. An interrupted
sync is completed by the next: every created monitor is found again by its
key tag, never created twice. Push tokens are chosen here, kept across syncs,
returned in `SyncResult.push_tokens` and never printed.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from infra.alerting import AlertingConfig, provider_config, recipients
from infra.kuma_client import KumaError, KumaSession
from infra.plan import CarePlan, CheckPlan, JobPlan, SitePlan

OWNER_TAG = "carestack"
KEY_TAG = "carestack-key"
STATUS_PAGE_PREFIX = "carestack-"
TAG_COLOR = "#0f766e"
# Kuma's limits (server/model/monitor.js validate(), db/knex_init_db.js column sizes).
MIN_INTERVAL_SECONDS = 20
MAX_INTERVAL_SECONDS = 2073600
MAX_NAME = 150
MAX_TITLE = 255  # status_page.title, group.name
MAX_TAG_VALUE = 255
MAX_KEYWORD = 255
PUSH_TOKEN_LENGTH = 20  # push_token is VARCHAR(20); 20 alphanumerics are 119 random bits
MAX_REDIRECTS = 10  # Kuma's default: a page that moved (/cart -> /cart/) is still checked
_WEEKDAY_CRON = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}
_ADDRESS = re.compile(r"^https?://[^/\s]+$")
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


class KumaPlanError(ValueError):
    """The desired state can't be realized in Kuma; raised before anything changes."""


# -- desired state ----------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredMonitor:
    key: str
    site_id: str
    job: str | None  # the agent job a push monitor listens for; None for a page check
    fields: dict[str, Any]  # the Kuma fields carestack manages on this monitor


@dataclass(frozen=True)
class DesiredNotification:
    name: str
    fields: dict[str, Any]  # Kuma provider fields, secrets included: never printed


@dataclass(frozen=True)
class DesiredStatusPage:
    slug: str
    title: str
    description: str
    sections: tuple[tuple[str, tuple[str, ...]], ...]  # (heading, keys of the monitors listed), in page order


@dataclass(frozen=True)
class DesiredState:
    client_id: str
    monitors: tuple[DesiredMonitor, ...]
    notifications: tuple[DesiredNotification, ...]
    maintenance: dict[str, Any] | None
    cert_expiry_days: int | None
    status_page: DesiredStatusPage | None = None

    @property
    def owned_prefix(self) -> str:
        return owned_prefix(self.client_id)


def owned_prefix(client_id: str) -> str:
    return f"carestack {client_id} · "


def maintenance_title(client_id: str) -> str:
    return f"{owned_prefix(client_id)}update window"


def status_page_slug(client_id: str) -> str:
    """The client's status page (client ids are Kuma-valid slug parts: lower-case letters and digits)."""
    return f"{STATUS_PAGE_PREFIX}{client_id}"


def _description(plan: CarePlan) -> str:
    client = plan.client
    return f"Managed by carestack from the care plan of {client.name} ({client.tier_title}); edits are overwritten."


def _page(
    plan: CarePlan, site: SitePlan, check: CheckPlan, address: str | None, *, cert_warning: bool
) -> DesiredMonitor:
    mon = plan.monitoring
    url, headers = (check.url, None) if address is None else (address + check.path, {"Host": site.domain})
    return DesiredMonitor(
        key=f"{site.id} page {check.path}",
        site_id=site.id,
        job=None,
        fields={
            "type": "keyword",
            "name": f"{site.id} · {check.path}",
            "description": _description(plan),
            "url": url,
            "method": "GET",
            "headers": json.dumps(headers) if headers else None,
            "keyword": check.keyword,
            "invertKeyword": False,
            "accepted_statuscodes": [str(check.status)],
            "interval": mon.interval_seconds,
            "retryInterval": mon.retry_interval_seconds,
            "maxretries": mon.retries,
            "timeout": mon.timeout_seconds,
            "expiryNotification": cert_warning,
            "ignoreTls": False,
            "upsideDown": False,
            "maxredirects": MAX_REDIRECTS,
            "resendInterval": 0,
        },
    )


def _push(plan: CarePlan, site: SitePlan, job: JobPlan) -> DesiredMonitor:
    return DesiredMonitor(
        key=f"{site.id} job {job.name}",
        site_id=site.id,
        job=job.name,
        fields={
            "type": "push",
            "name": f"{site.id} · {job.name} job",
            "description": _description(plan),
            "interval": job.push_interval_seconds,
            "retryInterval": job.push_interval_seconds,
            "maxretries": 0,
            "upsideDown": False,
            "resendInterval": 0,
        },
    )


def _status_page(plan: CarePlan, monitors: list[DesiredMonitor]) -> DesiredStatusPage | None:
    """One section per site (its domain), listing the site's page checks and job heartbeats."""
    sections = [(site.domain, tuple(m.key for m in monitors if m.site_id == site.id)) for site in plan.sites]
    listed = tuple((heading, keys) for heading, keys in sections if keys)
    if not listed:
        return None
    client = plan.client
    return DesiredStatusPage(
        slug=status_page_slug(client.id),
        title=client.name,
        description=(
            f"Availability of the sites of {client.name} and the heartbeats of their backup and maintenance "
            f"jobs ({client.tier_title})."
        ),
        sections=listed,
    )


def _maintenance(plan: CarePlan) -> dict[str, Any]:
    window = plan.monitoring.maintenance
    hour, minute = (int(part) for part in window.start.split(":"))
    return {
        "title": maintenance_title(plan.client.id),
        "description": f"The {plan.client.tier_title} update window; managed by carestack.",
        "strategy": "cron",
        "active": True,
        "cron": f"{minute} {hour} * * {_WEEKDAY_CRON[window.weekday]}",
        "durationMinutes": window.duration_minutes,
        "timezoneOption": plan.client.timezone,
        "intervalDay": 1,
        "dateRange": [],
        "weekdays": [],
        "daysOfMonth": [],
        "timeRange": [{"hours": hour, "minutes": minute}, {"hours": hour, "minutes": minute}],
    }


def _check_addresses(plan: CarePlan, site_addresses: Mapping[str, str]) -> list[str]:
    problems = []
    known = {site.id for site in plan.sites}
    for site_id, address in site_addresses.items():
        if site_id not in known:
            problems.append(f"site_addresses.{site_id}: no such site in the plan (sites: {', '.join(sorted(known))})")
        elif not _ADDRESS.match(address):
            problems.append(f"site_addresses.{site_id}: expected a base URL such as http://10.77.0.10, got {address!r}")
    return problems


def _check_monitor(monitor: DesiredMonitor) -> list[str]:
    fields, where = monitor.fields, f"monitor {monitor.key!r}"
    problems = []
    for name in ("interval", "retryInterval"):
        if not MIN_INTERVAL_SECONDS <= fields[name] <= MAX_INTERVAL_SECONDS:
            problems.append(
                f"{where}: {name} {fields[name]}s is outside Kuma's {MIN_INTERVAL_SECONDS}..{MAX_INTERVAL_SECONDS}s"
            )
    if len(fields["name"]) > MAX_NAME:
        problems.append(
            f"{where}: the name is longer than Kuma's {MAX_NAME} characters; use a shorter site name or path"
        )
    if len(monitor.key) > MAX_TAG_VALUE:
        problems.append(f"{where}: the key is longer than Kuma's {MAX_TAG_VALUE} characters; use a shorter path")
    if len(fields.get("keyword") or "") > MAX_KEYWORD:
        problems.append(f"{where}: the keyword is longer than Kuma's {MAX_KEYWORD} characters")
    return problems


def desired_state(
    plan: CarePlan, alerting: AlertingConfig, site_addresses: Mapping[str, str] | None = None
) -> DesiredState:
    """What Kuma should hold for this client; KumaPlanError lists every problem at once."""
    site_addresses = dict(site_addresses or {})
    problems = _check_addresses(plan, site_addresses)
    monitors: list[DesiredMonitor] = []
    for site in plan.sites:
        address = site_addresses.get(site.id)
        # One certificate warning per site: every page shares the site's certificate.
        monitors += [
            _page(plan, site, check, address, cert_warning=site.https and n == 0) for n, check in enumerate(site.checks)
        ]
        monitors += [_push(plan, site, job) for job in site.jobs]
    for monitor in monitors:
        problems += _check_monitor(monitor)
    if len(plan.client.name) > MAX_TITLE:
        problems.append(f"client.name: longer than the {MAX_TITLE} characters of a Kuma status page title")
    notifications = []
    for channel, contact in recipients(plan.monitoring.channels, plan.client.contacts):
        try:
            fields = provider_config(alerting, plan.client.id, channel, contact)
        except ValueError as exc:
            problems.append(f"notification {channel} to {contact.name}: {exc}")
            continue
        name = f"{owned_prefix(plan.client.id)}{channel} · {contact.name}"
        notifications.append(DesiredNotification(name, {**fields, "name": name, "isDefault": False}))
    if problems:
        raise KumaPlanError(f"monitors of {plan.client.id}: " + "; ".join(problems))
    return DesiredState(
        plan.client.id,
        tuple(monitors),
        tuple(notifications),
        _maintenance(plan),
        plan.monitoring.cert_expiry_days,
        _status_page(plan, monitors),
    )


def nothing_desired(client_id: str) -> DesiredState:
    """The state that removes everything carestack owns for a client."""
    return DesiredState(client_id, (), (), None, None)


# -- comparing --------------------------------------------------------------------------


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


def _field_diff(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        name: (current.get(name), wanted)
        for name, wanted in fields.items()
        if _normal(name, current.get(name)) != _normal(name, wanted)
    }


def _show(value: Any) -> str:
    value = getattr(value, "value", value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (str, list, dict)) else str(value)


def _tag(monitor: Mapping[str, Any], name: str) -> str | None:
    return next((str(t.get("value")) for t in monitor.get("tags") or [] if t.get("name") == name), None)


def is_owned(monitor: Mapping[str, Any], client_id: str) -> bool:
    return any(t.get("name") == OWNER_TAG and t.get("value") == client_id for t in monitor.get("tags") or [])


@dataclass
class _Work:
    """What one sync will do, derived from one reading of Kuma; `changes` in the order they apply."""

    changes: list[Change] = field(default_factory=list)
    settings: dict[str, Any] | None = None
    notification_saves: list[tuple[Change, int | None, DesiredNotification]] = field(default_factory=list)
    notification_deletes: list[tuple[Change, int]] = field(default_factory=list)
    deletes: list[tuple[Change, int]] = field(default_factory=list)
    creates: list[tuple[Change, DesiredMonitor]] = field(default_factory=list)
    updates: list[tuple[Change, dict[str, Any], DesiredMonitor]] = field(default_factory=list)
    maintenance: Change | None = None
    maintenance_id: int | None = None
    status_page: Change | None = None
    status_page_have: dict[str, Any] | None = None  # the page as read, with its sections
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the owned monitor kept


def _plan_settings(desired: DesiredState, settings: Mapping[str, Any], work: _Work) -> None:
    days = [int(d) for d in settings.get("tlsExpiryNotifyDays") or []]
    if desired.cert_expiry_days is not None and desired.cert_expiry_days not in days:
        new = sorted({*days, desired.cert_expiry_days})
        work.settings = {**settings, "tlsExpiryNotifyDays": new}
        work.changes.append(Change("update", "setting", "tlsExpiryNotifyDays", (f"{days} → {new}",)))


def _plan_notifications(desired: DesiredState, current: list[dict[str, Any]], work: _Work) -> None:
    by_name = {n["name"]: n for n in current if str(n.get("name", "")).startswith(desired.owned_prefix)}
    for wanted in desired.notifications:
        have = by_name.pop(wanted.name, None)
        if have is None:
            change = Change("create", "notification", wanted.name, (f"via {wanted.fields['type']}",))
            work.notification_saves.append((change, None, wanted))
            continue
        changed = sorted(_field_diff(have, wanted.fields))
        if changed:  # provider fields may be secret: name them, never show them
            change = Change("update", "notification", wanted.name, (f"changed {', '.join(changed)}",))
            work.notification_saves.append((change, int(have["id"]), wanted))
    for name, stale in sorted(by_name.items()):
        work.notification_deletes.append((Change("delete", "notification", name), int(stale["id"])))
    work.changes += [c for c, _, _ in work.notification_saves] + [c for c, _ in work.notification_deletes]


def _ours(notification_ids: Any, names: Mapping[int, str], prefix: str, *, ours: bool = True) -> list[int]:
    """The ids among `notification_ids` that are (or, with ours=False, are not) carestack's for this client."""
    return sorted(int(i) for i in notification_ids or [] if names.get(int(i), "").startswith(prefix) is ours)


def _plan_monitors(
    desired: DesiredState, monitors: list[dict[str, Any]], names: Mapping[int, str], work: _Work
) -> None:
    owned = sorted((m for m in monitors if is_owned(m, desired.client_id)), key=lambda m: int(m["id"]))
    wanted_keys = {m.key for m in desired.monitors}
    for monitor in owned:  # the oldest monitor of a key is kept; copies and leftovers go
        key = _tag(monitor, KEY_TAG)
        if key in wanted_keys and key not in work.existing:
            work.existing[key] = monitor
        else:
            work.deletes.append((Change("delete", "monitor", str(monitor["name"])), int(monitor["id"])))
    wanted_notifications = sorted(n.name for n in desired.notifications)
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
            f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in _field_diff(have, wanted.fields).items()
        ]
        ours = sorted(names[i] for i in _ours(have.get("notificationIDList"), names, desired.owned_prefix))
        if ours != wanted_notifications:
            details.append(f"notifications: {len(ours)} → {len(wanted_notifications)}")
        if wanted.job and not have.get("pushToken"):
            details.append("push token: new")
        if details:
            work.updates.append((Change("update", "monitor", wanted.fields["name"], tuple(details)), have, wanted))
    work.changes += [c for c, _ in work.deletes] + [c for c, _ in work.creates] + [c for c, _, _ in work.updates]


def _read_maintenance(session: KumaSession, client_id: str) -> tuple[dict[str, Any] | None, set[int]]:
    """The client's maintenance window, if any, and the monitors it covers."""
    title = maintenance_title(client_id)
    have = next((m for m in session.maintenances() if m.get("title") == title), None)
    return have, session.maintenance_monitors(int(have["id"])) if have else set()


def _plan_maintenance(desired: DesiredState, have: dict[str, Any] | None, attached_ids: set[int], work: _Work) -> None:
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
        diff = _field_diff(have, {k: wanted[k] for k in compared})
        details = [f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in diff.items()]
        page_keys = {m.key for m in desired.monitors if m.job is None}
        covered = {key for key, m in work.existing.items() if int(m["id"]) in attached_ids}
        if covered != page_keys:
            details.append(f"monitors covered: {len(covered)} → {len(page_keys)}")
        if details:
            work.maintenance = Change("update", "maintenance", title, tuple(details))
    if work.maintenance:
        work.changes.append(work.maintenance)


def _page_fields(page: DesiredStatusPage) -> dict[str, Any]:
    # Tags stay off the page: they are carestack's bookkeeping, not the client's business.
    return {"title": page.title, "description": page.description, "showTags": False}


def _listed(have: Mapping[str, Any]) -> list[tuple[str, list[int]]]:
    """The page's sections as Kuma shows them: (heading, monitor ids)."""
    return [
        (str(group["name"]), [int(m["id"]) for m in group.get("monitorList") or []])
        for group in have.get("publicGroupList") or []
    ]


def _plan_status_page(desired: DesiredState, have: dict[str, Any] | None, work: _Work) -> None:
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
            diff = _field_diff(have, _page_fields(wanted))
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


def monitor_states(session: KumaSession, client_id: str) -> dict[str, str]:
    """Each of the client's monitors by name: "up", "down", "pending", "maintenance", or "unchecked".

    The latest heartbeat within two intervals (a push monitor beats only when a
    push arrives or its interval runs out); "unchecked" when there is none yet.
    """
    states = {}
    for monitor in session.monitors():
        if not is_owned(monitor, client_id):
            continue
        hours = min(MAX_INTERVAL_SECONDS, 2 * int(monitor["interval"])) // 3600 + 1
        beats = session.api.get_monitor_beats(int(monitor["id"]), hours)
        status = getattr(beats[-1]["status"], "name", "") if beats else ""
        states[str(monitor["name"])] = status.lower() or "unchecked"
    return states


# -- applying ---------------------------------------------------------------------------


def _new_token() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(PUSH_TOKEN_LENGTH))


def _tags(client_id: str, key: str) -> list[dict[str, str]]:
    return [
        {"name": OWNER_TAG, "color": TAG_COLOR, "value": client_id},
        {"name": KEY_TAG, "color": TAG_COLOR, "value": key},
    ]


def _import_record(monitor: DesiredMonitor, client_id: str, notification_ids: list[int]) -> dict[str, Any]:
    record: dict[str, Any] = {**_IMPORT_DEFAULTS, **monitor.fields}
    if monitor.job:
        record["pushToken"] = _new_token()
    record["notificationIDList"] = {str(i): True for i in notification_ids}
    record["tags"] = _tags(client_id, monitor.key)
    return record


def _edited(
    have: dict[str, Any], wanted: DesiredMonitor, ours: list[int], names: Mapping[int, str], prefix: str
) -> dict[str, Any]:
    """The full record Kuma's editMonitor wants: as read, with our fields and our notifications.

    Notifications someone attached by hand (not carestack's) stay attached.
    """
    # `names` holds every notification that exists now: one deleted by this sync is no longer kept.
    kept = [i for i in _ours(have.get("notificationIDList"), names, prefix, ours=False) if i in names]
    record = {**have, **wanted.fields}
    record["notificationIDList"] = {str(i): True for i in sorted({*kept, *ours})}
    if wanted.job and not have.get("pushToken"):
        record["pushToken"] = _new_token()
    return record


@dataclass(frozen=True)
class SyncResult:
    client_id: str
    changes: tuple[Change, ...]
    writes: int
    dry_run: bool
    # site id -> job -> token, for the agent's configuration; secret
    push_tokens: dict[str, dict[str, str]] = field(repr=False)

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in ("create", "update", "delete")}
        if not self.changes:
            return f"{self.client_id}: monitors in sync, nothing to change"
        verb = "would" if self.dry_run else "did"
        return (
            f"{self.client_id}: {verb} create {counts['create']}, update {counts['update']}, delete {counts['delete']}"
        )


def _push_tokens(desired: DesiredState, monitors: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    tokens: dict[str, dict[str, str]] = {}
    for wanted in desired.monitors:
        have = monitors.get(wanted.key)
        if wanted.job and have and have.get("pushToken"):
            tokens.setdefault(wanted.site_id, {})[wanted.job] = str(have["pushToken"])
    return tokens


def _plan(session: KumaSession, desired: DesiredState) -> _Work:
    """Read Kuma once and work out every change (nothing is written).

    The reads run side by side: Kuma answers the small ones while it builds the
    monitor list, which takes seconds at hundreds of monitors.
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        settings = pool.submit(session.settings) if desired.cert_expiry_days is not None else None
        maintenance = pool.submit(_read_maintenance, session, desired.client_id)
        status_page = pool.submit(session.status_page, status_page_slug(desired.client_id))
        monitors = pool.submit(session.monitors)
        notifications = session.notifications()
        names = {int(n["id"]): str(n["name"]) for n in notifications}
        work = _Work()
        if settings is not None:
            _plan_settings(desired, settings.result(), work)
        _plan_notifications(desired, notifications, work)
        _plan_monitors(desired, monitors.result(), names, work)
        _plan_maintenance(desired, *maintenance.result(), work)
        _plan_status_page(desired, status_page.result(), work)
    return work


def _created(session: KumaSession, desired: DesiredState, keys: set[str]) -> dict[str, dict[str, Any]]:
    """The freshly imported monitors, by key, once Kuma's list shows all of them."""

    def owned_keys(listed: list[dict[str, Any]]) -> set[str | None]:
        return {_tag(m, KEY_TAG) for m in listed if is_owned(m, desired.client_id)}

    listed = session.wait_for_monitors(lambda monitors: keys <= owned_keys(monitors))
    found: dict[str, dict[str, Any]] = {}
    for monitor in sorted(listed, key=lambda m: int(m["id"])):
        key = _tag(monitor, KEY_TAG)
        if key in keys and key not in found and is_owned(monitor, desired.client_id):
            found[key] = monitor
    return found


def _apply(
    session: KumaSession, desired: DesiredState, work: _Work, done: Callable[[Change], None]
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
    wanted_names = {n.name for n in desired.notifications}
    ours = sorted(i for i, name in names.items() if name in wanted_names)

    session.delete_monitors([monitor_id for _, monitor_id in work.deletes])
    for change, _ in work.deletes:
        done(change)
    final = dict(work.existing)
    session.import_monitors([_import_record(m, desired.client_id, ours) for _, m in work.creates])
    if work.creates:
        final.update(_created(session, desired, {m.key for _, m in work.creates}))
    for change, _ in work.creates:
        done(change)
    # Edits: changed monitors, and created ones whose fields the import could not set.
    edits = [(have, wanted) for _, have, wanted in work.updates]
    edits += [(final[m.key], m) for _, m in work.creates if _field_diff(final[m.key], m.fields)]
    records = [_edited(have, wanted, ours, names, desired.owned_prefix) for have, wanted in edits]
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
    session.save_status_page(slug, {**config, **_page_fields(page)}, groups)


def sync(
    session: KumaSession,
    desired: DesiredState,
    *,
    dry_run: bool = False,
    report: Callable[[str], None] | None = print,
    on_applied: Callable[[Change], None] | None = None,
) -> SyncResult:
    """Reconcile Kuma with `desired`: report the changes, apply them unless `dry_run`.

    `on_applied(change)` is called as each change lands in Kuma (for progress displays).
    Sync a client once per session (several clients may share one): Kuma answers a
    delete before it broadcasts the new monitor list, so a second sync of the same
    client on the same session could read the list from before the first one's deletes.
    """
    writes_before = session.writes
    work = _plan(session, desired)
    for change in work.changes:
        if report:
            report(str(change))
    final = work.existing
    if work.changes and not dry_run:
        final = _apply(session, desired, work, on_applied or (lambda change: None))
    result = SyncResult(
        desired.client_id, tuple(work.changes), session.writes - writes_before, dry_run, _push_tokens(desired, final)
    )
    if report:
        report(result.summary())
    return result
