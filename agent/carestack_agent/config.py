"""The agent's configuration: one schema, from which parsing, validation and the docs come.

The controller renders /etc/carestack/agent.toml from the CarePlan; this module
is the only reader. The settings classes below *are* the schema: each field is
one key with its rule, its description and either its default, "required" (the
controller sets it from where it puts things) or "the plan" (the CarePlan's
value: never an agent-side default). `parse` walks them, so validation, the
typed settings, the sample config and the README's config section
(`config_docs.py`) cannot disagree about a key.

Validation reports every error with its key path (`sites.bakery-www.retention.keep_daily:
must be an integer >= 0, got "x"`) before any job starts. Secrets are *paths*
here; their contents are read by `secrets.py` at run time only.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .config_rules import (
    CHECK_PATH,
    DB_NAME,
    DOMAIN,
    HOSTNAME,
    RELATIVE_PATH,
    SITE_ID,
    USER_NAME,
    Rule,
    abspath,
    boolean,
    integer,
    list_of,
    number,
    one_of,
    path_or_url,
    repository,
    show,
    string,
    subset_of,
    url,
)

DEFAULT_PATH = Path("/etc/carestack/agent.toml")
ENV_PATH = "CARESTACK_AGENT_CONFIG"
T = TypeVar("T")

# Bucket prefixes beside the sites' repositories (<bucket>/<site id>) that are not a site's.
RESERVED_SITE_IDS = ("evidence",)
KINDS = ("wordpress", "woocommerce", "php", "static")
PROVIDERS = ("apt", "wordpress", "release")
APT_POLICIES = ("security", "all", "none")
WORDPRESS_POLICIES = ("minor", "all", "none")


class ConfigError(Exception):
    """Raised with every problem found; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# -- how a key is declared --------------------------------------------------------------

SETTING = "carestack_setting"  # the dataclass field metadata entry that makes a field a config key


@dataclass(frozen=True)
class Setting:
    doc: str
    rule: Rule | None  # None: a table or an array of tables (their own keys have the rules)
    plan: bool  # the controller takes the value from the CarePlan; there is no default
    example: Any  # a TOML value for the sample config, for a key without a default


def key(rule: Rule, doc: str, *, default: Any = dataclasses.MISSING, plan: bool = False, example: Any = None) -> Any:
    """One config key. No default: the key is required. `default=None`: optional, unset means what `doc` says."""
    if plan and default is not dataclasses.MISSING:
        raise TypeError("a value the plan owns has no agent-side default")
    return field(default=default, metadata={SETTING: Setting(doc, rule, plan, example)})


def table(*, plan: bool = False, optional: bool = False) -> Any:
    """A sub-table (`[sites.<id>.jobs]`) or, for a tuple of settings classes, an array of tables; the class's
    docstring describes it."""
    return field(default=None if optional else dataclasses.MISSING, metadata={SETTING: Setting("", None, plan, None)})


# -- the schema ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgentSettings:
    """The host and how the agent runs its tools."""

    host: str = key(string(HOSTNAME, "a host name"), "snapshot host (restic --host)", plan=True, example="shared-1")
    state_dir: Path = key(
        abspath,
        "journal.jsonl, locks/, clean/, check/, cache/, dump/ (FUSE mount points), updates/, releases/, "
        "evidence/outbox/",
        example="/var/lib/carestack",
    )
    restic: Path = key(abspath, "the restic binary", default=Path("/usr/bin/restic"))
    nice: int = key(integer(0, 19), "niceness of restic and database dumps", default=10)
    ionice_idle: bool = key(boolean, "run restic and dumps in the idle I/O class (ionice -c 3)", default=True)
    sched_idle: bool = key(
        boolean, "run restic and dumps as SCHED_IDLE (chrt --idle: CPU only when nothing else runs)", default=False
    )
    restic_cpus: int = key(
        integer(0, 1024),
        "CPUs restic's Go runtime runs on at once (GOMAXPROCS); 0: half of this server's CPUs, at least one, "
        "so the sites keep the rest (priorities alone did not keep a page's p95: see bench/README.md)",
        default=0,
    )
    dump_transport: str = key(
        one_of("stream", "spool"),
        "stream: a FUSE file fed by mariadb-dump (never on disk); spool: a 0600 file under state_dir, "
        "deleted after the backup (for hosts without /dev/fuse)",
        default="stream",
    )
    mariadb_dump: Path = key(abspath, "the dump client of backups", default=Path("/usr/bin/mariadb-dump"))
    mariadb: Path = key(abspath, "the client restores import with", default=Path("/usr/bin/mariadb"))
    retries: int = key(integer(0, 20), "extra attempts of a restic command after a transient error", default=3)
    retry_backoff_seconds: float = key(
        number(0), "first retry delay; doubles each attempt (within the job's deadline)", default=10.0
    )
    push_timeout_seconds: float = key(number(0.1), "one Kuma push's time limit", default=10.0)
    php: Path = key(abspath, "PHP CLI of the wordpress update provider", default=Path("/usr/bin/php"))
    apt_sources: Path | None = key(
        abspath,
        "a directory of .list/.sources files the apt update provider reads instead of the system's (its "
        "package lists kept under state_dir/apt/lists); unset: the system's sources",
        default=None,
        example="/etc/carestack/apt-sources.d",
    )
    probe_settle_seconds: float = key(
        number(0),
        "after a change, wait this long before the first probe: PHP's opcache re-reads a changed file only "
        "every opcache.revalidate_freq seconds (2 by default), until then the old code answers",
        default=2.5,
    )
    probe_attempts: int = key(integer(1, 60), "rounds of requests before a page fails (cache warm-up)", default=4)
    probe_retry_seconds: float = key(number(0), "pause between a page's attempts", default=1.0)
    probe_timeout_seconds: float = key(number(0.1), "one request's time limit", default=10.0)
    yara: Path = key(
        abspath, "the yara CLI the scan's pattern check runs (Debian package yara)", default=Path("/usr/bin/yara")
    )
    probe_min_limit_seconds: float = key(
        number(0),
        "a page's response-time limit is never below this (its baseline times probe_slowdown_limit may be "
        "milliseconds, where timer noise alone would exceed it)",
        default=1.0,
    )


@dataclass(frozen=True, kw_only=True)
class Database:
    """The site's MariaDB database; absent: the site has none (a static site never has one)."""

    name: str = key(
        string(DB_NAME, "a MariaDB database name ([A-Za-z0-9_], at most 64)"),
        "the database dumped into each snapshot",
        plan=True,
        example="bakery_www",
    )
    socket: Path = key(abspath, "the server's unix socket", default=Path("/run/mysqld/mysqld.sock"))


@dataclass(frozen=True, kw_only=True)
class Retention:
    """What `restic forget --keep-*` keeps after each backup; at least one must be > 0."""

    keep_last: int = key(integer(0), "the newest N snapshots", plan=True, example=0)
    keep_hourly: int = key(integer(0), "the last snapshot of each of the last N hours", plan=True, example=0)
    keep_daily: int = key(integer(0), "the last snapshot of each of the last N days", plan=True, example=7)
    keep_weekly: int = key(integer(0), "the last snapshot of each of the last N weeks", plan=True, example=0)
    keep_monthly: int = key(integer(0), "the last snapshot of each of the last N months", plan=True, example=0)
    keep_yearly: int = key(integer(0), "the last snapshot of each of the last N years", plan=True, example=0)


@dataclass(frozen=True, kw_only=True)
class Jobs:
    """Each job's deadline (the watchdog stops it there) and the check's data rotation."""

    backup_timeout_seconds: int = key(integer(1), "a backup's deadline", plan=True, example=3600)
    check_timeout_seconds: int = key(integer(1), "a repository check's deadline", plan=True, example=3600)
    prune_timeout_seconds: int = key(integer(1), "a prune's deadline", plan=True, example=3600)
    restore_timeout_seconds: int = key(
        integer(1), "a restore's deadline, also of an update's rollback", plan=True, example=3600
    )
    check_read_data_subsets: int = key(
        integer(1, 10000),
        "N: the k-th check reads --read-data-subset=k/N, all data every N checks (1: --read-data)",
        plan=True,
        example=4,
    )
    update_timeout_seconds: int = key(
        integer(1), "an update's deadline: the plan's update window", plan=True, example=7200
    )
    repository_stall_seconds: int = key(
        integer(1),
        "a restic command that makes no progress this long is stopped and the job fails naming the "
        "repository's endpoint (the plan's limit, from the backup period)",
        plan=True,
        example=60,
    )
    scan_timeout_seconds: int = key(integer(1), "a security scan's deadline", plan=True, example=3600)
    perf_timeout_seconds: int = key(integer(1), "a performance sample's deadline", plan=True, example=600)


@dataclass(frozen=True, kw_only=True)
class Updates:
    """The plan's update policy: what `update` may change (snapshot, apply, probe, roll back a broken site)."""

    providers: tuple[str, ...] = key(
        subset_of(*PROVIDERS),
        "what `update` may change on this site; empty: `update` does nothing",
        plan=True,
        example=["apt", "wordpress"],
    )
    apt_policy: str = key(
        one_of(*APT_POLICIES), "apt: security takes only *-security updates", plan=True, example="security"
    )
    wordpress_policy: str = key(
        one_of(*WORDPRESS_POLICIES),
        "plugins and themes: minor keeps the first version number",
        plan=True,
        example="minor",
    )
    rollback: bool = key(boolean, "roll back a failed update from the pre-update snapshot", plan=True, example=True)
    probe_slowdown_limit: float = key(
        number(1), "a page may take this many times its pre-update baseline", plan=True, example=3.0
    )
    wordpress_feed: str | None = key(
        path_or_url,
        "a directory holding index.json, or the URL of an index.json, listing plugin/theme versions and "
        "their zips; unset: WordPress's own update service",
        default=None,
        example="/srv/feeds/bakery",
    )
    release_dir: Path | None = key(
        abspath,
        "where release artifacts are dropped; unset: state_dir/releases/<id>",
        default=None,
        example="/var/lib/carestack/releases/bakery-www",
    )
    release_preserve: tuple[str, ...] = key(
        list_of(string(RELATIVE_PATH, "a path inside the site root"), non_empty=False),
        "paths inside the root a new release carries over from the running one (uploads, local config)",
        default=(),
    )


@dataclass(frozen=True, kw_only=True)
class Scan:
    """The security scan (`scan SITE`): where uploads live, where the vulnerability feed and the core checksums are."""

    upload_dirs: tuple[str, ...] = key(
        list_of(string(RELATIVE_PATH, "a path inside the site root"), non_empty=False),
        "directories inside the root where any PHP or other executable file is a finding",
        default=("wp-content/uploads",),
    )
    feed: str | None = key(
        path_or_url,
        "the vulnerability feed (JSON: slug, affected versions, fixed_in, reference), a path or an http(s) URL; "
        "unset: versions are not checked",
        default=None,
        example="/etc/carestack/vulnerabilities.json",
    )
    core_checksums: Path = key(
        abspath,
        "WordPress core checksum files, <version>.json each (WordPress's core checksums API format: "
        '{"checksums": {path: md5}}), for the versions Debian\'s wordpress package is not; '
        "a missing file: that version's core is not compared",
        default=Path("/etc/carestack/core-checksums"),
    )


@dataclass(frozen=True, kw_only=True)
class Perf:
    """The performance trend (`perf SITE`): how many requests a sample makes, what counts as a slowdown,
    how long samples are kept."""

    requests_per_page: int = key(integer(1, 10), "requests to each checked page in one sample", plan=True, example=3)
    limit_percent: float = key(
        number(0),
        "a page whose median of the last 7 days is this much slower than its median of the weeks before "
        "(and floor_ms) is a regression",
        plan=True,
        example=20.0,
    )
    floor_ms: int = key(integer(0), "...and at least this many milliseconds slower", plan=True, example=100)
    baseline_weeks: int = key(integer(1, 52), "the weeks before the last one the verdict compares with", plan=True,
                              example=4)  # fmt: skip
    keep_days: int = key(integer(1), "samples older than this are pruned", plan=True, example=35)


@dataclass(frozen=True, kw_only=True)
class Drill:
    """The restore drill (`drill SITE`, on the standby only): the site's latest complete snapshot restored
    into a scratch site (its own directory, database and vhost), its checked pages probed there, then
    removed; absent: this host runs no drills of the site."""

    timeout_seconds: int = key(
        integer(1), "the drill's deadline: the plan's failover RTO (restore + verify must fit in it)", plan=True,
        example=3600,
    )  # fmt: skip
    scratch_dir: Path = key(
        abspath, "scratch sites live in <scratch_dir>/<site> (never the site's own root)",
        default=Path("/srv/carestack-drill"),
    )  # fmt: skip
    port: int = key(integer(1, 65535), "the scratch vhost listens on 127.0.0.1:<port>", default=8089)
    vhost_dir: Path = key(
        abspath,
        "where the scratch vhost (carestack-drill-<site>.conf) is written",
        default=Path("/etc/nginx/sites-enabled"),
    )
    reload_command: tuple[str, ...] = key(
        list_of(string(), non_empty=True), "makes the web server read its vhosts again",
        default=("/usr/sbin/nginx", "-s", "reload"),
    )  # fmt: skip
    php_socket: Path | None = key(
        abspath,
        "PHP-FPM socket the scratch vhost passes .php to; unset: files only (static sites)",
        default=None,
        example="/run/php/carestack-drill.sock",
    )
    user: str | None = key(
        string(USER_NAME, "a Linux user name"),
        "the scratch site's files are given to this user (its PHP pool's) and its wp-config.php logs into the "
        "scratch database as it (unix_socket); unset: as restored",
        default=None,
        example="carestack-drill",
    )


@dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """The pages an update probes before and after each change, one table per page; at least one when
    updates.providers is set."""

    path: str = key(string(CHECK_PATH, "a path starting with /"), "requested on 127.0.0.1", plan=True, example="/")
    keyword: str = key(string(), "text the page must contain", plan=True, example="Bäckerei Korn")
    status: int = key(integer(100, 599), "the HTTP status the page must answer with", plan=True, example=200)


@dataclass(frozen=True, kw_only=True)
class Site:
    """One site (its id: [a-z][a-z0-9-]{0,31}) and where its backups go."""

    id: str  # the table's name, not a key
    domain: str = key(
        string(DOMAIN, "a domain name"), "the Host of the probes", plan=True, example="www.bakery.example"
    )
    kind: str = key(one_of(*KINDS), "what runs there", plan=True, example="wordpress")
    root: Path = key(abspath, "the document root", plan=True, example="/srv/www/bakery-www")
    paths: tuple[Path, ...] = key(
        list_of(abspath, non_empty=True), "what each snapshot holds", plan=True, example=["/srv/www/bakery-www"]
    )
    exclude: tuple[str, ...] = key(
        list_of(string(), non_empty=False),
        "restic --exclude patterns (regenerable caches)",
        example=["/srv/www/bakery-www/wp-content/cache"],
    )
    client: str | None = key(
        string(SITE_ID, "a client id"),
        "the client the site belongs to, named in its evidence records; unset: the repository's bucket",
        default=None,
        example="bakery",
    )
    repository: str = key(
        repository,
        "the site's restic repository",
        example="s3:http://10.77.0.1:9000/cs-bakery-backups/bakery-www",
    )
    password_file: Path = key(
        abspath,
        "the repository password (a secret file, mode 0600)",
        example="/etc/carestack/secrets/bakery.restic-password",
    )
    credentials_file: Path | None = key(
        abspath,
        "S3 keys, AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= lines (a secret file); required for an s3: repository",
        default=None,
        example="/etc/carestack/secrets/bakery.s3.env",
    )
    push_base_url: str | None = key(
        url,
        "Kuma's push endpoint; with push_tokens_file or neither; unset: no heartbeats",
        default=None,
        example="http://10.77.0.1:3001/api/push",
    )
    push_tokens_file: Path | None = key(
        abspath,
        "the push monitors' tokens, BACKUP=, PRUNE=, CHECK=, UPDATE=, SCAN=, PERF=, DRILL= lines (a secret file)",
        default=None,
        example="/etc/carestack/secrets/bakery-www.push.env",
    )
    database: Database | None = table(optional=True)
    retention: Retention = table(plan=True)
    jobs: Jobs = table(plan=True)
    updates: Updates = table(plan=True)
    checks: tuple[HealthCheck, ...] = table(plan=True)
    scan: Scan | None = table(optional=True)
    perf: Perf = table(plan=True)
    drill: Drill | None = table(optional=True)


@dataclass(frozen=True)
class Config:
    path: Path
    agent: AgentSettings
    sites: dict[str, Site]

    def site(self, site_id: str) -> Site:
        try:
            return self.sites[site_id]
        except KeyError:
            known = ", ".join(sorted(self.sites)) or "none"
            raise ConfigError([f"sites.{site_id}: no such site (configured: {known})"]) from None


KEEP_KEYS = tuple(f.name for f in dataclasses.fields(Retention))  # restic's order of the --keep-* flags


# -- reading the schema -------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One key of a settings class: its name, its Python type, how it is declared and its default."""

    name: str
    hint: Any
    setting: Setting
    default: Any  # dataclasses.MISSING when required

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def subtable(self) -> type | None:
        """The settings class of a sub-table (`Jobs`) or of an array of tables' items (`HealthCheck`)."""
        inner = _item_type(_optional_of(self.hint))
        return inner if dataclasses.is_dataclass(inner) and isinstance(inner, type) else None

    @property
    def is_array(self) -> bool:
        """A TOML array: of tables when `subtable` is set (`checks`), else of values (`paths`)."""
        return get_origin(self.hint) is tuple


def keys_of(cls: type) -> tuple[Key, ...]:
    """The config keys of a settings class, in declaration order (the docs' and the errors' order)."""
    hints = get_type_hints(cls)
    return tuple(
        Key(f.name, hints[f.name], f.metadata[SETTING], f.default)
        for f in dataclasses.fields(cls)
        if SETTING in f.metadata
    )


def _optional_of(hint: Any) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        return next(a for a in get_args(hint) if a is not type(None))
    return hint


def _item_type(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is tuple else hint


def _convert(hint: Any, value: Any) -> Any:
    """A checked TOML value as the settings attribute holds it (Path, float, tuple)."""
    hint = _optional_of(hint)
    if value is None:
        return None
    if get_origin(hint) is tuple:
        return tuple(_convert(get_args(hint)[0], item) for item in value)
    if hint is Path:
        return Path(value)
    if hint is float:
        return float(value)
    return value


# -- parsing ----------------------------------------------------------------------------


def _table(cls: type[T], data: Any, path: str, errors: list[str], **given: Any) -> T | None:
    """Check one table against its settings class; the settings object, or None if it had errors."""
    if not isinstance(data, dict):
        errors.append(f"{path}: must be a table, got {show(data)}")
        return None
    before = len(errors)
    keys = keys_of(cls)
    names = {k.name for k in keys}
    errors += [f"{path}.{name}: unknown key" for name in data if name not in names]
    values: dict[str, Any] = dict(given)
    for k in keys:
        sub = k.subtable
        if k.name not in data:
            if sub is not None and k.required and not k.is_array:
                values[k.name] = _table(sub, {}, f"{path}.{k.name}", errors)  # name each key the table lacks
            elif k.required:
                errors.append(f"{path}.{k.name}: is required")
            else:
                values[k.name] = k.default
            continue
        raw = data[k.name]
        if sub is not None and k.is_array:
            values[k.name] = _array(sub, raw, f"{path}.{k.name}", errors)
        elif sub is not None:
            values[k.name] = _table(sub, raw, f"{path}.{k.name}", errors)
        else:
            assert k.setting.rule is not None
            problem = k.setting.rule.problem(raw)
            if problem:
                errors.append(f"{path}.{k.name}: {problem}")
            else:
                values[k.name] = _convert(k.hint, raw)
    return cls(**values) if len(errors) == before else None


def _array(cls: type[T], data: Any, path: str, errors: list[str]) -> tuple[T, ...] | None:
    """An array of tables (`[[path]]`); each item checked like a table, its errors name its index."""
    if not isinstance(data, list):
        errors.append(f"{path}: must be an array of tables ([[{path}]]), got {show(data)}")
        return None
    items = [_table(cls, item, f"{path}[{i}]", errors) for i, item in enumerate(data)]
    return tuple(item for item in items if item is not None)


def parse(data: Mapping[str, Any], path: Path = DEFAULT_PATH) -> Config:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    errors: list[str] = [f"{name}: unknown key" for name in data if name not in ("agent", "sites")]
    if "agent" not in data:
        errors.append("agent: is required")
    agent = _table(AgentSettings, data.get("agent", {}), "agent", errors)
    raw_sites = data.get("sites", {})
    if not isinstance(raw_sites, dict):
        errors.append(f"sites: must be a table, got {show(raw_sites)}")
        raw_sites = {}
    sites: dict[str, Site] = {}
    for site_id, raw in raw_sites.items():
        site_path = f"sites.{site_id}"
        if not SITE_ID.match(site_id):
            errors.append(f"{site_path}: site id must match [a-z][a-z0-9-]{{0,31}}")
        elif site_id in RESERVED_SITE_IDS:
            errors.append(
                f"{site_path}: the site id {site_id!r} is reserved: the bucket's {site_id}/ prefix holds the "
                "evidence records, and a repository there would mix with them; choose another id"
            )
        site = _table(Site, raw, site_path, errors, id=site_id)
        if isinstance(raw, dict):
            _cross_checks(raw, site_path, errors)
        if site is not None:
            sites[site_id] = site
    if errors or agent is None:
        raise ConfigError(errors)
    return Config(path=path, agent=agent, sites={i: _with_release_dir(s, agent.state_dir) for i, s in sites.items()})


def _with_release_dir(site: Site, state_dir: Path) -> Site:
    if site.updates.release_dir is not None:
        return site
    updates = dataclasses.replace(site.updates, release_dir=state_dir / "releases" / site.id)
    return dataclasses.replace(site, updates=updates)


def _providers(raw: dict[str, Any]) -> list[Any]:
    updates = raw.get("updates")
    providers = updates.get("providers") if isinstance(updates, dict) else None
    return providers if isinstance(providers, list) else []


def _keeps_nothing(raw: dict[str, Any]) -> bool:
    retention = raw.get("retention")
    if not isinstance(retention, dict):
        return False
    values = [retention.get(k.name, k.default) for k in keys_of(Retention)]  # a missing plan key: not an int
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values) and not any(values)


@dataclass(frozen=True)
class SiteRule:
    """A rule between a site's keys: the key it names ("" for the site), the error, when a raw site table breaks it."""

    key: str
    message: str
    broken: Callable[[dict[str, Any]], bool]


# Each key's own rule is checked already; these skip values of the wrong type. The docs list them too.
SITE_RULES = (
    SiteRule(
        "credentials_file",
        "is required for an s3: repository",
        lambda raw: str(raw.get("repository")).startswith("s3:") and "credentials_file" not in raw,
    ),
    SiteRule(
        "",
        "push_base_url and push_tokens_file go together (set both or neither)",
        lambda raw: ("push_base_url" in raw) != ("push_tokens_file" in raw),
    ),
    SiteRule("retention", "at least one keep_* must be > 0 (all zero would keep nothing)", _keeps_nothing),
    SiteRule(
        "database", "a static site has no database", lambda raw: raw.get("kind") == "static" and "database" in raw
    ),
    SiteRule(
        "checks",
        "updates need at least one page to probe (updates.providers is set)",
        lambda raw: bool(_providers(raw)) and raw.get("checks") == [],
    ),
    SiteRule(
        "updates.providers",
        "wordpress applies to kind wordpress or woocommerce only",
        lambda raw: "wordpress" in _providers(raw) and raw.get("kind") not in ("wordpress", "woocommerce"),
    ),
)


def _cross_checks(raw: dict[str, Any], path: str, errors: list[str]) -> None:
    errors += [f"{path}{'.' if rule.key else ''}{rule.key}: {rule.message}" for rule in SITE_RULES if rule.broken(raw)]


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file (explicit path, $CARESTACK_AGENT_CONFIG, or the default)."""
    p = config_path(path)
    try:
        with open(p, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{p}: no such file"]) from None
    except PermissionError:
        raise ConfigError([f"{p}: permission denied"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{p}: not valid TOML: {e}"]) from None
    return parse(data, p)
