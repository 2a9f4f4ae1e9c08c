"""`carestack lab status`: what runs, what answers, what each client has — without changing anything.

The same summary ends `lab up`: each server, each site's address and HTTP
status, the services and where their credentials are, each client's last
backup (the newest restic snapshot object in its bucket, read with the
client's own keys).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.failover import active_failover
from infra.failover_lease import LeaseError, LeaseStore
from infra.kuma_client import KumaError
from infra.monitors import status_page_slug
from infra.monitors.states import public_monitor_states
from infra.plan import CarePlan, SitePlan
from lab import aptproxy, hosts, storage, traffic
from lab import services as lab_services
from lab.alert_receiver import read_alerts
from lab.config import LabConfig, load_config
from lab.state import LabClient, LabHost, LabState

HTTP_TIMEOUT = 3.0
LATEST_ALERTS = 5


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    role: str
    clients: list[str]
    running: bool
    ssh: bool


@dataclass(frozen=True)
class SiteStatus:
    client: str
    site: str
    domain: str
    server: str
    address: str
    http_status: int | None  # None: no answer
    last_backup: str | None  # ISO time of the newest snapshot, None: none yet


@dataclass(frozen=True)
class Summary:
    state_dir: str
    servers: list[ServerStatus]
    sites: list[SiteStatus]
    services: dict[str, dict[str, Any]]
    monitors: dict[str, dict[str, int]]  # client -> {"up": n, "down": n, ...}; {} if Kuma does not answer
    latest_alerts: list[dict[str, Any]]  # the newest notifications the alert receiver recorded
    failovers: list[str] = field(default_factory=list)  # each client failed over: where, since when, its age

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ssh_answers(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=1.0) as conn:
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def fetch_page(address: str, domain: str, path: str = "/") -> tuple[int | None, str]:
    """(status, body) a server answers for one of its sites' pages (Host header = the site's domain)."""
    conn = http.client.HTTPConnection(address, 80, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Host": domain})
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    except OSError:
        return None, ""
    finally:
        conn.close()


def http_status(address: str, domain: str, path: str = "/") -> int | None:
    return fetch_page(address, domain, path)[0]


def _client_s3(state: LabState, client_id: str) -> Any | None:
    """An S3 client with the client's own keys, None without S3 or keys. Made in the calling thread:
    boto3's default session is not safe to make clients from in several threads at once."""
    if state.s3_endpoint is None or state.client(client_id).s3_env_file is None:
        return None
    key_id, secret = state.s3_credentials(client_id)
    return boto3.client(
        "s3",
        endpoint_url=state.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


def _newest_snapshot(s3: Any | None, bucket: str, site_id: str) -> str | None:
    if s3 is None:
        return None
    try:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{site_id}/snapshots/")
    except (BotoCoreError, ClientError):
        return None
    times = [obj["LastModified"] for obj in listing.get("Contents", [])]
    return max(times).isoformat(timespec="seconds") if times else None


def last_backup(state: LabState, client_id: str, site_id: str) -> str | None:
    """Newest snapshot object of the site's restic repository, read with the client's keys."""
    return last_backups(state, [(client_id, site_id)])[0]


def last_backups(state: LabState, sites: Sequence[tuple[str, str]]) -> list[str | None]:
    """`last_backup` of each (client, site), read side by side, one S3 client per client."""
    s3 = {client_id: _client_s3(state, client_id) for client_id in dict.fromkeys(c for c, _ in sites)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda pair: _newest_snapshot(s3[pair[0]], state.client(pair[0]).bucket, pair[1]), sites))


def _server_status(cfg: LabConfig, host: LabHost) -> ServerStatus:
    running = hosts.running(hosts.host(cfg, host.name, host.address))
    return ServerStatus(host.name, host.address, host.role, list(host.clients), running, _ssh_answers(host.address))


def _site_answer(state: LabState, client: LabClient, site: SitePlan) -> tuple[LabHost, int | None]:
    """Where the site's traffic goes, and how its first checked page answers there."""
    server = state.host(traffic.switched(state, client.id).get(site.id, client.server))
    path = site.checks[0].path if site.checks else "/"
    return server, http_status(server.address, site.domain, path)


def _where(answer: tuple[LabHost, int | None]) -> tuple[str, str, int | None]:
    server, status = answer
    return server.name, server.address, status


def summary(state: LabState, config: LabConfig | None = None) -> Summary:
    """Every part's state, the slow reads (servers, pages, buckets, Kuma, leases) side by side."""
    cfg = config or _config_of(state)
    plans = {client.id: state.plan(client.id) for client in state.clients}  # each stack file read once
    pairs = [(client, site) for client in state.clients for site in plans[client.id].sites]
    s3 = {client.id: _client_s3(state, client.id) for client in state.clients}
    leases = _admin_s3(state, plans.values())
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = pool.submit(monitor_counts, state)
        moved = [pool.submit(_failover_line, plans[client.id], leases) for client in state.clients]
        backups = [pool.submit(_newest_snapshot, s3[c.id], c.bucket, site.id) for c, site in pairs]
        server_list = [pool.submit(_server_status, cfg, host) for host in state.hosts]
        answers = [pool.submit(_site_answer, state, *pair) for pair in pairs]
        sites = [
            SiteStatus(c.id, site.id, site.domain, *_where(answer.result()), backup.result())
            for (c, site), answer, backup in zip(pairs, answers, backups, strict=True)
        ]
        servers = [f.result() for f in server_list]
        failover_lines = [line for line in (f.result() for f in moved) if line is not None]
        monitors = counts.result()
    services: dict[str, dict[str, Any]] = {
        "apt_proxy": {"url": aptproxy.url(cfg), "running": aptproxy.running(cfg)},
        "s3": {
            "url": state.s3_endpoint,
            "running": storage.running(cfg) is not None and storage.gateway_running(cfg),
            "admin_credentials": str(state.s3_admin_env_file) if state.s3_admin_env_file else None,
        },
    }
    services["kuma"] = {
        "url": state.kuma_url,
        "version": cfg.kuma_version,
        "running": lab_services.kuma_running(cfg),
        "credentials": str(state.kuma_credentials_file) if state.kuma_credentials_file else None,
    }
    alerts = read_alerts(lab_services.alerts_dir(cfg))
    services["alerts"] = {
        "url": state.alert_url,
        "running": lab_services.receiver_running(cfg),
        "log": str(state.alert_log) if state.alert_log else None,
        "received": len(alerts),
    }
    latest = [
        {
            "time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.received_at)),
            "client": a.client,
            "channel": a.channel,
            "to": a.to,
            "monitor": a.monitor,
            "status": a.status,
            "message": a.message,
        }
        for a in alerts[-LATEST_ALERTS:]
    ]
    return Summary(str(state.state_dir), servers, sites, services, monitors, latest, failover_lines)


def _admin_s3(state: LabState, plans: Iterable[CarePlan]) -> Any | None:
    """The lab's admin S3 client (the leases are read as the platform reads them); None without S3 or
    without a client that has failover."""
    if state.s3_endpoint is None or state.s3_admin_env_file is None:
        return None
    if not any(plan.sla.failover for plan in plans):
        return None
    key_id, secret = state.s3_admin_credentials()
    return boto3.client(
        "s3", endpoint_url=state.s3_endpoint, region_name="us-east-1", aws_access_key_id=key_id,
        aws_secret_access_key=secret, config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip


def _failover_line(plan: CarePlan, s3: Any | None) -> str | None:
    """The client's active failover (its leases in the bucket) with its age against the plan's max_days."""
    if plan.sla.failover is None or s3 is None:
        return None
    try:
        active = active_failover(plan, LeaseStore(s3, plan.storage.bucket).active())
    except (BotoCoreError, ClientError, LeaseError) as exc:
        return f"{plan.client.id}: leases unreadable ({exc})"
    return active.line() if active is not None else None


def failovers(state: LabState) -> list[str]:
    """Each client's active failover (its leases in the bucket) with its age against the plan's max_days."""
    plans = [state.plan(client.id) for client in state.clients]
    s3 = _admin_s3(state, plans)
    lines = [_failover_line(plan, s3) for plan in plans]
    return [line for line in lines if line is not None]


def monitor_counts(state: LabState) -> dict[str, dict[str, int]]:
    """Each client's monitors in Kuma by state (up, down, pending, maintenance, unchecked), read from the
    clients' public status pages at once; {} if Kuma does not answer."""
    url = state.kuma_url
    if url is None:
        return {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        read = pool.map(lambda client: _page_states(url, client.id), state.clients)
        counts = {client.id: states for client, states in zip(state.clients, read, strict=True)}
    if any(states is None for states in counts.values()):
        return {}
    return {client: dict(Counter(states.values())) for client, states in counts.items() if states is not None}


def _page_states(url: str, client_id: str) -> dict[str, str] | None:
    try:
        return public_monitor_states(url, client_id, timeout=30)
    except KumaError:
        return None


def _config_of(state: LabState) -> LabConfig:
    return load_config(state.state_dir)


def render_summary(s: Summary) -> str:
    lines = ["", f"Lab in {s.state_dir}", "  servers:"]
    for server in s.servers:
        health = "running" if server.running and server.ssh else ("no ssh" if server.running else "STOPPED")
        clients = f" ({', '.join(server.clients)})" if server.clients else ""
        lines.append(f"    {server.name:<12} {server.address:<14} {server.role:<9} {health}{clients}")
    lines.append("  sites:")
    for site in s.sites:
        http = str(site.http_status) if site.http_status is not None else "no answer"
        backup = site.last_backup or "none yet"
        lines.append(
            f"    {site.domain:<28} http://{site.address}/ (Host: {site.domain}) HTTP {http}; last backup {backup}"
        )
    lines.append("  services:")
    for name, info in s.services.items():
        details = ", ".join(f"{k} {v}" for k, v in info.items() if k != "running" and v is not None)
        lines.append(f"    {name:<12} {'running' if info.get('running') else 'STOPPED'}; {details}")
    if s.sites:
        lines.append("  monitors:" if s.monitors else "  monitors: Kuma did not answer")
    kuma_url = s.services.get("kuma", {}).get("url")
    for client, tally in s.monitors.items():
        states = ", ".join(f"{n} {name}" for name, n in sorted(tally.items())) or "none"
        page = f"; status page {kuma_url}/status/{status_page_slug(client)}" if kuma_url else ""
        lines.append(f"    {client:<12} {states}{page}")
    if s.failovers:
        lines.append("  active failovers:")
    lines += [f"    {line}" for line in s.failovers]
    if s.latest_alerts:
        lines.append("  latest alerts (what the agency's e-mail/SMS/webhook gateway would have sent):")
    for alert in s.latest_alerts:  # Kuma's message names the monitor and its state
        lines.append(
            f"    {alert['time']} {alert['client']} {alert['channel']} to {alert['to']}: {alert['message'][:110]}"
        )
    return "\n".join(lines)
