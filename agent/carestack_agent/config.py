"""The agent's configuration: schema, validation and typed settings.

The controller renders /etc/carestack/agent.toml from the CarePlan; this module
is the only reader. Validation walks the whole file and reports every error
with its key path (`sites.bakery-www.retention.keep_daily: must be an integer
>= 0, got "x"`) before any job starts. Secrets are *paths* here; their contents
are read by `secrets.py` at run time only.

The schema is declarative (one `Field` per key, like borgmatic's schema.yaml),
so `carestack-agent validate` and the code that builds the settings can never
disagree about a key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_PATH = Path("/etc/carestack/agent.toml")
ENV_PATH = "CARESTACK_AGENT_CONFIG"

SITE_ID = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
T = TypeVar("T")

KINDS = ("wordpress", "woocommerce", "php", "static")
PROVIDERS = ("apt", "wordpress", "release")
APT_POLICIES = ("security", "all", "none")
WORDPRESS_POLICIES = ("minor", "all", "none")
# A check's path: what the probe requests on the site (query strings allowed, no host).
CHECK_PATH = re.compile(r"^/[^\s#]*$")
# release_preserve entries: paths inside the site root, kept across a release.
RELATIVE_PATH = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\0]+$")
KEEP_KEYS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


class ConfigError(Exception):
    """Raised with every problem found; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# -- schema ------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # returns an error message (without the key path) or None


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return type(value).__name__
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def integer(minimum: int, maximum: int | None = None) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= minimum and (maximum is None or v <= maximum)
        if ok:
            return None
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        return f"must be an integer {bound}, got {_show(v)}"

    return check


def number(minimum: float) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= minimum:
            return None
        return f"must be a number >= {minimum:g}, got {_show(v)}"

    return check


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {_show(v)}"


def string(pattern: re.Pattern[str] | None = None, what: str = "") -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, str) or not v:
            return f"must be a non-empty string, got {_show(v)}"
        if pattern is not None and not pattern.match(v):
            return f"must be {what}, got {_show(v)}"
        return None

    return check


def one_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {_show(v)}"

    return check


def abspath(v: Any) -> str | None:
    if not isinstance(v, str) or not v.startswith("/") or "\0" in v:
        return f"must be an absolute path, got {_show(v)}"
    if any(part == ".." for part in v.split("/")):
        return f"must not contain '..', got {_show(v)}"
    return None


def list_of(item: Check, *, non_empty: bool) -> Check:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return f"must be a list, got {_show(v)}"
        if non_empty and not v:
            return "must not be empty"
        for i, x in enumerate(v):
            err = item(x)
            if err:
                return f"item {i} {err}"
        return None

    return check


def url(v: Any) -> str | None:
    if isinstance(v, str) and re.match(r"^https?://[^\s/]+(/\S*)?$", v):
        return None
    return f"must be an http:// or https:// URL, got {_show(v)}"


def path_or_url(v: Any) -> str | None:
    if url(v) is None or abspath(v) is None:
        return None
    return f"must be an absolute path or an http:// or https:// URL, got {_show(v)}"


def subset_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        if isinstance(v, list) and all(x in choices for x in v) and len(set(v)) == len(v):
            return None
        return f"must be a list of distinct values from {', '.join(choices)}, got {_show(v)}"

    return check


def repository(v: Any) -> str | None:
    if isinstance(v, str) and (re.match(r"^s3:https?://[^\s/]+/[^\s]+$", v) or v.startswith("/")):
        return None
    return f'must be "s3:http(s)://host[:port]/bucket[/prefix]" or an absolute path, got {_show(v)}'


@dataclass(frozen=True)
class Field:
    check: Check
    required: bool = False
    default: Any = None
    doc: str = ""


AGENT_SCHEMA: dict[str, Field] = {
    "host": Field(string(HOSTNAME, "a host name"), required=True, doc="snapshot host (restic --host)"),
    "state_dir": Field(abspath, default="/var/lib/carestack", doc="journal, locks, rotation state"),
    "restic": Field(abspath, default="/usr/bin/restic"),
    "nice": Field(integer(0, 19), default=10, doc="restic and dumps run under nice (and ionice idle)"),
    "ionice_idle": Field(boolean, default=True, doc="run restic and dumps in the idle I/O class"),
    "sched_idle": Field(boolean, default=False, doc="run restic and dumps as SCHED_IDLE (CPU only when idle)"),
    "dump_transport": Field(
        one_of("stream", "spool"),
        default="stream",
        doc="stream: FUSE file fed by mariadb-dump (never on disk); spool: a 0600 file under state_dir, "
        "deleted after the backup (for hosts without /dev/fuse)",
    ),
    "mariadb_dump": Field(abspath, default="/usr/bin/mariadb-dump"),
    "mariadb": Field(abspath, default="/usr/bin/mariadb"),
    "retries": Field(integer(0, 20), default=3, doc="extra attempts of a restic command after a transient error"),
    "retry_backoff_seconds": Field(number(0), default=10.0, doc="first retry delay; doubles each attempt"),
    "push_timeout_seconds": Field(number(0.1), default=10.0),
    "php": Field(abspath, default="/usr/bin/php", doc="PHP CLI for the wordpress update provider"),
    "apt_sources": Field(
        abspath,
        doc="a sources file the apt update provider reads instead of the system's (its package lists are kept "
        "under state_dir/apt); unset: the system's sources",
    ),
    "probe_settle_seconds": Field(
        number(0),
        default=2.5,
        doc="after a change, wait this long before the first probe: PHP's opcache re-reads a changed file only "
        "every opcache.revalidate_freq seconds (2 by default), until then the old code answers",
    ),
    "probe_attempts": Field(integer(1, 60), default=4, doc="requests per page before a probe fails (cache warm-up)"),
    "probe_retry_seconds": Field(number(0), default=1.0, doc="pause between a page's attempts"),
    "probe_timeout_seconds": Field(number(0.1), default=10.0, doc="one request's time limit"),
    "probe_min_limit_seconds": Field(
        number(0),
        default=1.0,
        doc="response-time limit never below this (a page's baseline times probe_slowdown_limit may be "
        "milliseconds, where timer noise alone would exceed it)",
    ),
}

DATABASE_SCHEMA: dict[str, Field] = {
    "name": Field(string(DB_NAME, "a MariaDB database name ([A-Za-z0-9_], at most 64)"), required=True),
    "socket": Field(abspath, default="/run/mysqld/mysqld.sock"),
}

RETENTION_SCHEMA: dict[str, Field] = {key: Field(integer(0), default=0) for key in KEEP_KEYS}

JOBS_SCHEMA: dict[str, Field] = {
    "backup_timeout_seconds": Field(integer(1), default=3600),
    "check_timeout_seconds": Field(integer(1), default=3600),
    "prune_timeout_seconds": Field(integer(1), default=3600),
    "restore_timeout_seconds": Field(integer(1), default=3600),
    "check_read_data_subsets": Field(integer(1, 10000), default=1),
    # No default: the plan's update window; required once updates.providers is set (see _cross_checks).
    "update_timeout_seconds": Field(integer(1)),
}

UPDATES_SCHEMA: dict[str, Field] = {
    "providers": Field(subset_of(*PROVIDERS), default=[], doc="what `update` may change on this site"),
    # The plan's policy has no defaults here (one source: the tier catalog); _cross_checks requires
    # each setting the listed providers need.
    "apt_policy": Field(one_of(*APT_POLICIES)),
    "wordpress_policy": Field(one_of(*WORDPRESS_POLICIES)),
    "rollback": Field(boolean, doc="roll back a failed update from the pre-update snapshot"),
    "probe_slowdown_limit": Field(number(1), doc="a page may take this many times its baseline"),
    "wordpress_feed": Field(
        path_or_url,
        doc="a directory holding index.json, or the URL of an index.json, listing plugin/theme versions and "
        "their zips; unset: WordPress's own update service",
    ),
    "release_dir": Field(abspath, doc="where release artifacts are dropped (default state_dir/releases/<site>)"),
    "release_preserve": Field(
        list_of(string(RELATIVE_PATH, "a path inside the site root"), non_empty=False),
        default=[],
        doc="paths inside the root carried over from the running release (uploads, local config)",
    ),
}

CHECK_SCHEMA: dict[str, Field] = {
    "path": Field(string(CHECK_PATH, "a path starting with /"), required=True),
    "keyword": Field(string(), required=True, doc="text the page must contain"),
    "status": Field(integer(100, 599), default=200),
}

SITE_SCHEMA: dict[str, Field] = {
    "domain": Field(string(DOMAIN, "a domain name"), required=True),
    "kind": Field(one_of(*KINDS), required=True),
    "root": Field(abspath, required=True),
    "paths": Field(list_of(abspath, non_empty=True), required=True),
    "exclude": Field(list_of(string(), non_empty=False), default=[]),
    "repository": Field(repository, required=True),
    "password_file": Field(abspath, required=True),
    "credentials_file": Field(abspath),
    "push_base_url": Field(url),
    "push_tokens_file": Field(abspath),
}
SITE_TABLES = {
    "database": DATABASE_SCHEMA,
    "retention": RETENTION_SCHEMA,
    "jobs": JOBS_SCHEMA,
    "updates": UPDATES_SCHEMA,
}
SITE_ARRAYS = {"checks": CHECK_SCHEMA}  # arrays of tables: [[sites.<id>.checks]]


def _check_table(
    data: Any, schema: Mapping[str, Field], path: str, errors: list[str], subtables: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Validate one table; return it with defaults filled in (values only trusted if no errors)."""
    if not isinstance(data, dict):
        errors.append(f"{path}: must be a table, got {_show(data)}")
        return {}
    out: dict[str, Any] = {}
    for key in data:
        if key not in schema and key not in subtables:
            errors.append(f"{path}.{key}: unknown key")
    for key, field in schema.items():
        if key not in data:
            if field.required:
                errors.append(f"{path}.{key}: is required")
            out[key] = field.default
            continue
        err = field.check(data[key])
        if err:
            errors.append(f"{path}.{key}: {err}")
        out[key] = data[key]
    return out


# -- typed settings ------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSettings:
    host: str
    state_dir: Path
    restic: Path
    nice: int
    ionice_idle: bool
    sched_idle: bool
    dump_transport: str
    mariadb_dump: Path
    mariadb: Path
    retries: int
    retry_backoff_seconds: float
    push_timeout_seconds: float
    php: Path = Path("/usr/bin/php")
    apt_sources: Path | None = None
    probe_settle_seconds: float = 2.5
    probe_attempts: int = 4
    probe_retry_seconds: float = 1.0
    probe_timeout_seconds: float = 10.0
    probe_min_limit_seconds: float = 1.0


@dataclass(frozen=True)
class Database:
    name: str
    socket: Path


@dataclass(frozen=True)
class Retention:
    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0


@dataclass(frozen=True)
class Jobs:
    backup_timeout_seconds: int = 3600
    check_timeout_seconds: int = 3600
    prune_timeout_seconds: int = 3600
    restore_timeout_seconds: int = 3600
    check_read_data_subsets: int = 1
    update_timeout_seconds: int | None = None  # set whenever updates.providers is


@dataclass(frozen=True)
class Updates:
    """Without providers nothing here is read; with them, the settings they need are all set."""

    providers: tuple[str, ...] = ()
    apt_policy: str | None = None
    wordpress_policy: str | None = None
    rollback: bool | None = None
    probe_slowdown_limit: float | None = None
    wordpress_feed: str | None = None
    release_dir: Path | None = None  # filled in by parse (state_dir/releases/<site>)
    release_preserve: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthCheck:
    path: str
    keyword: str
    status: int = 200


@dataclass(frozen=True)
class Site:
    id: str
    domain: str
    kind: str
    root: Path
    paths: tuple[Path, ...]
    exclude: tuple[str, ...]
    repository: str
    password_file: Path
    credentials_file: Path | None
    push_base_url: str | None
    push_tokens_file: Path | None
    database: Database | None
    retention: Retention
    jobs: Jobs
    updates: Updates = Updates()
    checks: tuple[HealthCheck, ...] = ()


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


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH)


def parse(data: Mapping[str, Any], path: Path = DEFAULT_PATH) -> Config:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    errors: list[str] = []
    for key in data:
        if key not in ("agent", "sites"):
            errors.append(f"{key}: unknown key")
    if "agent" not in data:
        errors.append("agent: is required")
    agent = _check_table(data.get("agent", {}), AGENT_SCHEMA, "agent", errors)
    raw_sites = data.get("sites", {})
    sites: dict[str, dict[str, Any]] = {}
    if not isinstance(raw_sites, dict):
        errors.append(f"sites: must be a table, got {_show(raw_sites)}")
        raw_sites = {}
    for site_id, raw in raw_sites.items():
        path_ = f"sites.{site_id}"
        if not SITE_ID.match(site_id):
            errors.append(f"{path_}: site id must match [a-z][a-z0-9-]{{0,31}}")
        site = _check_table(raw, SITE_SCHEMA, path_, errors, (*SITE_TABLES, *SITE_ARRAYS))
        if not isinstance(raw, dict):
            continue
        for name, schema in SITE_TABLES.items():
            if name in raw:
                site[name] = _check_table(raw[name], schema, f"{path_}.{name}", errors)
            elif name != "database":
                site[name] = _check_table({}, schema, f"{path_}.{name}", errors)
        for name, schema in SITE_ARRAYS.items():
            site[name] = _check_array(raw.get(name, []), schema, f"{path_}.{name}", errors)
        _cross_checks(site, raw, path_, errors)
        sites[site_id] = site
    if errors:
        raise ConfigError(errors)
    settings = AgentSettings(
        host=agent["host"],
        state_dir=Path(agent["state_dir"]),
        restic=Path(agent["restic"]),
        nice=agent["nice"],
        ionice_idle=agent["ionice_idle"],
        sched_idle=agent["sched_idle"],
        dump_transport=agent["dump_transport"],
        mariadb_dump=Path(agent["mariadb_dump"]),
        mariadb=Path(agent["mariadb"]),
        retries=agent["retries"],
        retry_backoff_seconds=float(agent["retry_backoff_seconds"]),
        push_timeout_seconds=float(agent["push_timeout_seconds"]),
        php=Path(agent["php"]),
        apt_sources=Path(agent["apt_sources"]) if agent["apt_sources"] else None,
        probe_settle_seconds=float(agent["probe_settle_seconds"]),
        probe_attempts=agent["probe_attempts"],
        probe_retry_seconds=float(agent["probe_retry_seconds"]),
        probe_timeout_seconds=float(agent["probe_timeout_seconds"]),
        probe_min_limit_seconds=float(agent["probe_min_limit_seconds"]),
    )
    built = {site_id: _build_site(site_id, s, settings.state_dir) for site_id, s in sites.items()}
    return Config(path=path, agent=settings, sites=built)


def _cross_checks(site: dict[str, Any], raw: dict[str, Any], path: str, errors: list[str]) -> None:
    repo = site.get("repository")
    if isinstance(repo, str) and repo.startswith("s3:") and "credentials_file" not in raw:
        errors.append(f"{path}.credentials_file: is required for an s3: repository")
    if ("push_base_url" in raw) != ("push_tokens_file" in raw):
        errors.append(f"{path}: push_base_url and push_tokens_file go together (set both or neither)")
    retention = site.get("retention", {})
    values = [retention.get(k) for k in KEEP_KEYS]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and not any(values):
        errors.append(f"{path}.retention: at least one keep_* must be > 0 (all zero would keep nothing)")
    if site.get("kind") == "static" and "database" in raw:
        errors.append(f"{path}.database: a static site has no database")
    updates = site.get("updates", {})
    providers = updates.get("providers")
    if isinstance(providers, list) and providers:
        needed = {
            "updates.rollback": updates.get("rollback"),
            "updates.probe_slowdown_limit": updates.get("probe_slowdown_limit"),
            "jobs.update_timeout_seconds": site.get("jobs", {}).get("update_timeout_seconds"),
        }
        needed |= {f"updates.{p}_policy": updates.get(f"{p}_policy") for p in ("apt", "wordpress") if p in providers}
        for key, value in needed.items():
            if value is None:
                errors.append(f"{path}.{key}: is required when updates.providers is set (the plan's value)")
        if not site.get("checks"):
            errors.append(f"{path}.checks: updates need at least one page to probe (updates.providers is set)")
        if "wordpress" in providers and site.get("kind") not in ("wordpress", "woocommerce"):
            errors.append(f"{path}.updates.providers: wordpress applies to kind wordpress or woocommerce only")


def _check_array(data: Any, schema: Mapping[str, Field], path: str, errors: list[str]) -> list[dict[str, Any]]:
    """An array of tables (`[[path]]`); each item validated like a table, errors name its index."""
    if not isinstance(data, list):
        errors.append(f"{path}: must be an array of tables ([[{path}]]), got {_show(data)}")
        return []
    return [_check_table(item, schema, f"{path}[{i}]", errors) for i, item in enumerate(data)]


def _build_site(site_id: str, s: dict[str, Any], state_dir: Path) -> Site:
    db = s.get("database")
    up = s["updates"]
    return Site(
        id=site_id,
        domain=s["domain"],
        kind=s["kind"],
        root=Path(s["root"]),
        paths=tuple(Path(p) for p in s["paths"]),
        exclude=tuple(s["exclude"]),
        repository=s["repository"],
        password_file=Path(s["password_file"]),
        credentials_file=Path(s["credentials_file"]) if s["credentials_file"] else None,
        push_base_url=s["push_base_url"],
        push_tokens_file=Path(s["push_tokens_file"]) if s["push_tokens_file"] else None,
        database=Database(db["name"], Path(db["socket"])) if db else None,
        retention=Retention(**s["retention"]),
        jobs=Jobs(**s["jobs"]),
        updates=Updates(
            providers=tuple(up["providers"]),
            apt_policy=up["apt_policy"],
            wordpress_policy=up["wordpress_policy"],
            rollback=up["rollback"],
            probe_slowdown_limit=None if up["probe_slowdown_limit"] is None else float(up["probe_slowdown_limit"]),
            wordpress_feed=up["wordpress_feed"],
            release_dir=Path(up["release_dir"]) if up["release_dir"] else state_dir / "releases" / site_id,
            release_preserve=tuple(up["release_preserve"]),
        ),
        checks=tuple(HealthCheck(**c) for c in s["checks"]),
    )


def required(value: T | None, key: str) -> T:
    """An update setting that validation requires once updates.providers is set (no agent-side default)."""
    if value is None:
        raise ConfigError([f"{key}: is required when updates.providers is set"])
    return value


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
