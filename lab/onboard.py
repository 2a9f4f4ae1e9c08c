"""Onboarding the clients in the lab: monitors in Kuma, servers converged by Ansible, a first backup.

The same code production runs: `infra.monitors.sync_clients` (push tokens come from it),
`infra.configure.converge` (the agent and its config go onto the servers),
and the agent's own `backup` verb over ssh.

Each step is skipped when its result is already in place, so a second
`lab up` does nothing:
- monitors: the sync itself changes nothing when Kuma matches the plan;
- converge: a fingerprint per client (its plan, its secrets, its push tokens,
  its server's identity, and the code that configures it: `converge_fingerprint`)
  is recorded after a successful run; a client is converged again when it
  changes, with every client that shares its server;
- first backup: only for sites whose repository has no snapshot yet.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, cast

from infra.ansible_vars import AcmeOverride, Client, ClientSecrets, HostAccess, Realization, drilled_sites
from infra.configure import ConvergeResult, converge
from infra.converge_sources import converge_fingerprint
from infra.kuma_client import connect
from infra.monitors import desired_state, sync_clients
from infra.secret_file import write_secret
from lab import status, traffic
from lab.config import LabConfig
from lab.errors import LabError
from lab.placement import PlacedClient
from lab.services import lab_alerting
from lab.state import LabState

BACKUP_TIMEOUT = 900
FIRST_BACKUPS_AT_ONCE = 8  # servers backing up their sites at the same time
_RECAP_LINE = re.compile(r"^\S+\s+: ok=\d+")


@dataclass(frozen=True)
class ConvergeReport:
    clients: list[str]  # clients whose servers Ansible ran on
    changed: int  # tasks Ansible reported changed
    seconds: float


def site_addresses(state: LabState, client: PlacedClient) -> dict[str, str]:
    """Where the lab's Kuma checks each site: the address its traffic goes to (the domain goes in the Host
    header): its own server's, or the standby's while it is failed over (`lab.traffic`).

    The lab has no public DNS, so even a site whose DNS is live is checked on its address; one with
    a certificate over https, where TLS takes the name from the Host header and Kuma verifies the
    certificate for it against the lab CA's root, as production's Kuma does by name. A site failed
    over is checked over http: the standby holds no certificate for it until one is ordered there."""
    moved = traffic.switched(state, client.id)
    addresses: dict[str, str] = {}
    for site in client.plan.sites:
        server = moved.get(site.id, client.server)
        scheme = "https" if site.certificate and site.id not in moved else "http"
        addresses[site.id] = f"{scheme}://{state.host(server).address}"
    return addresses


def sync_monitors(
    state: LabState, clients: Sequence[PlacedClient]
) -> tuple[dict[str, dict[str, dict[str, str]]], dict[str, int]]:
    """Reconcile each client's monitors; its push tokens (secret) and the number of changes."""
    if state.alert_url is None:
        raise LabError("onboarding needs the alert receiver, but the lab has none (its step did not run)")
    alerting = lab_alerting(state.alert_url)
    tokens: dict[str, dict[str, dict[str, str]]] = {}
    changes: dict[str, int] = {}
    states = [desired_state(client.plan, alerting, site_addresses(state, client)) for client in clients]
    with connect(state.kuma_login()) as session:
        for result in sync_clients(session, states, report=None):
            tokens[result.client_id] = result.push_tokens
            changes[result.client_id] = len(result.changes)
    return tokens, changes


LAB_FEED = Path(__file__).with_name("vulnerabilities.json")


def realization(state: LabState) -> Realization:
    """How the lab realizes the plans: its servers (as root, with their memory share), its S3 and Kuma,
    its admin range and key."""
    if state.s3_endpoint is None:
        raise LabError("onboarding needs S3, but the lab has none (its step did not run)")
    if state.acme_directory is None or state.acme_endpoint_ca_file is None:
        raise LabError("onboarding needs the lab's CA, but the lab has none (its step did not run)")
    return Realization(
        hosts={h.name: HostAccess(h.address, "root", state.server_memory_mb) for h in state.hosts},
        s3_endpoint=state.s3_endpoint,
        push_base_url=state.kuma_push_base_url,
        admin_cidrs=(state.subnet,),
        admin_keys=(state.ssh_key.with_suffix(".pub").read_text().strip(),),
        acme=AcmeOverride(state.acme_directory, state.acme_endpoint_ca_file.read_text()),
        # Ansible, the tests and Kuma reach the servers from the bridge.
        trusted_addresses=(state.bridge_address,),
        # The lab's own small feed (no agency feed in the example catalog): the scans check versions for real.
        vulnerability_feed=str(LAB_FEED),
        # The premium tier's monthly restore drills run on the lab's standby, as in production.
        standby=state.standby,
    )


def client_secrets(state: LabState, client_id: str, tokens: dict[str, dict[str, str]]) -> ClientSecrets:
    key_id, secret = state.s3_credentials(client_id)
    password = state.client(client_id).restic_password_file.read_text().strip()
    return ClientSecrets(
        restic_password=password, s3_access_key_id=key_id, s3_secret_access_key=secret, push_tokens=tokens
    )


def _fingerprint(state: LabState, client: PlacedClient, secrets: ClientSecrets, code: str) -> str:
    """What the client's converged servers depend on; secrets enter only as part of a hash."""
    digest = hashlib.sha256()
    material = {
        "plan": client.plan.to_dict(),
        "secrets": [secrets.restic_password, secrets.s3_access_key_id, secrets.s3_secret_access_key],
        "tokens": secrets.push_tokens,
        "server": [state.host(client.server).address, state.host(client.server).machine_id],
        # Its restore drills' timers and config live on the standby: a new standby must get them again.
        "standby": [state.host(state.standby).address, state.host(state.standby).machine_id]
        if drilled_sites(client.plan)
        else None,
        "s3": state.s3_endpoint,
        "push": state.kuma_push_base_url,
        # A new lab CA root: the servers forgot their certificates and order them again.
        "acme": [state.acme_directory, state.acme_root_file.read_text() if state.acme_root_file else None],
        "code": code,
    }
    digest.update(json.dumps(material, sort_keys=True).encode())
    return digest.hexdigest()


def _fingerprint_file(config: LabConfig, client_id: str) -> Path:
    return config.state_dir / "onboard" / f"{client_id}.converged"


def converge_clients(
    config: LabConfig,
    state: LabState,
    clients: Sequence[PlacedClient],
    tokens: dict[str, dict[str, dict[str, str]]],
    echo: Callable[[str], None] | None = None,
    before: Callable[[list[str]], None] | None = None,
) -> ConvergeReport:
    """Converge the servers of every client whose fingerprint changed (and their neighbours);
    `before(servers)` runs first when there is anything to converge."""
    code = converge_fingerprint()
    secrets = {c.id: client_secrets(state, c.id, tokens[c.id]) for c in clients}
    prints = {c.id: _fingerprint(state, c, secrets[c.id], code) for c in clients}
    stale = {c.id for c in clients if not _recorded(config, c.id, prints[c.id])}
    servers = {c.server for c in clients if c.id in stale}
    run = [c for c in clients if c.server in servers]  # a shared server is converged with all its clients
    if any(drilled_sites(c.plan) for c in run):  # their restore drills' timers and config go to the standby
        servers.add(state.standby)
    if not run:
        return ConvergeReport([], 0, 0.0)
    if before is not None:
        before(sorted(servers))
    result = converge_servers(config, state, [Client(c.plan, secrets[c.id]) for c in run], sorted(servers), echo)
    for client in run:
        _record(config, client.id, prints[client.id])
    return ConvergeReport([c.id for c in run], result.changed, result.seconds)


def converge_servers(
    config: LabConfig,
    state: LabState,
    clients: Sequence[Client],
    servers: Sequence[str],
    echo: Callable[[str], None] | None = None,
    log_name: str = "ansible.log",
) -> ConvergeResult:
    """Ansible on these lab servers for these clients; its output stamped into the lab's log."""
    log = config.run_dir / log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        stream = cast(TextIO, _Timestamped(out, echo))  # converge only calls write()
        result = converge(
            clients,
            realization(state),
            ssh_config=state.ssh_config,
            ssh_key=state.ssh_key,
            stream=stream,
            limit=servers,
        )
    if not result.ok:
        tail = "\n  ".join(result.output.strip().splitlines()[-15:])
        raise LabError(f"Ansible could not converge {', '.join(servers)}; {log}:\n  {tail}")
    return result


class _Timestamped:
    """Ansible's output into the log, each line stamped with the seconds since the run began
    (where the time goes); its task names and recap also to `echo` (the progress display)."""

    def __init__(self, out: TextIO, echo: Callable[[str], None] | None) -> None:
        self.out = out
        self.echo = echo
        self.started = time.monotonic()

    def write(self, text: str) -> int:
        for line in text.splitlines(True):
            stamped = f"[{time.monotonic() - self.started:6.1f}s] {line}"
            self.out.write(stamped)
            if self.echo and (line.startswith("TASK [") or _RECAP_LINE.match(line)):
                self.echo(stamped.rstrip().rstrip("*").rstrip())
        self.out.flush()
        return len(text)


def _recorded(config: LabConfig, client_id: str, fingerprint: str) -> bool:
    path = _fingerprint_file(config, client_id)
    return path.exists() and path.read_text().strip() == fingerprint


def _record(config: LabConfig, client_id: str, fingerprint: str) -> None:
    write_secret(_fingerprint_file(config, client_id), fingerprint + "\n")


def first_backups(state: LabState, clients: Sequence[PlacedClient]) -> list[str]:
    """Back up every site that has no snapshot yet, with the agent on its server.

    Servers back up side by side, each server's sites one after another (a fleet's 60 sites took
    minutes one at a time); every failure is reported, after all have run."""
    sites = [(client, site) for client in clients for site in client.plan.sites]
    newest = status.last_backups(state, [(client.id, site.id) for client, site in sites])
    missing = [(client, site) for (client, site), snapshot in zip(sites, newest, strict=True) if snapshot is None]
    by_server: dict[str, list[str]] = {}
    for client, site in missing:
        by_server.setdefault(client.server, []).append(site.id)

    def back_up(server: str) -> list[str]:
        failures = []
        for site_id in by_server[server]:
            command = f"carestack-agent backup {shlex.quote(site_id)} --reason manual --wait"
            answer = state.ssh(server, command, timeout=BACKUP_TIMEOUT)
            if answer.returncode != 0:
                detail = (answer.stderr or answer.stdout).strip().splitlines()[-5:]
                failures.append(f"the first backup of {site_id} on {server} failed: " + " | ".join(detail))
        return failures

    with ThreadPoolExecutor(max_workers=FIRST_BACKUPS_AT_ONCE) as pool:
        failures = [line for lines in pool.map(back_up, by_server) for line in lines]
    if failures:
        raise LabError("\n".join(failures))
    return [site.id for _, site in missing]
