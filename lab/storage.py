"""The lab's S3 side per client: its bucket and scoped user (via `lab.s3`), its restic password.

moto listens on loopback (the lab's own tooling: provisioning, IAM
enforcement); the S3 gateway (`lab.s3_gateway`) listens on the bridge address
and the same port and lets S3 API calls through, nothing else, so one endpoint
URL serves this machine and the servers alike and moto's admin API stays out
of the servers' reach. Buckets and users are created first, then IAM
enforcement is switched on: from then on each client's keys work on its own
bucket only, copies included (the gateway checks a copy's source against the
same policies, written to `policies.json`). moto keeps everything in memory;
after a restart the buckets and keys are created again (new keys: the
onboarding fingerprint changes and the servers are converged again).

Not enforced: production's TLS-only bucket policy (`aws:SecureTransport`). The
lab's S3 speaks plain http, so that policy would deny every request; the lab
neither attaches it nor claims to enforce it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.secret_file import write_secret
from lab import procs, s3, s3_gateway
from lab.config import LabConfig
from lab.errors import LabError
from lab.placement import PlacedClient

LOOPBACK = "127.0.0.1"
POLICIES_FILE = "policies.json"


@dataclass(frozen=True)
class ClientStorage:
    bucket: str
    env_file: Path
    restic_password_file: Path


@dataclass(frozen=True)
class StorageReport:
    endpoint: str
    started: bool  # moto had to be started (its buckets and keys are new)
    admin_env_file: Path
    clients: dict[str, ClientStorage]
    restarted: tuple[str, ...] = ()  # what had died and was started again, for the user


def s3_dir(config: LabConfig) -> Path:
    return config.run_dir / "s3"


def restic_password_file(config: LabConfig, client_id: str) -> Path:
    """The client's restic repository password, generated once, 0600."""
    path = config.secrets_dir / f"{client_id}.restic-password"
    if not path.exists():
        write_secret(path, secrets.token_urlsafe(32) + "\n")
    return path


def _provisioned_file(config: LabConfig) -> Path:
    return s3_dir(config) / "provisioned.json"


def _provisioned(config: LabConfig, server: s3.S3Server) -> dict[str, str]:
    """bucket -> storage plan (as text) provisioned in this very server process (moto forgets on restart)."""
    try:
        data = json.loads(_provisioned_file(config).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("server") != _identity(server):
        return {}
    buckets = data.get("buckets")
    return {str(k): str(v) for k, v in buckets.items()} if isinstance(buckets, dict) else {}


def _identity(server: s3.S3Server) -> str:
    return f"{server.pid}:{procs.start_time(server.pid)}"


def running(config: LabConfig) -> s3.S3Server | None:
    """moto, if it runs where this lab's S3 belongs (loopback, the S3 port) and is still our process."""
    server = s3.running(s3_dir(config))
    return server if server is not None and (server.host, server.port) == (LOOPBACK, config.s3_port) else None


def gateway_running(config: LabConfig) -> bool:
    return s3_gateway.running(s3_dir(config), config.bridge_address, config.s3_port)


def endpoint(config: LabConfig) -> str:
    """The S3 endpoint of the servers and of this machine's S3 clients: the gateway."""
    return f"http://{config.bridge_address}:{config.s3_port}"


def bring_up(config: LabConfig, clients: Sequence[PlacedClient]) -> StorageReport:
    directory = s3_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    restarted: list[str] = []
    if running(config) is None and (directory / s3.PID_FILE).exists():
        # ours but dead, hung up its port, or listening where an older lab version put it
        restarted.append("S3 (moto; it no longer served here: buckets and keys created again)")
        s3.stop(directory)
    started = running(config) is None
    try:
        server = s3.start(directory, host=LOOPBACK, port=config.s3_port)
    except s3.S3LabError as exc:
        raise LabError(f"S3: {exc}") from None
    done = _provisioned(config, server)
    admin = s3.bootstrap_admin(server.endpoint, config.secrets_dir)
    stored: dict[str, ClientStorage] = {}
    policies: dict[str, list[dict[str, Any]]] = {admin.access_key_id: [s3.ADMIN_POLICY]}
    for client in clients:
        storage = client.plan.storage
        env_file = config.secrets_dir / f"{storage.bucket}.s3.env"
        wanted = json.dumps(dataclasses.asdict(storage), sort_keys=True)
        # A bucket set up in this server process stays so; setting object lock again on a bucket
        # that holds backups is refused by the server.
        if done.get(storage.bucket) != wanted or not env_file.exists():
            s3.provision_bucket(
                server.endpoint,
                admin,
                storage.bucket,
                object_lock_days=storage.object_lock_days,
                versioning=storage.versioning,
                secrets_dir=config.secrets_dir,
            )
            done[storage.bucket] = wanted
        keys = s3.read_env_file(env_file)
        if keys is not None:
            policies[keys.access_key_id] = [s3.client_policy(storage.bucket)]
        stored[client.id] = ClientStorage(storage.bucket, env_file, restic_password_file(config, client.id))
    s3.enable_iam_enforcement(server.endpoint)
    _provisioned_file(config).write_text(json.dumps({"server": _identity(server), "buckets": done}, indent=2))
    policies_file = directory / POLICIES_FILE
    write_secret(policies_file, json.dumps(policies, indent=2, sort_keys=True) + "\n")
    gateway_died = not gateway_running(config) and (directory / s3_gateway.PID_FILE).exists()
    try:
        gateway_started = start_gateway(config)
    except s3_gateway.GatewayError as exc:
        raise LabError(str(exc)) from None
    if gateway_started and gateway_died and not started:
        restarted.append("the S3 gateway (it had stopped)")
    return StorageReport(endpoint(config), started, config.secrets_dir / "s3-admin.env", stored, tuple(restarted))


def start_gateway(config: LabConfig) -> bool:
    """The gateway (the servers' only way to S3), enforcing the policies `bring_up` wrote."""
    directory = s3_dir(config)
    return s3_gateway.start(
        directory, (config.bridge_address, config.s3_port), (LOOPBACK, config.s3_port), directory / POLICIES_FILE
    )


def stop_gateway(config: LabConfig) -> bool:
    """Only the gateway: the servers lose S3 while this machine's clients still reach moto."""
    return s3_gateway.stop(s3_dir(config))


def stop(config: LabConfig) -> bool:
    gateway = stop_gateway(config)
    return s3.stop(s3_dir(config)) or gateway
