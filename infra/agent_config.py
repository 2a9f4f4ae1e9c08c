"""The agent's configuration (`/etc/carestack/agent.toml`), built from CarePlans.

Every value comes from the plan or from where Ansible puts things on the server
(the state directory, the secret files); nothing here derives a tier number.
It writes the keys the agent's schema requires (`carestack_agent/config.py`:
"the plan" and "required") and the optional ones it has values for; where the
agent has a default (the restic binary, niceness, the MariaDB socket) the key
is left out, so each value has one source. A server may carry sites of several clients (a shared
host), and each client is configured by its own `carestack configure` run, so
the file is written in pieces that Ansible assembles on the server:

    agent.d/00-agent.toml     the [agent] table (the host)      header(server)
    agent.d/<client>.toml     that client's [sites.*] tables    client_fragment(plan, ...)

A client's run rewrites only its own piece; TOML tables may come in any order,
so the concatenation is one valid document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from infra.plan import CarePlan, SitePlan

CONFIG_DIR = "/etc/carestack"
SECRETS_DIR = f"{CONFIG_DIR}/secrets"
# Where converge puts a vulnerability feed given as a file (a URL feed is fetched by each scan).
FEED_FILE = f"{CONFIG_DIR}/vulnerabilities.json"
# Where converge puts the agency's WordPress core checksum files (the agent's default `scan.core_checksums`).
CORE_CHECKSUMS_DIR = f"{CONFIG_DIR}/core-checksums"
CORE_CHECKSUM_NAME = re.compile(r"^[0-9][0-9A-Za-z.+~-]{0,39}\.json$")
STATE_DIR = "/var/lib/carestack"
# The restore drills' scratch sites on the standby: PHP runs as this user through this pool, and the
# scratch database is reached as the MariaDB user of the same name (unix_socket, rights on drill_*).
DRILL_USER = "carestack-drill"
DRILL_HOME = f"/home/{DRILL_USER}"
DRILL_PHP_SOCKET = f"/run/php/{DRILL_USER}.sock"
DRILL_SCRATCH_DIR = "/srv/carestack-drill"
DRILL_DATABASE_PATTERN = "drill\\_%"  # in GRANT, _ is a wildcard: escaped, the grant covers drill_* only
# Regenerable caches: never worth backup space.
EXCLUDES = {"wordpress": ("wp-content/cache",), "woocommerce": ("wp-content/cache",)}

TomlValue = str | int | float | bool | list[str]


def password_file(client_id: str) -> str:
    return f"{SECRETS_DIR}/{client_id}.restic-password"


def credentials_file(client_id: str) -> str:
    return f"{SECRETS_DIR}/{client_id}.s3.env"


def push_tokens_file(site_id: str) -> str:
    return f"{SECRETS_DIR}/{site_id}.push.env"


def repository(s3_endpoint: str, site: SitePlan) -> str:
    return f"s3:{s3_endpoint.rstrip('/')}/{site.repository_path}"


def agent_table(server: str) -> dict[str, Any]:
    return {"agent": {"host": server, "state_dir": STATE_DIR}}


def retention_table(plan: CarePlan) -> dict[str, int]:
    """`[sites.<id>.retention]`: the agent turns these keys into restic's `--keep-*` flags."""
    return {f"keep_{kind}": count for kind, count in plan.backup.keep.items()}


def checks_table(site: SitePlan) -> list[dict[str, Any]]:
    """The pages probed on the server (the same the monitors check): the agent's `[[checks]]`, Ansible's too."""
    return [{"path": c.path, "keyword": c.keyword, "status": c.status} for c in site.checks]


def feed_location(feed: str | None) -> str | None:
    """Where a server's scan reads the vulnerability feed: the URL itself, or the file converge installs."""
    if feed is None:
        return None
    return feed if feed.startswith(("http://", "https://")) else FEED_FILE


def site_table(
    plan: CarePlan, site: SitePlan, s3_endpoint: str, push_base_url: str | None, feed: str | None = None
) -> dict[str, Any]:
    """One `[sites.<id>]` table; push settings only when the site reports to Kuma (it has tokens); `feed`
    is the vulnerability feed as the run realizes it (the plan's, or the lab's; see `feed_location`)."""
    table: dict[str, Any] = {
        "domain": site.domain,
        "kind": site.kind,
        "client": plan.client.id,
        "root": site.root,
        "paths": [site.root],
        "exclude": [f"{site.root}/{path}" for path in EXCLUDES.get(site.kind, ())],
        "repository": repository(s3_endpoint, site),
        "password_file": password_file(plan.client.id),
        "credentials_file": credentials_file(plan.client.id),
    }
    if push_base_url:
        table["push_base_url"] = push_base_url
        table["push_tokens_file"] = push_tokens_file(site.id)
    if site.database:
        table["database"] = {"name": site.database}
    table["retention"] = retention_table(plan)
    table["jobs"] = {
        "backup_timeout_seconds": site.job("backup").timeout_seconds,
        "prune_timeout_seconds": site.job("prune").timeout_seconds,
        "check_timeout_seconds": site.job("check").timeout_seconds,
        "restore_timeout_seconds": plan.backup.restore_timeout_seconds,
        "check_read_data_subsets": plan.backup.check_read_data_subsets,
        "update_timeout_seconds": site.job("update").timeout_seconds,
        "repository_stall_seconds": plan.backup.stall_seconds,
        "scan_timeout_seconds": site.job("scan").timeout_seconds,
        "perf_timeout_seconds": site.job("perf").timeout_seconds,
    }
    table["updates"] = {
        "providers": list(site.providers),
        "apt_policy": plan.updates.apt_policy,
        "wordpress_policy": plan.updates.wordpress_policy,
        "rollback": plan.updates.rollback,
        "probe_slowdown_limit": plan.updates.probe_slowdown_limit,
    }
    perf = plan.performance
    table["perf"] = {
        "requests_per_page": perf.requests_per_page,
        "limit_percent": perf.limit_percent,
        "floor_ms": perf.floor_ms,
        "baseline_weeks": perf.baseline_weeks,
        "keep_days": perf.keep_days,
    }
    if location := feed_location(feed):
        table["scan"] = {"feed": location}
    # The pages the agent probes before and after an update (and the performance trend times).
    table["checks"] = checks_table(site)
    return table


def drill_table(site: SitePlan) -> dict[str, Any] | None:
    """`[sites.<id>.drill]` on the standby: the drill's deadline (the failover RTO it rehearses), the scratch
    directory, and for PHP sites the drill pool's socket and user (the standby's site role makes them)."""
    drills = [job for job in site.jobs if job.name == "drill"]
    if not drills:
        return None
    table: dict[str, Any] = {"timeout_seconds": drills[0].timeout_seconds, "scratch_dir": DRILL_SCRATCH_DIR}
    if site.kind != "static":  # PHP through the drill pool, the scratch database as its user
        table |= {"php_socket": DRILL_PHP_SOCKET, "user": DRILL_USER}
    return table


def drill_fragment(plan: CarePlan, s3_endpoint: str, push_base_urls: Mapping[str, str], feed: str | None = None) -> str:
    """The client's piece of the standby's agent.toml: each drilled site's table (the same repository and
    keys as on its server: the drill only reads) with its drill table."""
    tables = {}
    for site in plan.sites:
        drill = drill_table(site)
        if drill is not None:
            tables[site.id] = site_table(plan, site, s3_endpoint, push_base_urls.get(site.id), feed) | {"drill": drill}
    return (
        f"# {plan.client.id} ({plan.client.name}), tier {plan.client.tier}: restore drills on the standby, "
        "written by carestack configure\n" + dumps({"sites": tables})
    )


def client_tables(
    plan: CarePlan, s3_endpoint: str, push_base_urls: Mapping[str, str], feed: str | None = None
) -> dict[str, Any]:
    """The client's `[sites.*]` tables; `push_base_urls` names the sites that push, and where to."""
    return {
        "sites": {
            site.id: site_table(plan, site, s3_endpoint, push_base_urls.get(site.id), feed) for site in plan.sites
        }
    }


def header(server: str) -> str:
    return dumps(agent_table(server))


def client_fragment(
    plan: CarePlan, s3_endpoint: str, push_base_urls: Mapping[str, str], feed: str | None = None
) -> str:
    return (
        f"# {plan.client.id} ({plan.client.name}), tier {plan.client.tier}: written by carestack configure\n"
        + dumps(client_tables(plan, s3_endpoint, push_base_urls, feed))
    )


# --- a TOML writer for the few types the agent's config uses ---------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: TomlValue) -> str:
    # JSON string escapes are valid TOML basic-string escapes; bool before int (bool is an int).
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def dumps(document: Mapping[str, Any], prefix: str = "") -> str:
    """Scalars and arrays first, then one `[table]` per nested mapping and one `[[table]]` per item of a
    list of mappings (TOML requires that order)."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in document.items():
        if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            name = f"{prefix}{_key(key)}"
            tables += [f"[[{name}]]\n" + dumps(item, f"{name}.") for item in value]
        elif isinstance(value, Mapping):
            name = f"{prefix}{_key(key)}"
            body = dumps(value, f"{name}.")
            has_scalars = any(not isinstance(v, Mapping) for v in value.values())
            tables.append((f"[{name}]\n" if has_scalars or not value else "") + body)
        else:
            lines.append(f"{_key(key)} = {_value(value)}\n")
    return "".join(lines) + "".join(("\n" if lines or i else "") + t for i, t in enumerate(tables))
