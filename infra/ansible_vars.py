"""CarePlans + how they are realized -> the Ansible inventory and the secret vars.

Trellis style: one dictionary per site (`carestack_sites`) drives every role;
the server's own settings are `carestack_server`, each client's agent config
piece and secret-file paths are `carestack_clients`. The secrets go into a
separate vars document (`secret_vars`) that the caller writes to a 0600 file,
never into the inventory or argv.

Placement follows the plan: a client's sites run on `plan.hosting.server`, and
the realization says where that server is (`hosts`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from infra import agent_config
from infra.plan import CarePlan, SitePlan

SITE_HOMES = "/home"
# The admin account Debian's cloud images log in with; a server reached as root
# (the lab) gets it too when admin keys are given.
ADMIN_USER = "admin"
# A shared host serves clients in several time zones; its clock stays on UTC and
# every timer names its client's zone itself (the plan's OnCalendar does).
SHARED_HOST_TIMEZONE = "UTC"
APPS = {"wordpress": "wordpress", "woocommerce": "wordpress", "php": "php", "static": "static"}


class RealizationError(ValueError):
    """Bad realization input; the message names the option or variable and what would be valid."""


@dataclass(frozen=True)
class HostAccess:
    address: str
    ssh_user: str = "root"
    # The memory the server may use, where the OS reports more (a container
    # sharing a machine); None: size PHP and MariaDB by the OS's MemTotal.
    memory_mb: int | None = None


@dataclass(frozen=True)
class Realization:
    """Where and how a plan becomes real: the servers' addresses, S3, Kuma, admin access."""

    hosts: Mapping[str, HostAccess]
    s3_endpoint: str
    push_base_url: str | None = None
    admin_cidrs: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClientSecrets:
    restic_password: str = field(repr=False)
    s3_access_key_id: str = field(repr=False)
    s3_secret_access_key: str = field(repr=False)
    push_tokens: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Client:
    plan: CarePlan
    secrets: ClientSecrets


def check_realization(clients: Sequence[Client], realization: Realization) -> None:
    """Every problem at once, before anything changes."""
    problems: list[str] = []
    seen: set[str] = set()
    for client in clients:
        plan = client.plan
        if plan.client.id in seen:
            problems.append(f"client {plan.client.id!r} given twice")
        seen.add(plan.client.id)
        server = plan.hosting.server
        if server not in realization.hosts:
            known = ", ".join(sorted(realization.hosts)) or "none"
            problems.append(f"--hosts: no entry for server {server!r} (client {plan.client.id}); given: {known}")
        problems += _token_problems(plan, client.secrets.push_tokens)
        if realization.push_base_url:
            problems += _missing_token_problems(plan, client.secrets.push_tokens)
    for name, host in realization.hosts.items():
        try:
            ipaddress.ip_address(host.address)
        except ValueError:
            problems.append(f"--hosts: {name}.address must be an IP address, got {host.address!r}")
        if not host.ssh_user or not host.ssh_user.replace("-", "").replace("_", "").isalnum():
            problems.append(f"--hosts: {name}.ssh_user must be a user name, got {host.ssh_user!r}")
        if host.memory_mb is not None and not (isinstance(host.memory_mb, int) and host.memory_mb >= 256):
            problems.append(f"--hosts: {name}.memory_mb must be a whole number of MB >= 256, got {host.memory_mb!r}")
    for url, option in ((realization.s3_endpoint, "--s3-endpoint"), (realization.push_base_url, "--push-base-url")):
        if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
            problems.append(f"{option}: must be an http:// or https:// URL, got {url!r}")
    for cidr in realization.admin_cidrs:
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            problems.append(f"--admin-cidr: must be a network such as 10.77.0.0/24, got {cidr!r}")
    if problems:
        raise RealizationError("\n".join(problems))


def _token_problems(plan: CarePlan, tokens: Mapping[str, Mapping[str, str]]) -> list[str]:
    problems = []
    sites = {site.id: site for site in plan.sites}
    for site_id, jobs in tokens.items():
        if site_id not in sites:
            problems.append(
                f"CARESTACK_PUSH_TOKENS: unknown site {site_id!r} for client {plan.client.id}; "
                f"its sites: {', '.join(sites)}"
            )
            continue
        names = [job.name for job in sites[site_id].jobs]
        for job, token in jobs.items():
            if job not in names:
                problems.append(f"CARESTACK_PUSH_TOKENS: {site_id}.{job} is not a job; jobs: {', '.join(names)}")
            elif not isinstance(token, str) or not token or any(c.isspace() or c == "/" for c in token):
                problems.append(f"CARESTACK_PUSH_TOKENS: {site_id}.{job} must be a non-empty token without spaces")
    return problems


def _missing_token_problems(plan: CarePlan, tokens: Mapping[str, Mapping[str, str]]) -> list[str]:
    """With a push URL every job must have its token: an agent config without one never sends a
    heartbeat, and its push monitor goes down."""
    problems = []
    for site in plan.sites:
        missing = [job.name for job in site.jobs if not (tokens.get(site.id) or {}).get(job.name)]
        if missing:
            problems.append(
                f"CARESTACK_PUSH_TOKENS: no push token for {site.id} job(s) {', '.join(missing)} "
                f"(client {plan.client.id}); the client's monitors hand them out: "
                "`pulumi stack output --show-secrets --json push_tokens`, or "
                "`carestack monitors sync STACK_FILE --push-tokens-out FILE`"
            )
    return problems


def site_vars(plan: CarePlan, site: SitePlan) -> dict[str, Any]:
    """The per-site dictionary every role reads."""
    owner = next((c.email for c in plan.client.contacts if c.email), None)
    return {
        "id": site.id,
        "client": plan.client.id,
        "title": plan.client.name,
        "admin_email": owner or f"webmaster@{site.domain}",
        "domain": site.domain,
        "kind": site.kind,
        "app": APPS[site.kind],
        "https": site.https,
        "url": site.url,
        "root": site.root,
        "home": f"{SITE_HOMES}/{site.linux_user}",
        "user": site.linux_user,
        "database": site.database,
        "checks": agent_config.checks_table(site),
        "jobs": [
            {
                "name": job.name,
                "on_calendar": job.schedule.on_calendar,
                "randomized_delay_seconds": job.schedule.randomized_delay_seconds,
            }
            for job in site.jobs
        ],
    }


def _pushes(client: Client, site: SitePlan, realization: Realization) -> bool:
    """Whether the site reports its jobs to Kuma: there is a push URL and it has tokens."""
    return bool(realization.push_base_url and client.secrets.push_tokens.get(site.id))


def _host_vars(plan: CarePlan, access: HostAccess, realization: Realization) -> dict[str, Any]:
    server = plan.hosting.server
    admin = ADMIN_USER if access.ssh_user == "root" else access.ssh_user
    wanted = access.ssh_user != "root" or realization.admin_keys
    admins = [{"name": admin, "keys": list(realization.admin_keys)}] if wanted else []
    return {
        "ansible_host": access.address,
        "ansible_user": access.ssh_user,
        "carestack_server": {
            "name": server,
            "timezone": plan.client.timezone if plan.hosting.mode == "dedicated" else SHARED_HOST_TIMEZONE,
            "admin_cidrs": sorted(set(realization.admin_cidrs)),
            "admins": admins,
            "memory_mb": access.memory_mb,
            "agent_header": agent_config.header(server),
        },
        "carestack_clients": {},
        "carestack_sites": {},
        "carestack_secret_paths": [],
    }


def inventory(clients: Sequence[Client], realization: Realization) -> dict[str, Any]:
    """The inventory: every server that carries a site of these clients, with its vars."""
    hosts: dict[str, dict[str, Any]] = {}
    for client in clients:
        plan = client.plan
        server = plan.hosting.server
        access = realization.hosts[server]
        url = realization.push_base_url
        push_urls = {s.id: url for s in plan.sites if url and _pushes(client, s, realization)}
        host = hosts.setdefault(server, _host_vars(plan, access, realization))
        cidrs = host["carestack_server"]["admin_cidrs"]
        host["carestack_server"]["admin_cidrs"] = sorted({*cidrs, plan.hosting.admin_cidr})
        host["carestack_clients"][plan.client.id] = {
            "id": plan.client.id,
            "name": plan.client.name,
            "agent_fragment": agent_config.client_fragment(plan, realization.s3_endpoint, push_urls),
        }
        host["carestack_secret_paths"] += [
            agent_config.password_file(plan.client.id),
            agent_config.credentials_file(plan.client.id),
        ]
        for site in plan.sites:
            pushes = _pushes(client, site, realization)
            host["carestack_sites"][site.id] = site_vars(plan, site)
            if pushes:
                host["carestack_secret_paths"].append(agent_config.push_tokens_file(site.id))
    return {"all": {"children": {"carestack": {"hosts": hosts}}}}


def secret_vars(clients: Sequence[Client], realization: Realization) -> dict[str, Any]:
    """The contents of every secret file, keyed by its path on the server (for a 0600 vars file)."""
    files: dict[str, str] = {}
    for client in clients:
        cid, secrets = client.plan.client.id, client.secrets
        files[agent_config.password_file(cid)] = secrets.restic_password + "\n"
        files[agent_config.credentials_file(cid)] = (
            f"AWS_ACCESS_KEY_ID={secrets.s3_access_key_id}\nAWS_SECRET_ACCESS_KEY={secrets.s3_secret_access_key}\n"
        )
        for site in client.plan.sites:
            if _pushes(client, site, realization):
                tokens = client.secrets.push_tokens[site.id]
                files[agent_config.push_tokens_file(site.id)] = "".join(
                    f"{job.upper()}={token}\n" for job, token in sorted(tokens.items())
                )
    return {"carestack_secret_files": files}
