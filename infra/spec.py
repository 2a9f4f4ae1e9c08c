"""Load and validate the tier catalog and the stack files.

A stack file is a Pulumi stack configuration (`Pulumi.<name>.yaml`) whose
`carestack:` keys describe either a client (its tier, contacts, sites and
overrides) or the platform (the pool of shared hosts). Validation reports
every error at once, each naming the exact key (`carestack:sites[1].domain`)
and what would be valid, before anything downstream sees the stack.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import itertools
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from infra.units import (
    WEEKDAYS,
    SupportTime,
    format_duration,
    parse_duration,
    parse_minute_of_hour,
    parse_support_time,
    parse_time_of_day,
)

CATALOG_PATH = Path(__file__).parent / "catalog" / "tiers.yaml"
STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"
NAMESPACE = "carestack"


class SpecError(Exception):
    """Every problem found in one file, each as `path: message`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} error(s)\n" + "\n".join(f"  - {p}" for p in problems))


# --- field types -----------------------------------------------------------

Duration = Annotated[int, BeforeValidator(parse_duration)]
SupportDuration = Annotated[SupportTime, BeforeValidator(parse_support_time)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _time_of_day(value: object) -> str:
    parse_time_of_day(value)
    return str(value)


TimeOfDay = Annotated[str, BeforeValidator(_time_of_day)]


class Strict(BaseModel):
    # A field's docstring is its description: docs/stack-keys.md is generated from them.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_attribute_docstrings=True)


# --- the tier ----------------------------------------------------------------


class HostingTier(Strict):
    mode: Literal["shared", "dedicated"]
    """shared: a host of the platform's pool; dedicated: the client's own server."""
    instance_type: str | None = None
    """Dedicated only: the EC2 instance type."""
    volume_gb: int | None = Field(default=None, ge=8, le=16384)
    """Dedicated only: the root volume's size in GB."""


class Keep(Strict):
    """restic's `forget --keep-*` policies: the last N snapshots, and the newest of each hour, day, ..."""

    last: int = Field(default=0, ge=0)
    """The newest snapshots kept, whatever their age."""
    hourly: int = Field(default=0, ge=0)
    """Hourly snapshots kept."""
    daily: int = Field(default=0, ge=0)
    """Daily snapshots kept."""
    weekly: int = Field(default=0, ge=0)
    """Weekly snapshots kept."""
    monthly: int = Field(default=0, ge=0)
    """Monthly snapshots kept."""
    yearly: int = Field(default=0, ge=0)
    """Yearly snapshots kept."""


class Recurring(Strict):
    every: Literal["daily", "weekly"]
    """How often."""
    day: Weekday | None = None
    """Weekly only: the day (Mon..Sun)."""
    at: TimeOfDay
    """When, in the client's time zone."""


class CheckSchedule(Recurring):
    read_data_cycle: int = Field(ge=1, le=100)
    """Each check reads 1/n of the repository's data, so all of it is read every n checks."""


class ScanSchedule(Recurring):
    timeout: Duration = Field(gt=0)
    """A scan running longer fails (and alerts)."""


class SecurityTier(Strict):
    scan: ScanSchedule
    """When the malware and integrity scan runs on each site (also the agent's `scan` timer)."""


class PerformanceSample(Strict):
    every: Duration = Field(gt=0)
    """How often each site's checked pages are timed from the server: whole hours that divide a day
    (1h, 2h, 3h, 4h, 6h, 8h, 12h, 24h); also the agent's `perf` timer."""
    at: str
    """The minute past the hour the samples are taken (":40")."""
    requests: int = Field(ge=1, le=10)
    """Requests per checked page in each sample (the load on the site stays bounded)."""


class PerformanceTier(Strict):
    sample: PerformanceSample
    """When the pages are timed and how many requests each sample makes."""
    limit_percent: float = Field(gt=0.0, le=1000.0)
    """A page whose median of the last week is this much slower than its median of the four weeks
    before is a regression (together with floor_ms)."""
    floor_ms: int = Field(ge=0, le=60000)
    """...and at least this many milliseconds slower: small pages do not alert on noise."""
    keep: Duration = Field(gt=0)
    """How long the samples are kept on the server (at least 35d: the week judged and the four before)."""
    timeout: Duration = Field(gt=0)
    """A sample running longer fails (and alerts)."""


class BackupTier(Strict):
    every: Literal["hourly", "daily"]
    """How often a site is backed up (its RPO)."""
    at: str
    """daily: the time of day HH:MM; hourly: the minute past the hour (":15")."""
    keep: Keep
    """Retention: how many snapshots of each period are kept."""
    prune: Recurring
    """When snapshots past retention are forgotten and their data removed."""
    check: CheckSchedule
    """When the repository's integrity is checked."""
    timeout: Duration = Field(gt=0)
    """A backup running longer fails (and alerts)."""
    object_lock: Duration = Field(ge=0)
    """S3 object lock (COMPLIANCE) on every backup object; 0d: none."""


class UpdateWindow(Strict):
    day: Weekday
    """The weekday updates run on."""
    at: TimeOfDay
    """When the window opens, in the client's time zone."""
    duration: Duration
    """How long it stays open (15m..12h); the monitors are in maintenance meanwhile."""


class UpdatesTier(Strict):
    window: UpdateWindow
    """When updates may run."""
    providers: list[Literal["apt", "wordpress", "release"]]
    """What is updated: Debian packages, WordPress core and plugins, a PHP site's release."""
    apt: Literal["security", "all", "none"]
    """Which Debian updates are installed."""
    wordpress: Literal["minor", "all", "none"]
    """Which WordPress updates are installed."""
    rollback: bool
    """Restore the pre-update snapshot when the pages fail their probes after an update."""
    probe_slowdown_limit: float = Field(ge=1.0, le=100.0)
    """A page this many times slower after an update counts as failed."""


class MonitoringTier(Strict):
    interval: Duration
    """How often each page is checked (20s..24h)."""
    pages_per_site: int = Field(ge=1, le=50)
    """At most this many checks per site."""
    alert_within: Duration
    """A failure alerts within this time (decides the retries)."""
    channels: list[Literal["email", "sms", "webhook"]] = Field(min_length=1)
    """How contacts are alerted."""
    cert_expiry_warning: Duration
    """Warn this long before a site's certificate expires."""


class Support(Strict):
    days: list[Weekday] = Field(min_length=1)
    """Business days."""
    from_: TimeOfDay = Field(alias="from")
    """Business hours start, in the client's time zone."""
    to: TimeOfDay
    """Business hours end."""
    outage_line_until: TimeOfDay | None = None
    """Outages are answered until this time on business days."""


class Severity(Strict):
    response: SupportDuration
    """Time to the first response, in support time (4h, 1bd)."""
    fix: SupportDuration
    """Time to the fix."""


class SmallJobs(Strict):
    per_month: int = Field(ge=0)
    """Small jobs included per month."""
    max: Duration
    """The most one small job may take."""


class Failover(Strict):
    within: Duration = Field(gt=0)
    """A failed site is restored onto the standby within this time."""
    max_days: int = Field(ge=1, le=365)
    """The longest the sites stay on the standby."""
    dns_ttl: Duration = Field(ge=1, le=86400)
    """The TTL of the sites' DNS records while they are switched (short, so failback takes effect soon)."""


class RestoreDrill(Strict):
    every: Literal["monthly"]
    """How often a restore onto the standby is rehearsed and measured."""
    day: int = Field(ge=1, le=28)
    """The day of the month."""
    at: TimeOfDay
    """The time, in the client's time zone."""


class TimeBank(Strict):
    per_month: Duration = Field(ge=0)
    """Support time included each month for requests and small jobs beyond the included ones."""
    rollover_months: int = Field(ge=0, le=12)
    """How many months unused time carries over (oldest spent first); 0: none."""


class CreditBand(Strict):
    below: float = Field(gt=0.0, lt=100.0)
    """A month whose uptime is below this percentage earns the band's credit."""
    percent: float = Field(gt=0.0, le=100.0)
    """The credit, in percent of the monthly fee."""


class Credits(Strict):
    bands: list[CreditBand] = Field(min_length=1)
    """From the highest threshold down; the lowest band reached applies."""
    cap: float = Field(gt=0.0, le=100.0)
    """The most a month can earn, in percent of the monthly fee."""
    claim: Literal["next_invoice", "on_request"]
    """How a credit is paid: deducted on the next invoice, or on the client's request."""


class SlaTier(Strict):
    uptime_target: float = Field(gt=90.0, lt=100.0)
    """The monthly uptime promised, in percent."""
    support: Support
    """Business hours."""
    severities: dict[str, Severity] = Field(min_length=1)
    """Response and fix times per severity (e.g. critical, high, normal)."""
    small_jobs: SmallJobs
    """Small changes included in the contract."""
    time_bank: TimeBank
    """Support hours included each month, and how long unused hours carry over."""
    credits: Credits
    """Service credits owed when a month misses the uptime target."""
    failover: Failover | None = None
    """A standby restore; none: the tier has no failover."""
    restore_drill: RestoreDrill | None = None
    """A rehearsed restore onto the standby; needs failover."""


class Tier(Strict):
    title: str
    """The tier's name in documents."""
    hosting: HostingTier
    """Where the sites run."""
    backup: BackupTier
    """Backups, retention and checks."""
    updates: UpdatesTier
    """The update window and what is updated."""
    monitoring: MonitoringTier
    """Page checks and alerts."""
    security: SecurityTier
    """The security scan."""
    performance: PerformanceTier
    """The weekly performance trend."""
    sla: SlaTier
    """The promise: uptime, support, severities."""


# --- the agency --------------------------------------------------------------

# S3 bucket names: 3-63 of a-z, 0-9 and "-", and global across every AWS account.
# A client's bucket is <bucket_prefix>-<client id>-backups and its IAM user
# <bucket>-restic, at most 64 characters: the id takes up to 12, "-...-backups"
# 9 and "-restic" 7, which leaves the prefix 36.
_BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{1,34}[a-z0-9]$")
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")


def _bucket_prefix(value: object) -> str:
    if not isinstance(value, str) or not _BUCKET_PREFIX.match(value):
        raise ValueError(
            "expected 3 to 36 lower-case letters, digits and hyphens, starting and ending with a letter or "
            f"digit (it starts every client's S3 bucket name), got {value!r}"
        )
    reserved = next((p for p in _RESERVED_BUCKET_PREFIXES if value.startswith(p)), None)
    if reserved:
        raise ValueError(f"S3 reserves bucket names starting with {reserved!r}, got {value!r}")
    return value


BucketPrefix = Annotated[str, BeforeValidator(_bucket_prefix)]


def _controller_path(value: object) -> bool:
    """An absolute path on the controller that does not climb out of where it names (no `..`)."""
    return isinstance(value, str) and value.startswith("/") and ".." not in value.split("/")


def _vulnerability_feed(value: object) -> str:
    if isinstance(value, str) and (_URL.match(value) or _controller_path(value)):
        return value
    raise ValueError(
        "expected an http(s) URL the servers fetch at every scan, or the absolute path of a JSON file on the "
        f"controller that every converge copies to the servers, got {value!r}"
    )


VulnerabilityFeed = Annotated[str, BeforeValidator(_vulnerability_feed)]


def _controller_directory(value: object) -> str:
    if isinstance(value, str) and _controller_path(value):
        return value
    raise ValueError(f"expected the absolute path of a directory on the controller, got {value!r}")


ControllerDirectory = Annotated[str, BeforeValidator(_controller_directory)]


# --- the stacks --------------------------------------------------------------

_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^[a-z]{2,63}$")
_SLUG = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _domain(value: object) -> str:
    text = str(value).lower().rstrip(".") if isinstance(value, str) else ""
    labels = text.split(".")
    if (
        not text
        or len(text) > 253
        or len(labels) < 2
        or not all(_DOMAIN_LABEL.match(label) for label in labels)
        or not _TLD.match(labels[-1])
    ):
        raise ValueError(f"expected a domain name such as www.example.com, got {value!r}")
    return text


def _pattern(regex: re.Pattern[str], expected: str) -> BeforeValidator:
    def check(value: object) -> str:
        if not isinstance(value, str) or not regex.match(value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return BeforeValidator(check)


def _cidr(value: object) -> str:
    try:
        network = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise ValueError(f"expected a network in CIDR notation such as 203.0.113.0/24, got {value!r}") from None
    if network.prefixlen == 0:
        raise ValueError("must not be the whole internet: SSH is opened only to the agency's admin range")
    return str(network)


def _timezone(value: object) -> str:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone such as Europe/Berlin or UTC, got {value!r}") from None
    return str(value)


DomainName = Annotated[str, BeforeValidator(_domain)]
Slug = Annotated[str, _pattern(_SLUG, "a short lower-case name: a letter, then up to 11 letters or digits")]
Email = Annotated[str, _pattern(_EMAIL, "an e-mail address")]
Phone = Annotated[str, _pattern(_PHONE, 'a phone number in international format such as "+4930123456"')]
WebhookUrl = Annotated[str, _pattern(_URL, "an http(s) URL")]
Cidr = Annotated[str, BeforeValidator(_cidr)]
TimeZone = Annotated[str, BeforeValidator(_timezone)]
Currency = Annotated[str, _pattern(re.compile(r"^[A-Z]{3}$"), "an ISO 4217 currency code such as EUR or USD")]
PagePath = Annotated[str, _pattern(re.compile(r"^/\S*$"), 'a path on the site starting with "/"')]


# Let's Encrypt's production directory: publicly trusted certificates.
LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
_HTTPS_URL = re.compile(r"^https://[^\s/]+(/\S*)?$")


HttpsUrl = Annotated[str, _pattern(_HTTPS_URL, "an https:// URL of an ACME directory")]


class Acme(Strict):
    """The ACME account every client's certificates are ordered with: one per agency, not per client."""

    directory: HttpsUrl = LETS_ENCRYPT_DIRECTORY
    """The certificate authority's ACME directory; default Let's Encrypt (its staging directory for trials)."""
    email: Email | None = None
    """The ACME account's contact; the CA writes here about the account (policy changes, revocations)."""


class Agency(Strict):
    """The agency running this catalog: what is the same for all of its clients."""

    bucket_prefix: BucketPrefix
    """Starts every client's bucket name, <bucket_prefix>-<client id>-backups. S3 bucket names are global
    across all AWS accounts: make it the agency's own."""
    acme: Acme = Field(default_factory=Acme)
    """Where the sites' HTTPS certificates come from (ACME, HTTP-01 through nginx)."""
    vulnerability_feed: VulnerabilityFeed | None = None
    """The known-vulnerable versions the weekly scan checks each site's core, plugins and themes against
    (JSON, agent/carestack_agent/scan/vulns.py's format): an http(s) URL every server fetches at each
    scan, or the absolute path of a file on the controller that every converge copies to the servers.
    Unset: versions are not checked."""
    core_checksums: ControllerDirectory | None = None
    """A directory on the controller of WordPress core checksum files, one per release the agency's sites
    run that Debian's wordpress package is not (an imported site's own WordPress): `<version>.json`, the
    answer of WordPress's core checksums API (`core/checksums/1.0`) for that version. Every converge copies
    them to the servers, where the weekly scan compares the core files with them, offline. Unset: only
    sites on the package's version have their core compared."""


class ClientInfo(Strict):
    id: Slug
    """Names everything of the client: its bucket, server, Linux users, monitors, site ids."""
    name: str = Field(min_length=1)
    """The client's name as its status page and SLA documents show it."""


class Contact(Strict):
    name: str = Field(min_length=1)
    """Who is alerted."""
    role: str | None = None
    """Free text, e.g. owner or technical."""
    email: Email | None = None
    """Alerted by e-mail when the tier alerts by email (through the agency's SMTP server)."""
    phone: Phone | None = None
    """Alerted by SMS when the tier alerts by sms (through the agency's SMS gateway)."""
    webhook: WebhookUrl | None = None
    """Kuma posts alerts here as JSON when the tier alerts by webhook."""


class PageCheck(Strict):
    path: PagePath
    """The page on the site that is checked."""
    keyword: str = Field(min_length=1)
    """Text the page must contain, or the check fails."""
    status: int = Field(default=200, ge=100, le=599)
    """The HTTP status the page must answer with."""


class Site(Strict):
    domain: DomainName
    """The site's public name; its pages are checked at https://<domain><path>."""
    aliases: list[DomainName] = Field(default_factory=list)
    """Further names the site answers to (e.g. the domain without www); its certificate covers them too."""
    dns: Literal["pending", "live"] = "live"
    """pending (while onboarding, until the DNS cutover): the names do not point at the site's server yet;
    its monitors check the server by address (the domain as Host header) and no certificate is ordered.
    live: monitors check by name and, with https, a certificate is ordered from the agency's ACME CA."""
    name: Slug | None = None
    """Short name within the client (site id <client id>-<name>); default: the domain's first label that is not www."""
    kind: Literal["wordpress", "woocommerce", "php", "static"]
    """What runs the site; decides its database, updates and roles."""
    https: bool = True
    """Whether the site is served and checked over HTTPS."""
    checks: list[PageCheck] = Field(min_length=1)
    """The pages checked, at most the tier's pages_per_site."""


class Fee(Strict):
    monthly: float = Field(gt=0.0, le=1_000_000.0)
    """The monthly fee."""
    currency: Currency
    """Its ISO 4217 currency code, e.g. EUR."""


class Traffic(Strict):
    provider: Literal["route53", "manual"] = "manual"
    """How a failover switches the sites' traffic: route53 (UPSERT the records in the hosted zone) or manual
    (the records are printed and the operator confirms the change)."""
    hosted_zone_id: str | None = None
    """route53: the Route 53 hosted zone that holds the sites' records, e.g. Z0123456789ABCDEFGHIJ."""


class ClientStack(Strict):
    client: ClientInfo
    """Who the client is."""
    tier: str
    """The care tier the contract names, one of the catalog's tiers."""
    contacts: list[Contact] = Field(min_length=1)
    """Who is alerted; every channel the tier alerts by needs a contact with that address."""
    sites: list[Site] = Field(min_length=1)
    """The client's sites, each backed up, updated and monitored."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Tier keys (see below) merged over the tier for this client only."""
    timezone: TimeZone = "UTC"
    """The client's time zone: backup times and the update window are in it."""
    admin_cidr: Cidr
    """The agency's address range: SSH to the client's server is allowed only from here."""
    shared_host: str = "shared-1"
    """Shared tiers: the platform's shared host the sites run on."""
    platform_stack: str | None = None
    """Shared tiers: the platform stack's full Pulumi name, e.g. organization/carestack/platform."""
    fee: Fee | None = None
    """The monthly fee and its currency; optional: without it credits are shown in percent."""
    traffic: Traffic | None = None
    """How a failover moves the sites' traffic to the standby and back (tiers with failover); default: manual."""


class SharedHost(Strict):
    name: Annotated[str, _pattern(re.compile(r"^[a-z][a-z0-9-]{0,30}$"), "a host name such as shared-1")]
    """The server's name (also its host name), e.g. shared-1."""
    instance_type: str
    """The EC2 instance type, e.g. t3.large."""
    volume_gb: int = Field(ge=8, le=16384)
    """The size of its encrypted root volume in GB."""


class PlatformStack(Strict):
    role: Literal["platform"]
    """Marks the platform stack."""
    admin_cidr: Cidr
    """The agency's address range: SSH to the shared hosts and the standby only from here."""
    shared_hosts: list[SharedHost] = Field(min_length=1)
    """The pool shared-tier clients are placed on."""
    standby: SharedHost
    """The server failovers and restore drills restore onto."""


class DeploymentSettings(Strict):
    """Settings of one deployment rather than of the care contract, checked by the Pulumi program."""

    kuma_url: WebhookUrl | None = None
    """Client stacks, required: the agency's Uptime Kuma; the agent pushes heartbeats to <kuma_url>/api/push."""
    kuma_username: str | None = None
    """Client stacks, required: the Kuma user the monitors are written as."""
    kuma_password: str | None = None
    """Client stacks, required, secret (pulumi config set --secret): that user's password."""
    kuma_alerting_file: str | None = None
    """Client stacks, required: the agency's alerting file (docs/alerting.md), its on-call and SMTP / SMS."""
    ssh_public_key: str | None = None
    """Dedicated tiers and the platform, required: the agency's OpenSSH public key; Ansible logs in with it."""


# --- resolved results --------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """A validated client stack with its tier resolved (catalog + overrides)."""

    source: str
    stack: ClientStack
    tier_name: str
    tier: Tier
    agency: Agency


@dataclass(frozen=True)
class PlatformSpec:
    source: str
    stack: PlatformStack


StackSpec = ClientSpec | PlatformSpec


# --- error formatting --------------------------------------------------------


def _format_loc(prefix: str, loc: Iterable[str | int]) -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += part if text.endswith(":") or not text else f".{part}"
    return text


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[...] down to the type that holds the keys."""
    while get_origin(annotation) in (Union, UnionType, Annotated):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model that owns the keys at `loc`, to list the valid keys there."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = field.annotation if field else None
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _describe(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        valid = _valid_keys(owner) if owner else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key{hint} (valid keys: {', '.join(valid)})"
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "too_short":
        return _too_short(error, root)
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _too_short(error: Mapping[str, Any], root: type[BaseModel]) -> str:
    """An empty (or too short) list: how many entries it needs and what an entry looks like."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    needed, got = error["ctx"]["min_length"], error["ctx"]["actual_length"]
    wanted = f"needs at least {needed} {'entry' if needed == 1 else 'entries'}, got {got or 'none'}"
    owner = _model_at(root, (*loc, 0))
    if owner is not None:
        return f"{wanted}; each entry a mapping with keys: {', '.join(_valid_keys(owner))}"
    choices = _list_choices(root, loc)
    return f"{wanted}; entries from: {', '.join(choices)}" if choices else wanted


def _list_choices(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The values a list of literals (such as channels or weekdays) may hold."""
    owner = _model_at(root, loc[:-1])
    field = owner.model_fields.get(str(loc[-1])) if owner else None
    if field is None or get_origin(field.annotation) is not list:
        return []
    item = get_args(field.annotation)[0]
    return [str(choice) for choice in get_args(item)] if get_origin(item) is Literal else []


def _problems(exc: ValidationError, root: type[BaseModel], prefix: str) -> list[str]:
    return [f"{_format_loc(prefix, err['loc'])}: {_describe(err, root)}" for err in exc.errors()]


# --- the catalog -------------------------------------------------------------


# libyaml's parser where PyYAML has it: the pure-Python one took 25 ms per stack file and 50 ms for the
# catalog, which `lab status` of a fleet paid 40 times.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise SpecError(str(path), ["file not found"]) from None
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; a key set to null is removed; anything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True)
class Catalog:
    source: str
    raw: dict[str, dict[str, Any]]  # each tier with `extends` resolved, before validation
    tiers: dict[str, Tier]
    agency: Agency

    def names(self) -> list[str]:
        return list(self.tiers)


def _resolve_extends(source: str, raw_tiers: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    problems: list[str] = []
    resolved: dict[str, dict[str, Any]] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any] | None:
        if name in resolved:
            return resolved[name]
        body = raw_tiers[name]
        if not isinstance(body, Mapping):
            problems.append(f"tiers.{name}: expected a mapping of the tier's settings")
            return None
        parent = body.get("extends")
        own = {k: v for k, v in body.items() if k != "extends"}
        if parent is None:
            resolved[name] = merge({}, own)
            return resolved[name]
        if parent not in raw_tiers:
            problems.append(f"tiers.{name}.extends: unknown tier {parent!r} (tiers: {', '.join(raw_tiers)})")
            return None
        if parent in chain:
            problems.append(f"tiers.{name}.extends: circular inheritance {' -> '.join((*chain, parent))}")
            return None
        base = resolve(parent, (*chain, parent))
        if base is None:
            return None
        resolved[name] = merge(base, own)
        return resolved[name]

    for name in raw_tiers:
        resolve(name, (name,))
    if problems:
        raise SpecError(source, problems)
    return resolved


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    data = _read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("tiers"), Mapping) or not data["tiers"]:
        raise SpecError(str(path), ["tiers: expected a mapping of tier names to their settings"])
    raw = _resolve_extends(str(path), data["tiers"])
    problems: list[str] = []
    agency: Agency | None = None
    if not isinstance(data.get("agency"), Mapping):
        problems.append(
            "agency: is required: the agency's settings, e.g. agency: {bucket_prefix: nordwerk} "
            "(every client's bucket is <bucket_prefix>-<client id>-backups, and S3 bucket names are global)"
        )
    else:
        try:
            agency = Agency.model_validate(data["agency"])
        except ValidationError as exc:
            problems.extend(_problems(exc, Agency, "agency"))
    tiers: dict[str, Tier] = {}
    for name, body in raw.items():
        try:
            tiers[name] = Tier.model_validate(body)
        except ValidationError as exc:
            problems.extend(_problems(exc, Tier, f"tiers.{name}"))
            continue
        problems.extend(f"tiers.{name}.{p}" for p in tier_problems(tiers[name]))
    if problems or agency is None:
        raise SpecError(str(path), problems)
    return Catalog(str(path), raw, tiers, agency)


# --- semantic checks ---------------------------------------------------------


def tier_problems(tier: Tier) -> list[str]:
    """Contradictions a well-typed tier can still contain, as `path: message`."""
    problems: list[str] = []
    backup, monitoring, updates, sla = tier.backup, tier.monitoring, tier.updates, tier.sla
    try:
        if backup.every == "hourly":
            parse_minute_of_hour(backup.at)
        else:
            parse_time_of_day(backup.at)
    except ValueError as exc:
        problems.append(f"backup.at: {exc} (for a backup every {'hour' if backup.every == 'hourly' else 'day'})")
    if backup.every == "daily" and backup.keep.hourly:
        problems.append(
            f"backup.keep.hourly: {backup.keep.hourly} hourly snapshots can't be kept from one backup a day; "
            'set it to 0 or back up every "hourly"'
        )
    if not any(backup.keep.model_dump().values()):
        problems.append(
            "backup.keep: keeps no snapshot at all; set at least one of " + ", ".join(Keep.model_fields) + " above 0"
        )
    recurring: list[tuple[str, Recurring]] = [(f"backup.{n}", getattr(backup, n)) for n in ("prune", "check")]
    for name, schedule in [*recurring, ("security.scan", tier.security.scan)]:
        if schedule.every == "weekly" and schedule.day is None:
            problems.append(f"{name}.day: a weekly schedule needs a day ({', '.join(WEEKDAYS)})")
        if schedule.every == "daily" and schedule.day is not None:
            problems.append(f"{name}.day: a daily schedule takes no day; remove it or use every: weekly")
    problems.extend(_performance_problems(tier.performance))
    if tier.hosting.mode == "dedicated" and (tier.hosting.instance_type is None or tier.hosting.volume_gb is None):
        problems.append("hosting: a dedicated server needs instance_type and volume_gb")
    if tier.hosting.mode == "shared" and (tier.hosting.instance_type or tier.hosting.volume_gb):
        problems.append("hosting: shared hosting is sized by the platform stack; remove instance_type and volume_gb")
    if not 15 * 60 <= updates.window.duration <= 12 * 3600:
        problems.append(
            f"updates.window.duration: {format_duration(updates.window.duration)} is outside 15m..12h "
            "(an update needs time for a backup, the update, probes and a rollback)"
        )
    if updates.window.duration < backup.timeout:
        problems.append(
            f"updates.window.duration: {format_duration(updates.window.duration)} is shorter than the backup "
            f"timeout {format_duration(backup.timeout)}, but every update starts with a backup"
        )
    if not 20 <= monitoring.interval <= 24 * 3600:
        problems.append(f"monitoring.interval: {format_duration(monitoring.interval)} is outside 20s..24h")
    if monitoring.alert_within < monitoring.interval:
        problems.append(
            f"monitoring.alert_within: {format_duration(monitoring.alert_within)} can't be kept with a check "
            f"every {format_duration(monitoring.interval)}; check more often or allow more time"
        )
    support = sla.support
    if parse_time_of_day(support.from_) >= parse_time_of_day(support.to):
        problems.append(f"sla.support: from {support.from_} is not before to {support.to}")
    if support.outage_line_until is not None and parse_time_of_day(support.outage_line_until) < parse_time_of_day(
        support.to
    ):
        problems.append(
            f"sla.support.outage_line_until: {support.outage_line_until} ends before support ({support.to})"
        )
    day_minutes = _minutes_between(support.from_, support.to)
    for name, severity in sla.severities.items():
        if severity.fix.comparable_minutes(day_minutes) < severity.response.comparable_minutes(day_minutes):
            problems.append(
                f"sla.severities.{name}.fix: {severity.fix} is sooner than the response {severity.response}"
            )
    problems.extend(_credit_problems(sla))
    if sla.restore_drill is not None and sla.failover is None:
        problems.append("sla.restore_drill: a restore drill needs a standby, but this tier has no failover")
    return problems


# The performance verdict: the last week against the PERFORMANCE_BASELINE_WEEKS before it.
PERFORMANCE_BASELINE_WEEKS = 4
PERFORMANCE_SAMPLE_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)


def _performance_problems(perf: PerformanceTier) -> list[str]:
    problems: list[str] = []
    every = perf.sample.every
    if every % 3600 or every // 3600 not in PERFORMANCE_SAMPLE_HOURS:
        hours = ", ".join(f"{h}h" for h in PERFORMANCE_SAMPLE_HOURS)
        problems.append(
            f"performance.sample.every: {format_duration(every)} does not divide a day into whole hours; "
            f"use one of {hours}"
        )
    try:
        parse_minute_of_hour(perf.sample.at)
    except ValueError as exc:
        problems.append(f"performance.sample.at: {exc}")
    needed = (PERFORMANCE_BASELINE_WEEKS + 1) * 7 * 86400
    if perf.keep < needed:
        problems.append(
            f"performance.keep: {format_duration(perf.keep)} is shorter than the verdict reads (the week judged "
            f"and the {PERFORMANCE_BASELINE_WEEKS} before it); keep at least {format_duration(needed)}"
        )
    if perf.timeout >= every:
        problems.append(
            f"performance.timeout: {format_duration(perf.timeout)} is not shorter than the sampling period "
            f"{format_duration(every)}"
        )
    return problems


def _credit_problems(sla: SlaTier) -> list[str]:
    """A credit table reads from the target downwards: each band lower and dearer than the one before."""
    problems: list[str] = []
    bands = sla.credits.bands
    if bands[0].below > sla.uptime_target:
        problems.append(
            f"sla.credits.bands[0].below: {bands[0].below} is above the uptime target {sla.uptime_target}, "
            "so a month that met the target would owe a credit; start at or below the target"
        )
    for index, (upper, lower) in enumerate(itertools.pairwise(bands), start=1):
        if lower.below >= upper.below:
            problems.append(
                f"sla.credits.bands[{index}].below: {lower.below} is not below the previous band's {upper.below}; "
                "list the bands from the target downwards"
            )
        if lower.percent <= upper.percent:
            problems.append(
                f"sla.credits.bands[{index}].percent: {lower.percent} is not more than the previous band's "
                f"{upper.percent}; a lower uptime earns a larger credit"
            )
    for index, band in enumerate(bands):
        if band.percent > sla.credits.cap:
            problems.append(
                f"sla.credits.bands[{index}].percent: {band.percent} is above the cap {sla.credits.cap}; "
                "raise the cap or lower the band"
            )
    return problems


def _minutes_between(start: str, end: str) -> int:
    (h1, m1), (h2, m2) = parse_time_of_day(start), parse_time_of_day(end)
    return (h2 * 60 + m2) - (h1 * 60 + m1)


def _client_problems(stack: ClientStack, tier: Tier) -> list[str]:
    problems: list[str] = []
    if stack.traffic is not None and stack.traffic.provider == "route53" and not stack.traffic.hosted_zone_id:
        problems.append(
            "carestack:traffic.hosted_zone_id: the route53 switch needs the hosted zone that holds the sites' "
            "records (e.g. Z0123456789ABCDEFGHIJ), or use provider: manual"
        )
    seen_domains: dict[str, str] = {}  # every name a site answers to, and where it was given
    seen_names: dict[str, int] = {}
    for index, site in enumerate(stack.sites):
        here = f"carestack:sites[{index}]"
        for where, domain in [("domain", site.domain)] + [(f"aliases[{n}]", a) for n, a in enumerate(site.aliases)]:
            if domain in seen_domains:
                problems.append(f"{here}.{where}: {domain} is already {seen_domains[domain]}")
            seen_domains.setdefault(domain, f"sites[{index}].{where}")
        name = site_name(site)
        if name in seen_names:
            problems.append(
                f"{here}.name: the site name {name!r} is already used by sites[{seen_names[name]}]; set a distinct name"
            )
        seen_names.setdefault(name, index)
        if len(site.checks) > tier.monitoring.pages_per_site:
            problems.append(
                f"{here}.checks: {len(site.checks)} pages, but the tier checks at most "
                f"{tier.monitoring.pages_per_site} per site"
            )
        paths = [check.path for check in site.checks]
        for dup in sorted({p for p in paths if paths.count(p) > 1}):
            problems.append(f"{here}.checks: the page {dup} is listed twice")
    reachable = {
        "email": any(c.email for c in stack.contacts),
        "sms": any(c.phone for c in stack.contacts),
        "webhook": any(c.webhook for c in stack.contacts),
    }
    needs = {"email": "an email", "sms": "a phone", "webhook": "a webhook"}
    for channel in tier.monitoring.channels:
        if not reachable[channel]:
            problems.append(f"carestack:contacts: the tier alerts by {channel}, but no contact has {needs[channel]}")
    return problems


def site_name(site: Site) -> str:
    """The site's short name: given, or the first label of its domain that isn't www."""
    if site.name:
        return site.name
    labels = [label for label in site.domain.split(".")[:-1] if label != "www"] or ["site"]
    return re.sub(r"[^a-z0-9]", "", labels[0])[:12] or "site"


# --- loading stacks ----------------------------------------------------------


def stack_name(path: Path) -> str:
    """`Pulumi.bakery.yaml` -> `bakery`."""
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith((".yaml", ".yml"))) or name.count(".") < 2:
        raise SpecError(str(path), ["a stack file is named Pulumi.<stack>.yaml"])
    return name.split(".", 1)[1].rsplit(".", 1)[0]


def carestack_config(source: str, document: Any) -> dict[str, Any]:
    """The `carestack:` keys of a stack document, without the namespace."""
    if not isinstance(document, Mapping) or not isinstance(document.get("config"), Mapping):
        raise SpecError(source, ["config: a stack file holds its settings under config: (Pulumi stack format)"])
    return {
        key.split(":", 1)[1]: value
        for key, value in document["config"].items()
        if isinstance(key, str) and key.startswith(f"{NAMESPACE}:")
    }


# Settings of one deployment rather than of the care contract: `pulumi config set`
# writes them into the same stack file, and the Pulumi program checks them
# (infra/program.py) because only a real deployment needs them.
DEPLOYMENT_KEYS = frozenset(DeploymentSettings.model_fields)


def _platform_problems(stack: PlatformStack) -> list[str]:
    names = [host.name for host in stack.shared_hosts] + [stack.standby.name]
    return [
        f"{NAMESPACE}:{where}.name: {name!r} is used by more than one host; host names must be unique"
        for where, name in [(f"shared_hosts[{i}]", h.name) for i, h in enumerate(stack.shared_hosts)]
        + [("standby", stack.standby.name)]
        if names.count(name) > 1
    ]


def parse_stack(source: str, config: Mapping[str, Any], catalog: Catalog | None = None) -> StackSpec:
    """Validate the `carestack:` settings of one stack (namespace already stripped)."""
    config = {key: value for key, value in config.items() if key not in DEPLOYMENT_KEYS}
    if config.get("role") == "platform":
        try:
            platform = PlatformStack.model_validate(config)
        except ValidationError as exc:
            raise SpecError(source, _problems(exc, PlatformStack, f"{NAMESPACE}:")) from None
        if host_problems := _platform_problems(platform):
            raise SpecError(source, host_problems)
        return PlatformSpec(source, platform)

    catalog = catalog or load_catalog()
    problems: list[str] = []
    stack: ClientStack | None = None
    try:
        stack = ClientStack.model_validate(config)
    except ValidationError as exc:
        problems.extend(_problems(exc, ClientStack, f"{NAMESPACE}:"))

    tier_name = config.get("tier")
    if tier_name is not None and tier_name not in catalog.tiers:
        problems.append(f"{NAMESPACE}:tier: unknown tier {tier_name!r} (tiers: {', '.join(catalog.names())})")
        raise SpecError(source, problems)
    overrides = config.get("overrides") or {}
    if not isinstance(overrides, Mapping) or tier_name is None:
        raise SpecError(source, problems)

    merged = merge(catalog.raw[tier_name], overrides)
    tier: Tier | None = None
    try:
        tier = Tier.model_validate(merged)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            where = f"{NAMESPACE}:overrides" if _has_path(overrides, loc) else f"{catalog.source}: tiers.{tier_name}"
            problems.append(f"{_format_loc(where, loc)}: {_describe(error, Tier)}")
    if tier is not None:
        for problem in tier_problems(tier):
            path = tuple(problem.split(":", 1)[0].split("."))
            if _has_path(overrides, path):
                problems.append(f"{NAMESPACE}:overrides.{problem}")
            else:
                problems.append(f"{NAMESPACE}:overrides: with tier {tier_name} and these overrides, {problem}")
    if stack is not None and tier is not None:
        problems.extend(_client_problems(stack, tier))
    if problems or stack is None or tier is None:
        raise SpecError(source, problems)
    return ClientSpec(source, stack, tier_name, tier, catalog.agency)


def _has_path(data: Any, loc: tuple[str | int, ...]) -> bool:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def load_stack(path: Path, catalog: Catalog | None = None) -> StackSpec:
    path = Path(path)
    stack_name(path)
    return parse_stack(str(path), carestack_config(str(path), _read_yaml(path)), catalog)


def example_stacks() -> list[Path]:
    """The stacks shipped in stacks/: the platform first, then the clients."""
    paths = sorted(STACKS_DIR.glob("Pulumi.*.yaml"))
    return sorted(paths, key=lambda p: stack_name(p) != "platform")
