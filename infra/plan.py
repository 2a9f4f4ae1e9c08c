"""The CarePlan: every number a client's care stack runs on, derived in one place.

spec (catalog tier + client stack) -> CarePlan -> AWS components, Ansible
variables, the agent's config, the monitors, the SLA targets. Nothing
downstream derives a tier number again; if a consumer needs a value that is
not here, add it here.

Shape (all frozen dataclasses, `to_dict()` gives the JSON of `carestack plan --json`):

CarePlan
  client: id, name, tier, tier_title, timezone, contacts[name, role, email, phone, webhook]
  hosting: mode (shared|dedicated), server (host name the sites run on), instance_type,
           volume_gb, admin_cidr, platform_stack
  storage: bucket, versioning, object_lock_days, retention_days (longest kept snapshot),
           noncurrent_version_days, abort_multipart_days
  backup: schedule, rpo_minutes, keep{last,hourly,daily,weekly,monthly,yearly},
          prune (schedule), check (schedule), check_read_data_subsets, timeout_seconds,
          restore_timeout_seconds, stall_seconds (no repository progress for this long fails a job)
  updates: schedule, window{weekday, start, duration_minutes}, apt_policy,
           wordpress_policy, rollback, probe_slowdown_limit, timeout_seconds
  security: scan (schedule), scan_timeout_seconds, vulnerability_feed and core_checksums (the agency's, or None)
  performance: sample (schedule), requests_per_page, limit_percent, floor_ms, baseline_weeks, keep_days,
               timeout_seconds
  monitoring: interval_seconds, retries, retry_interval_seconds, timeout_seconds,
              alert_within_seconds, channels, cert_expiry_days, maintenance (the update window)
  alerts: site_checks, job_heartbeats (each: client_channels, agency): who hears of a monitor's down/up
  certificates: acme_directory, acme_email (or None): the agency's ACME account
  sites[]: id, name, domain, aliases, kind, https, dns (pending|live), url, root, linux_user, database (or None),
           providers, checks[path, keyword, status, url], jobs[name, schedule, timeout_seconds,
           push_grace_seconds, push_interval_seconds]
  sla: uptime_target_percent, downtime_budget_minutes_per_month, downtime_budget_hours_per_year,
       support{days, from, to, outage_line_until}, severities[name, response, fix],
       small_jobs{per_month, max_minutes}, failover{rto_minutes, max_days, dns_ttl_seconds, warn_after_days,
       traffic, hosted_zone_id} | None,
       restore_drill (schedule) | None, time_bank{included_minutes_per_month, rollover_months},
       credits{bands[below_percent, credit_percent, credit_amount], cap_percent, cap_amount, claim,
       currency}, fee{monthly, currency} | None (infra/sla_terms.py)
Schedule: on_calendar (systemd OnCalendar, in the client's time zone), period_seconds,
          randomized_delay_seconds.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from infra.sla_terms import CreditPlan, FeePlan, TimeBankPlan, credit_plan, fee_plan, time_bank_plan
from infra.spec import PERFORMANCE_BASELINE_WEEKS, ClientSpec, Recurring, Tier, Traffic, site_name
from infra.units import SupportTime, parse_minute_of_hour, parse_time_of_day

# Calendar lengths used for budgets and retention horizons.
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
# Upper bounds in days of one kept snapshot of each kind, for the retention horizon
# (`last` counts snapshots, so its span is the backup period).
KEEP_SPAN_DAYS = {"hourly": 1 / 24, "daily": 1, "weekly": 7, "monthly": 31, "yearly": 366}
# After the oldest snapshot expires, deleted pack versions stay a further week,
# so a destructive prune or a compromised key can still be undone.
NONCURRENT_MARGIN_DAYS = 7
# Kuma counts a push monitor down if no push came within its interval: the job's
# own timeout, the timer's random delay and this slack for a slow start.
PUSH_SLACK_SECONDS = 300
# Timers start at a random point this share of their period late (at most 5 min),
# so many sites on one host don't all start restic in the same second.
RANDOM_DELAY_SHARE = 0.05
MAX_RANDOM_DELAY_SECONDS = 300
# Kuma marks a site down after retries; at most this many, however slow the alert promise.
MAX_RETRIES = 3
# Kuma's default request timeout is 80 % of the interval; never wait longer than this.
MAX_CHECK_TIMEOUT_SECONDS = 48
SITES_ROOT = "/srv/www"
# Bounds of the repository stall limit (see repository_stall_seconds).
MIN_STALL_SECONDS = 60
MAX_STALL_SECONDS = 300

_PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 31 * 86400}


@dataclass(frozen=True)
class Schedule:
    on_calendar: str
    period_seconds: int
    randomized_delay_seconds: int


@dataclass(frozen=True)
class ContactPlan:
    name: str
    role: str | None
    email: str | None
    phone: str | None
    webhook: str | None


@dataclass(frozen=True)
class ClientPlan:
    id: str
    name: str
    tier: str
    tier_title: str
    timezone: str
    contacts: tuple[ContactPlan, ...]


@dataclass(frozen=True)
class HostingPlan:
    mode: str
    server: str
    instance_type: str | None
    volume_gb: int | None
    admin_cidr: str
    platform_stack: str | None


@dataclass(frozen=True)
class StoragePlan:
    bucket: str
    versioning: bool
    object_lock_days: int
    retention_days: int
    noncurrent_version_days: int
    abort_multipart_days: int


@dataclass(frozen=True)
class BackupPlan:
    schedule: Schedule
    rpo_minutes: int
    keep: dict[str, int]
    prune: Schedule
    check: Schedule
    check_read_data_subsets: int
    timeout_seconds: int
    restore_timeout_seconds: int
    stall_seconds: int


@dataclass(frozen=True)
class UpdateWindowPlan:
    weekday: str
    start: str
    duration_minutes: int


@dataclass(frozen=True)
class UpdatePlan:
    schedule: Schedule
    window: UpdateWindowPlan
    apt_policy: str
    wordpress_policy: str
    rollback: bool
    probe_slowdown_limit: float
    timeout_seconds: int


@dataclass(frozen=True)
class SecurityPlan:
    scan: Schedule
    scan_timeout_seconds: int
    vulnerability_feed: str | None = None  # the agency's: a URL, or a file on the controller; None: not checked
    core_checksums: str | None = None  # the agency's directory of WordPress core checksum files; None: none


@dataclass(frozen=True)
class PerformancePlan:
    """The trend check: pages timed on `sample`'s schedule; the last week's median per page against
    the `baseline_weeks` before it."""

    sample: Schedule
    requests_per_page: int
    limit_percent: float
    floor_ms: int
    baseline_weeks: int
    keep_days: int
    timeout_seconds: int


@dataclass(frozen=True)
class MonitoringPlan:
    interval_seconds: int
    retries: int
    retry_interval_seconds: int
    timeout_seconds: int
    alert_within_seconds: int
    channels: tuple[str, ...]
    cert_expiry_days: int
    maintenance: UpdateWindowPlan


@dataclass(frozen=True)
class AlertRoute:
    """Who hears that one kind of monitor went down or came back up."""

    client_channels: tuple[str, ...]  # the tier's channels to the client's contacts; empty: the client is not told
    agency: bool  # the agency's own on-call addresses (the agency's alerting file)


@dataclass(frozen=True)
class AlertRoutingPlan:
    site_checks: AlertRoute  # a page of a site stops answering as it should, or answers again
    job_heartbeats: AlertRoute  # an agent job (backup, update, check, prune, ...) failed or stopped reporting


def alert_routing_plan(monitoring: MonitoringPlan) -> AlertRoutingPlan:
    """The client's contacts hear what their tier promises about their sites (down and up, by the
    tier's channels); the agency hears of everything, and it alone of its own jobs' heartbeats."""
    return AlertRoutingPlan(
        site_checks=AlertRoute(client_channels=monitoring.channels, agency=True),
        job_heartbeats=AlertRoute(client_channels=(), agency=True),
    )


@dataclass(frozen=True)
class CheckPlan:
    path: str
    keyword: str
    status: int
    url: str


@dataclass(frozen=True)
class JobPlan:
    name: str
    schedule: Schedule
    timeout_seconds: int
    push_grace_seconds: int
    push_interval_seconds: int
    on_standby: bool = False  # runs on the platform's standby (the restore drill), not on the site's server


@dataclass(frozen=True)
class SitePlan:
    id: str
    name: str
    domain: str
    aliases: tuple[str, ...]
    kind: str
    https: bool
    dns: str  # pending: the names do not point at the server yet; live: after the DNS cutover
    url: str
    root: str
    linux_user: str
    database: str | None
    providers: tuple[str, ...]
    checks: tuple[CheckPlan, ...]
    jobs: tuple[JobPlan, ...]
    repository_path: str

    def job(self, name: str) -> JobPlan:
        return next(job for job in self.jobs if job.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the site answers to: its domain first, then its aliases."""
        return (self.domain, *self.aliases)

    @property
    def certificate(self) -> bool:
        """Whether the site gets a certificate from the CA: HTTPS, and its names point at its server
        (HTTP-01 validation reaches the server by name)."""
        return self.https and self.dns == "live"


@dataclass(frozen=True)
class CertificatePlan:
    """The agency's ACME account, which every certificate of the client is ordered with."""

    acme_directory: str
    acme_email: str | None


@dataclass(frozen=True)
class SeverityPlan:
    name: str
    response: str
    response_minutes: int
    response_business_days: int
    fix: str
    fix_minutes: int
    fix_business_days: int


@dataclass(frozen=True)
class SupportPlan:
    days: tuple[str, ...]
    from_: str
    to: str
    outage_line_until: str | None


@dataclass(frozen=True)
class FailoverPlan:
    rto_minutes: int
    max_days: int
    dns_ttl_seconds: int  # the switched records' TTL
    warn_after_days: float  # an active failover's age that warns the agency (80 % of max_days)
    traffic: str  # the switch: "route53" | "manual"
    hosted_zone_id: str | None


@dataclass(frozen=True)
class SlaPlan:
    uptime_target_percent: float
    downtime_budget_minutes_per_month: float
    downtime_budget_hours_per_year: float
    support: SupportPlan
    severities: tuple[SeverityPlan, ...]
    small_jobs_per_month: int
    small_job_max_minutes: int
    failover: FailoverPlan | None
    restore_drill: Schedule | None
    time_bank: TimeBankPlan
    credits: CreditPlan
    fee: FeePlan | None


@dataclass(frozen=True)
class CarePlan:
    client: ClientPlan
    hosting: HostingPlan
    storage: StoragePlan
    backup: BackupPlan
    updates: UpdatePlan
    monitoring: MonitoringPlan
    sites: tuple[SitePlan, ...]
    sla: SlaPlan
    alerts: AlertRoutingPlan
    security: SecurityPlan
    performance: PerformancePlan
    certificates: CertificatePlan

    def site_job_timers(self) -> list[str]:
        """The timers of the jobs that run where the sites are served (not the standby's restore drills)."""
        return [
            f"carestack-{job.name}@{site.id}.timer" for site in self.sites for job in site.jobs if not job.on_standby
        ]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CarePlan:
        """The inverse of to_dict (a plan handed on as JSON, e.g. to a Pulumi dynamic provider)."""
        plan: CarePlan = _from_jsonable(cls, data)
        return plan


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key.rstrip("_"): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


def _from_jsonable(kind: Any, value: Any) -> Any:
    """Rebuild a value of type `kind` (the plan's dataclasses, tuples, dicts, optionals) from JSON data."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = get_type_hints(kind)
        # A field added since the data was written (a plan kept in Pulumi's state, say) takes its default.
        return kind(
            **{
                f.name: _from_jsonable(hints[f.name], value[f.name.rstrip("_")])
                for f in dataclasses.fields(kind)
                if f.name.rstrip("_") in value or f.default is dataclasses.MISSING
            }
        )
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return None if value is None else _from_jsonable(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_from_jsonable(args[0], item) for item in value)
    if origin is dict:
        return {key: _from_jsonable(args[1], item) for key, item in value.items()}
    return float(value) if kind is float else value


# --- schedules ---------------------------------------------------------------


def _schedule(calendar: str, period: int, timezone: str) -> Schedule:
    delay = min(MAX_RANDOM_DELAY_SECONDS, int(period * RANDOM_DELAY_SHARE))
    return Schedule(f"{calendar} {timezone}", period, delay)


def _clock(at: str) -> str:
    hour, minute = parse_time_of_day(at)
    return f"{hour:02d}:{minute:02d}:00"


def backup_schedule(every: str, at: str, timezone: str) -> Schedule:
    if every == "hourly":
        return _schedule(f"*-*-* *:{parse_minute_of_hour(at):02d}:00", _PERIOD["hourly"], timezone)
    return _schedule(f"*-*-* {_clock(at)}", _PERIOD["daily"], timezone)


def recurring_schedule(recurring: Recurring, timezone: str) -> Schedule:
    day = f"{recurring.day} " if recurring.every == "weekly" else ""
    return _schedule(f"{day}*-*-* {_clock(recurring.at)}", _PERIOD[recurring.every], timezone)


def sample_schedule(every_seconds: int, at: str, timezone: str) -> Schedule:
    """Every `every_seconds` (whole hours dividing a day, checked by the spec) at minute `at` of the hour."""
    hours = every_seconds // 3600
    minute = parse_minute_of_hour(at)
    hour = "00" if hours == 24 else ("*" if hours == 1 else f"00/{hours}")
    return _schedule(f"*-*-* {hour}:{minute:02d}:00", every_seconds, timezone)


def weekly_schedule(weekday: str, at: str, timezone: str) -> Schedule:
    return _schedule(f"{weekday} *-*-* {_clock(at)}", _PERIOD["weekly"], timezone)


# --- derived numbers ---------------------------------------------------------


def retention_days(keep: dict[str, int], backup_period_seconds: int) -> int:
    """How far back the oldest kept snapshot can reach, in whole days."""
    spans = {**KEEP_SPAN_DAYS, "last": backup_period_seconds / 86400}
    return math.ceil(max(count * spans[kind] for kind, count in keep.items()))


def repository_stall_seconds(backup_period_seconds: int) -> int:
    """How long a restic command may go without progress (nothing read, nothing acknowledged by S3)
    before the agent stops it and names the stalled endpoint: a 60th of the backup period, so a stall is
    reported long before the next backup is due, never under a minute (S3 clients ride out shorter
    hiccups themselves) and never over MAX_STALL_SECONDS (a silent hang is worth an alert by then)."""
    return max(MIN_STALL_SECONDS, min(MAX_STALL_SECONDS, backup_period_seconds // 60))


def downtime_budget_minutes(uptime_target_percent: float, days: float) -> float:
    return round((1 - uptime_target_percent / 100) * days * 24 * 60, 2)


def check_retries(interval: int, alert_within: int, timeout: int) -> int:
    """Retries that still let Kuma alert within the promise: first failure + retries <= alert_within."""
    return max(0, min(MAX_RETRIES, (alert_within - timeout) // interval - 1))


def check_timeout(interval: int) -> int:
    return min(MAX_CHECK_TIMEOUT_SECONDS, int(interval * 0.8))


def _job(name: str, schedule: Schedule, timeout: int, *, on_standby: bool = False) -> JobPlan:
    grace = timeout + schedule.randomized_delay_seconds + PUSH_SLACK_SECONDS
    return JobPlan(name, schedule, timeout, grace, schedule.period_seconds + grace, on_standby)


def _providers(kind: str, tier: Tier) -> tuple[str, ...]:
    """The update providers that apply to a site of this kind."""
    applies = {"apt": True, "wordpress": kind in ("wordpress", "woocommerce"), "release": kind == "php"}
    return tuple(p for p in tier.updates.providers if applies[p])


def _severity(name: str, response: SupportTime, fix: SupportTime) -> SeverityPlan:
    return SeverityPlan(
        name, str(response), response.minutes, response.business_days, str(fix), fix.minutes, fix.business_days
    )


def storage_plan(spec: ClientSpec) -> StoragePlan:
    """The client's bucket: versioned, locked as the tier says, old versions outliving the oldest snapshot."""
    tier = spec.tier
    kept_days = retention_days(tier.backup.keep.model_dump(), _PERIOD[tier.backup.every])
    lock_days = math.ceil(tier.backup.object_lock / 86400)
    return StoragePlan(
        bucket=f"{spec.agency.bucket_prefix}-{spec.stack.client.id}-backups",
        versioning=True,
        object_lock_days=lock_days,
        retention_days=kept_days,
        noncurrent_version_days=max(kept_days, lock_days) + NONCURRENT_MARGIN_DAYS,
        abort_multipart_days=1,
    )


def backup_plan(spec: ClientSpec) -> BackupPlan:
    """When backups, prunes and integrity checks run, and what they keep."""
    backup, tz = spec.tier.backup, spec.stack.timezone
    every = backup_schedule(backup.every, backup.at, tz)
    return BackupPlan(
        schedule=every,
        rpo_minutes=every.period_seconds // 60,
        keep=backup.keep.model_dump(),
        prune=recurring_schedule(backup.prune, tz),
        check=recurring_schedule(backup.check, tz),
        check_read_data_subsets=backup.check.read_data_cycle,
        timeout_seconds=backup.timeout,
        # A restore (also an update's rollback) moves the bytes of a full backup back: the first backup,
        # a full one, must finish within the backup timeout, so the restore gets the same bound.
        restore_timeout_seconds=backup.timeout,
        stall_seconds=repository_stall_seconds(every.period_seconds),
    )


def update_window(spec: ClientSpec) -> UpdateWindowPlan:
    window = spec.tier.updates.window
    return UpdateWindowPlan(window.day, window.at, window.duration // 60)


def update_plan(spec: ClientSpec) -> UpdatePlan:
    """When updates run (the weekly window), what they may change, and how a bad one is undone."""
    updates = spec.tier.updates
    window = update_window(spec)
    return UpdatePlan(
        schedule=weekly_schedule(window.weekday, window.start, spec.stack.timezone),
        window=window,
        apt_policy=updates.apt,
        wordpress_policy=updates.wordpress,
        rollback=updates.rollback,
        probe_slowdown_limit=updates.probe_slowdown_limit,
        timeout_seconds=updates.window.duration,
    )


def security_plan(spec: ClientSpec) -> SecurityPlan:
    """When each site's security scan runs, and its deadline."""
    scan = spec.tier.security.scan
    return SecurityPlan(
        scan=recurring_schedule(scan, spec.stack.timezone),
        scan_timeout_seconds=scan.timeout,
        vulnerability_feed=spec.agency.vulnerability_feed,
        core_checksums=spec.agency.core_checksums,
    )


def performance_plan(spec: ClientSpec) -> PerformancePlan:
    """When each site's pages are timed, and what counts as getting slower."""
    perf = spec.tier.performance
    return PerformancePlan(
        sample=sample_schedule(perf.sample.every, perf.sample.at, spec.stack.timezone),
        requests_per_page=perf.sample.requests,
        limit_percent=perf.limit_percent,
        floor_ms=perf.floor_ms,
        baseline_weeks=PERFORMANCE_BASELINE_WEEKS,
        keep_days=math.ceil(perf.keep / 86400),
        timeout_seconds=perf.timeout,
    )


def monitoring_plan(spec: ClientSpec) -> MonitoringPlan:
    """How often Kuma checks the sites, and retries that still keep the tier's alert promise."""
    mon = spec.tier.monitoring
    timeout = check_timeout(mon.interval)
    return MonitoringPlan(
        interval_seconds=mon.interval,
        retries=check_retries(mon.interval, mon.alert_within, timeout),
        retry_interval_seconds=mon.interval,
        timeout_seconds=timeout,
        alert_within_seconds=mon.alert_within,
        channels=tuple(mon.channels),
        cert_expiry_days=mon.cert_expiry_warning // 86400,
        maintenance=update_window(spec),
    )


def hosting_plan(spec: ClientSpec) -> HostingPlan:
    """Where the client's sites run: a host of the shared pool or the client's own server."""
    hosting, stack = spec.tier.hosting, spec.stack
    return HostingPlan(
        mode=hosting.mode,
        server=stack.shared_host if hosting.mode == "shared" else f"{stack.client.id}-1",
        instance_type=hosting.instance_type,
        volume_gb=hosting.volume_gb,
        admin_cidr=stack.admin_cidr,
        platform_stack=stack.platform_stack,
    )


def site_jobs(
    backup: BackupPlan, updates: UpdatePlan, security: SecurityPlan, performance: PerformancePlan, sla: SlaPlan
) -> tuple[JobPlan, ...]:
    """The agent's scheduled jobs every site runs, each with its push monitor's interval; with a restore
    drill, the drill on the standby, whose deadline is the failover RTO it rehearses."""
    drill: tuple[JobPlan, ...] = ()
    if sla.restore_drill is not None and sla.failover is not None:
        drill = (_job("drill", sla.restore_drill, sla.failover.rto_minutes * 60, on_standby=True),)
    return server_jobs(backup, updates, security, performance) + drill


def server_jobs(
    backup: BackupPlan, updates: UpdatePlan, security: SecurityPlan, performance: PerformancePlan
) -> tuple[JobPlan, ...]:
    """The jobs each site runs on its own server."""
    return (
        _job("backup", backup.schedule, backup.timeout_seconds),
        _job("prune", backup.prune, backup.timeout_seconds),
        _job("check", backup.check, backup.timeout_seconds),
        _job("update", updates.schedule, updates.timeout_seconds),
        _job("scan", security.scan, security.scan_timeout_seconds),
        _job("perf", performance.sample, performance.timeout_seconds),
    )


def site_plans(spec: ClientSpec, storage: StoragePlan, jobs: tuple[JobPlan, ...]) -> tuple[SitePlan, ...]:
    """Each site's names, paths, pages to check and update providers."""
    client_id = spec.stack.client.id
    sites = []
    for site in spec.stack.sites:
        name = site_name(site)
        site_id = f"{client_id}-{name}"
        scheme = "https" if site.https else "http"
        sites.append(
            SitePlan(
                id=site_id,
                name=name,
                domain=site.domain,
                aliases=tuple(site.aliases),
                kind=site.kind,
                https=site.https,
                dns=site.dns,
                url=f"{scheme}://{site.domain}/",
                root=f"{SITES_ROOT}/{site_id}",
                linux_user=site_id,
                database=None if site.kind == "static" else site_id.replace("-", "_"),
                providers=_providers(site.kind, spec.tier),
                checks=tuple(
                    CheckPlan(c.path, c.keyword, c.status, f"{scheme}://{site.domain}{c.path}") for c in site.checks
                ),
                jobs=jobs,
                repository_path=f"{storage.bucket}/{site_id}",
            )
        )
    return tuple(sites)


def sla_plan(spec: ClientSpec) -> SlaPlan:
    """What the client is promised: uptime and its downtime budget, support hours, failover, drills."""
    sla, tz = spec.tier.sla, spec.stack.timezone
    target = sla.uptime_target
    drill = sla.restore_drill
    return SlaPlan(
        uptime_target_percent=target,
        downtime_budget_minutes_per_month=downtime_budget_minutes(target, DAYS_PER_MONTH),
        downtime_budget_hours_per_year=round(downtime_budget_minutes(target, DAYS_PER_YEAR) / 60, 2),
        support=SupportPlan(tuple(sla.support.days), sla.support.from_, sla.support.to, sla.support.outage_line_until),
        severities=tuple(_severity(name, s.response, s.fix) for name, s in sla.severities.items()),
        small_jobs_per_month=sla.small_jobs.per_month,
        small_job_max_minutes=sla.small_jobs.max // 60,
        failover=failover_plan(spec),
        restore_drill=(_schedule(f"*-*-{drill.day:02d} {_clock(drill.at)}", _PERIOD["monthly"], tz) if drill else None),
        time_bank=time_bank_plan(sla.time_bank),
        credits=credit_plan(sla.credits, spec.stack.fee),
        fee=fee_plan(spec.stack.fee),
    )


FAILOVER_WARN_SHARE = 0.8  # of max_days: the agency is warned in time to fail back before the promise ends


def failover_plan(spec: ClientSpec) -> FailoverPlan | None:
    failover, traffic = spec.tier.sla.failover, spec.stack.traffic or Traffic()
    if failover is None:
        return None
    return FailoverPlan(
        rto_minutes=failover.within // 60,
        max_days=failover.max_days,
        dns_ttl_seconds=failover.dns_ttl,
        warn_after_days=round(failover.max_days * FAILOVER_WARN_SHARE, 1),
        traffic=traffic.provider,
        hosted_zone_id=traffic.hosted_zone_id,
    )


def client_plan(spec: ClientSpec) -> ClientPlan:
    stack = spec.stack
    return ClientPlan(
        id=stack.client.id,
        name=stack.client.name,
        tier=spec.tier_name,
        tier_title=spec.tier.title,
        timezone=stack.timezone,
        contacts=tuple(ContactPlan(c.name, c.role, c.email, c.phone, c.webhook) for c in stack.contacts),
    )


def build_plan(spec: ClientSpec) -> CarePlan:
    """The client's whole plan, one sub-plan at a time."""
    storage = storage_plan(spec)
    backup = backup_plan(spec)
    updates = update_plan(spec)
    security = security_plan(spec)
    performance = performance_plan(spec)
    monitoring = monitoring_plan(spec)
    sla = sla_plan(spec)
    sites = site_plans(spec, storage, site_jobs(backup, updates, security, performance, sla))
    return CarePlan(
        client=client_plan(spec),
        hosting=hosting_plan(spec),
        storage=storage,
        backup=backup,
        updates=updates,
        monitoring=monitoring,
        sites=sites,
        sla=sla,
        alerts=alert_routing_plan(monitoring),
        security=security,
        performance=performance,
        certificates=CertificatePlan(spec.agency.acme.directory, spec.agency.acme.email),
    )
