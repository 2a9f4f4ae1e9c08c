"""What Uptime Kuma should hold for one client, derived from its CarePlan only.

Per site: one HTTP keyword monitor per configured page (the site's first page
also warns before its certificate expires: every page shares it) and one push
monitor per agent job; per client: one notification per channel and reachable
contact, the update window as a recurring maintenance covering the page
monitors, and a status page with one section per site. Nothing here talks to
Kuma; problems are all reported at once, before anything changes.

Where a page is checked follows the site's DNS stage: while it is pending, on
its new server's address with the domain as Host header (given in
`site_addresses`), and its page checks notify nobody: onboarding pages nobody
about a server visitors do not reach yet (Kuma's dashboard still shows
its state; the site's job heartbeats alert as routed, its backups are real);
once live, at its public URL, as visitors see it, alerting as the plan routes. The lab, which has
no public DNS, hands in addresses for every site; an https:// address is still
checked with verification on (TLS takes the name from the Host header).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from infra.alerting import CHANNELS, AlertingConfig, agency_contact, provider_config, recipients
from infra.monitors.ownership import maintenance_title, owned_prefix, status_page_slug
from infra.plan import CarePlan, CheckPlan, JobPlan, SitePlan

# Kuma's limits (server/model/monitor.js validate(), db/knex_init_db.js column sizes).
MIN_INTERVAL_SECONDS = 20
MAX_INTERVAL_SECONDS = 2073600
MAX_NAME = 150
MAX_TITLE = 255  # status_page.title, group.name
MAX_TAG_VALUE = 255
MAX_KEYWORD = 255
MAX_REDIRECTS = 10  # Kuma's default: a page that moved (/cart -> /cart/) is still checked
_WEEKDAY_CRON = {"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6}
_ADDRESS = re.compile(r"^https?://[^/\s]+$")


class KumaPlanError(ValueError):
    """The desired state can't be realized in Kuma; raised before anything changes."""


@dataclass(frozen=True)
class DesiredMonitor:
    key: str
    site_id: str
    job: str | None  # the agent job a push monitor listens for; None for a page check
    fields: dict[str, Any]  # the Kuma fields carestack manages on this monitor
    notifications: tuple[str, ...] = ()  # names of the notifications it alerts, as the plan routes it


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


def push_timing(push_interval_seconds: int) -> dict[str, int]:
    """A push monitor's interval, retry interval and retries that turn it DOWN once the job's heartbeat is
    `push_interval_seconds` overdue. Kuma caps an interval at MAX_INTERVAL_SECONDS (24 days), shorter
    than a monthly job's period (the restore drill): then the first miss at the cap only makes the monitor
    PENDING (Kuma notifies nobody of UP -> PENDING) and one retry after the rest of the period makes it
    DOWN; a push in between brings it back UP."""
    if push_interval_seconds <= MAX_INTERVAL_SECONDS:
        return {"interval": push_interval_seconds, "retryInterval": push_interval_seconds, "maxretries": 0}
    rest = max(MIN_INTERVAL_SECONDS, push_interval_seconds - MAX_INTERVAL_SECONDS)
    return {"interval": MAX_INTERVAL_SECONDS, "retryInterval": rest, "maxretries": 1}


def _push(plan: CarePlan, site: SitePlan, job: JobPlan) -> DesiredMonitor:
    return DesiredMonitor(
        key=f"{site.id} job {job.name}",
        site_id=site.id,
        job=job.name,
        fields={
            "type": "push",
            "name": f"{site.id} · {job.name} job",
            "description": _description(plan),
            **push_timing(job.push_interval_seconds),
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
    for site in plan.sites:
        if site.dns == "pending" and site.id not in site_addresses:
            problems.append(
                f"site_addresses.{site.id}: the site's DNS is pending, so its pages are checked on its server's "
                "address (the domain as Host header), but no address was given"
            )
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


def routed_notifications(
    plan: CarePlan, alerting: AlertingConfig, problems: list[str]
) -> tuple[tuple[DesiredNotification, ...], dict[bool, tuple[str, ...]]]:
    """The notifications the plan's alert routing needs, and their names by monitor kind (push or not).

    The client's contacts are told in plain words; the agency gets Kuma's full detail.
    """
    client_id = plan.client.id
    agency = agency_contact(alerting)
    if agency is None and (plan.alerts.site_checks.agency or plan.alerts.job_heartbeats.agency):
        problems.append(
            "alerting: no agency section: the plan sends job heartbeats and site alerts to the agency "
            "(give agency: {email, phone or webhook} in the alerting file)"
        )
    made: dict[str, DesiredNotification] = {}
    routed: dict[bool, tuple[str, ...]] = {}
    for push, route in ((False, plan.alerts.site_checks), (True, plan.alerts.job_heartbeats)):
        targets = [
            (channel, contact, f"{channel} · {contact.name}", True)
            for channel, contact in recipients(route.client_channels, plan.client.contacts)
        ]
        if route.agency and agency is not None:
            targets += [
                (channel, agency, f"agency · {channel}", False) for channel, _ in recipients(CHANNELS, (agency,))
            ]
        names = []
        for channel, contact, label, plain in targets:
            name = f"{owned_prefix(client_id)}{label}"
            if name not in made:
                try:
                    fields = provider_config(alerting, client_id, channel, contact, plain=plain)
                except ValueError as exc:
                    # A missing section or variable fails every recipient alike: say it once.
                    if not any(problem.endswith(f": {exc}") for problem in problems):
                        problems.append(f"notification {channel} to {contact.name}: {exc}")
                    continue
                made[name] = DesiredNotification(name, {**fields, "name": name, "isDefault": False})
            names.append(name)
        routed[push] = tuple(names)
    return tuple(made.values()), routed


def desired_state(
    plan: CarePlan, alerting: AlertingConfig, site_addresses: Mapping[str, str] | None = None
) -> DesiredState:
    """What Kuma should hold for this client; KumaPlanError lists every problem at once."""
    site_addresses = dict(site_addresses or {})
    problems = _check_addresses(plan, site_addresses)
    monitors: list[DesiredMonitor] = []
    for site in plan.sites:
        address = site_addresses.get(site.id)
        # One certificate warning per site: every page shares the site's certificate. Before the
        # DNS cutover the site has none a CA signed, so there is nothing to warn about yet.
        warn = site.certificate
        monitors += [
            _page(plan, site, check, address, cert_warning=warn and n == 0) for n, check in enumerate(site.checks)
        ]
        monitors += [_push(plan, site, job) for job in site.jobs]
    for monitor in monitors:
        problems += _check_monitor(monitor)
    if len(plan.client.name) > MAX_TITLE:
        problems.append(f"client.name: longer than the {MAX_TITLE} characters of a Kuma status page title")
    notifications, routed = routed_notifications(plan, alerting, problems)
    pending = {site.id for site in plan.sites if site.dns == "pending"}
    monitors = [
        replace(m, notifications=() if m.job is None and m.site_id in pending else routed[m.job is not None])
        for m in monitors
    ]
    if problems:
        raise KumaPlanError(f"monitors of {plan.client.id}: " + "; ".join(problems))
    return DesiredState(
        plan.client.id,
        tuple(monitors),
        notifications,
        _maintenance(plan),
        plan.monitoring.cert_expiry_days,
        _status_page(plan, monitors),
    )


def nothing_desired(client_id: str) -> DesiredState:
    """The state that removes everything carestack owns for a client."""
    return DesiredState(client_id, (), (), None, None)


def status_page_fields(page: DesiredStatusPage) -> dict[str, Any]:
    """The status page settings carestack manages."""
    # Tags stay off the page: they are carestack's bookkeeping, not the client's business.
    return {"title": page.title, "description": page.description, "showTags": False}
