"""The lab's S3 side per client: its bucket and scoped user (via `lab.s3`), its restic password.

The S3 server listens on the bridge address, so one endpoint URL serves this
machine and the servers alike. Buckets and users are created first, then IAM
enforcement is switched on: from then on each client's keys work on its own
bucket only. moto keeps everything in memory; after a restart the buckets and
keys are created again (new keys: the onboarding fingerprint changes and the
servers are converged again).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.secret_file import write_secret
from lab import procs, s3
from lab.config import LabConfig
from lab.placement import PlacedClient


@dataclass(frozen=True)
class ClientStorage:
    bucket: str
    env_file: Path
    restic_password_file: Path


@dataclass(frozen=True)
class StorageReport:
    endpoint: str
    started: bool
    admin_env_file: Path
    clients: dict[str, ClientStorage]


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


def bring_up(config: LabConfig, clients: Sequence[PlacedClient]) -> StorageReport:
    started = s3.running(s3_dir(config)) is None
    server = s3.start(s3_dir(config), host=config.bridge_address, port=config.s3_port)
    done = _provisioned(config, server)
    admin = s3.bootstrap_admin(server.endpoint, config.secrets_dir)
    stored: dict[str, ClientStorage] = {}
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
        stored[client.id] = ClientStorage(storage.bucket, env_file, restic_password_file(config, client.id))
    s3.enable_iam_enforcement(server.endpoint)
    _provisioned_file(config).write_text(json.dumps({"server": _identity(server), "buckets": done}, indent=2))
    return StorageReport(server.endpoint, started, config.secrets_dir / "s3-admin.env", stored)


def stop(config: LabConfig) -> bool:
    return s3.stop(s3_dir(config))
