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
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
class AcmeOverride:
    """A stand-in certificate authority (the lab's): its ACME directory replaces the plan's, and the
    servers trust the CA of its HTTPS endpoint (PEM)."""

    directory: str
    endpoint_ca_pem: str = field(repr=False)


@dataclass(frozen=True)
class Realization:
    """Where and how a plan becomes real: the servers' addresses, S3, Kuma, admin access."""

    hosts: Mapping[str, HostAccess]
    s3_endpoint: str
    push_base_url: str | None = None
    admin_cidrs: tuple[str, ...] = ()
    admin_keys: tuple[str, ...] = ()
    acme: AcmeOverride | None = None  # None: the agency's CA from the plan
    # Never banned for failed logins: the controller that runs Ansible and the
    # monitors that probe the sites (addresses or networks as the servers see them).
    trusted_addresses: tuple[str, ...] = ()
    # The platform's standby, where the clients' restore drills run (their timers and drill config go there);
    # None: drills are not placed by this run.
    standby: str | None = None
    # A vulnerability feed file on the controller in place of the agency's (the lab's own); None: the plan's.
    vulnerability_feed: str | None = None


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
    problems += _acme_problems(clients, realization)
    problems += _feed_problems(clients, realization)
    problems += _core_checksum_problems(clients)
    if realization.standby is not None and realization.standby not in realization.hosts:
        known = ", ".join(sorted(realization.hosts)) or "none"
        problems.append(
            f"--hosts: no entry for the standby {realization.standby!r} (the drills run there); given: {known}"
        )
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
    for address in realization.trusted_addresses:
        try:
            ipaddress.ip_network(address)
        except ValueError:
            problems.append(
                f"--trusted-address: must be an address or network such as 10.77.0.1 or 10.77.0.0/28, got {address!r}"
            )
    if problems:
        raise RealizationError("\n".join(problems))


def vulnerability_feed(plan: CarePlan, realization: Realization) -> str | None:
    """The feed this run gives the plan's sites: the realization's file, else the agency's."""
    return realization.vulnerability_feed or plan.security.vulnerability_feed


def _feed_problems(clients: Sequence[Client], realization: Realization) -> list[str]:
    """A feed file must be readable JSON before anything is converged."""
    problems = []
    for feed in sorted({f for c in clients if (f := vulnerability_feed(c.plan, realization))}):
        if agent_config.feed_location(feed) != agent_config.FEED_FILE:
            continue
        where = "vulnerability_feed" if feed == realization.vulnerability_feed else "agency.vulnerability_feed"
        try:
            json.loads(Path(feed).read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{where}: {feed}: {exc.strerror or exc}")
        except ValueError as exc:
            problems.append(f"{where}: {feed}: not JSON ({exc})")
    return problems


def _feed_file(plan: CarePlan, realization: Realization) -> str:
    """The feed file's content for the servers ("" when the feed is a URL or there is none)."""
    feed = vulnerability_feed(plan, realization)
    if feed is None or agent_config.feed_location(feed) != agent_config.FEED_FILE:
        return ""
    return Path(feed).read_text(encoding="utf-8")


def core_checksum_files(directory: str | None) -> dict[str, str]:
    """The agency's WordPress core checksum files by name (`<version>.json`), as the servers get them."""
    if directory is None:
        return {}
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(Path(directory).glob("*.json"))}


def _core_checksum_problems(clients: Sequence[Client]) -> list[str]:
    """Each checksum file must be WordPress's checksums JSON before anything is converged (the agent checks
    the paths and sums again at each scan)."""
    problems = []
    for directory in sorted({d for c in clients if (d := c.plan.security.core_checksums)}):
        if not Path(directory).is_dir():
            problems.append(f"agency.core_checksums: {directory}: not a directory on this controller")
            continue
        try:
            files = core_checksum_files(directory)
        except OSError as exc:
            problems.append(f"agency.core_checksums: {directory}: {exc.strerror or exc}")
            continue
        for name, text in files.items():
            where = f"agency.core_checksums: {Path(directory) / name}"
            if not agent_config.CORE_CHECKSUM_NAME.match(name):
                problems.append(f"{where}: expected a WordPress version as the name, such as 6.4.3.json")
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                problems.append(f"{where}: not JSON ({exc})")
                continue
            if not (isinstance(data, dict) and isinstance(data.get("checksums"), dict) and data["checksums"]):
                problems.append(f'{where}: expected {{"checksums": {{path: md5}}}}, the core checksums API\'s answer')
    return problems


def _acme_problems(clients: Sequence[Client], realization: Realization) -> list[str]:
    """A server runs one certbot with one account per CA: its clients must agree on it (they do when
    they come from one catalog, whose agency owns the account)."""
    problems = []
    accounts: dict[str, tuple[str, tuple[str, str | None]]] = {}
    for client in clients:
        plan = client.plan
        account = (plan.certificates.acme_directory, plan.certificates.acme_email)
        first = accounts.setdefault(plan.hosting.server, (plan.client.id, account))
        if first[1] != account:
            problems.append(
                f"agency.acme: clients {first[0]} and {plan.client.id} share server {plan.hosting.server} but "
                "name different ACME accounts; one catalog's agency names one account"
            )
    if realization.acme is not None:
        parts = urlsplit(realization.acme.directory)
        if parts.scheme != "https" or not parts.netloc:
            problems.append(f"acme.directory: must be an https:// URL, got {realization.acme.directory!r}")
        if "-----BEGIN CERTIFICATE-----" not in realization.acme.endpoint_ca_pem:
            problems.append("acme.endpoint_ca_pem: must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
    return problems


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
        "names": list(site.names),
        "kind": site.kind,
        "app": APPS[site.kind],
        "https": site.https,
        "dns": site.dns,
        "certificate": site.certificate,
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
            if not job.on_standby  # the restore drill's timer is the standby's (see `drill_vars`)
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
            "trusted_addresses": sorted(set(realization.trusted_addresses)),
            "memory_mb": access.memory_mb,
            "agent_header": agent_config.header(server),
        },
        "carestack_clients": {},
        "carestack_sites": {},
        "carestack_drills": {},
        "carestack_secret_paths": [],
        "carestack_acme": acme_vars(plan, realization),
        "carestack_vulnerability_feed": _feed_file(plan, realization),
        "carestack_core_checksums": core_checksum_files(plan.security.core_checksums),
    }


def acme_vars(plan: CarePlan, realization: Realization) -> dict[str, Any]:
    """The ACME account the server orders its sites' certificates with."""
    override = realization.acme
    return {
        "directory": override.directory if override else plan.certificates.acme_directory,
        "email": plan.certificates.acme_email,
        "endpoint_ca_pem": override.endpoint_ca_pem if override else None,
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
            "agent_fragment": agent_config.client_fragment(
                plan, realization.s3_endpoint, push_urls, vulnerability_feed(plan, realization)
            ),
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
        if realization.standby is not None and drilled_sites(plan):
            _place_drills(client, realization, hosts)
    return {"all": {"children": {"carestack": {"hosts": hosts}}}}


def drilled_sites(plan: CarePlan) -> list[SitePlan]:
    return [site for site in plan.sites if any(job.on_standby for job in site.jobs)]


def drill_vars(site: SitePlan) -> dict[str, Any]:
    """A drilled site on the standby: only what its drill timer needs (the site itself does not run there)."""
    return {
        "id": site.id,
        "domain": site.domain,
        "jobs": [
            {
                "name": job.name,
                "on_calendar": job.schedule.on_calendar,
                "randomized_delay_seconds": job.schedule.randomized_delay_seconds,
            }
            for job in site.jobs
            if job.on_standby
        ],
    }


def _place_drills(client: Client, realization: Realization, hosts: dict[str, dict[str, Any]]) -> None:
    """The standby gets the client's drill config, its repository secrets and push tokens, and a drill timer
    per site. It reads the repository with the client's own keys (those a failover would use there)."""
    plan, standby = client.plan, realization.standby
    assert standby is not None
    if standby not in hosts:
        host = hosts[standby] = _host_vars(plan, realization.hosts[standby], realization)
        host["carestack_server"].update(
            name=standby, timezone=SHARED_HOST_TIMEZONE, agent_header=agent_config.header(standby)
        )
    host = hosts[standby]
    url = realization.push_base_url
    push_urls = {s.id: url for s in plan.sites if url and _pushes(client, s, realization)}
    entry = host["carestack_clients"].setdefault(plan.client.id, {"id": plan.client.id, "name": plan.client.name})
    if "agent_fragment" not in entry:  # the client's sites run on the standby itself (a failover): theirs wins
        entry["agent_fragment"] = agent_config.drill_fragment(
            plan, realization.s3_endpoint, push_urls, vulnerability_feed(plan, realization)
        )
    paths = [agent_config.password_file(plan.client.id), agent_config.credentials_file(plan.client.id)]
    host["carestack_drill_runtime"] = {
        "user": agent_config.DRILL_USER,
        "home": agent_config.DRILL_HOME,
        "php_socket": agent_config.DRILL_PHP_SOCKET,
        "scratch_dir": agent_config.DRILL_SCRATCH_DIR,
        "database_pattern": agent_config.DRILL_DATABASE_PATTERN,
    }
    for site in drilled_sites(plan):
        host["carestack_drills"][site.id] = drill_vars(site)
        if site.id in push_urls:
            paths.append(agent_config.push_tokens_file(site.id))
    host["carestack_secret_paths"] += [p for p in paths if p not in host["carestack_secret_paths"]]


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
