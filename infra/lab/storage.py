"""The lab's S3 side per client: its bucket and scoped user (via `infra.lab.s3`), its restic password.

The S3 server listens on the bridge address, so one endpoint URL serves this
machine and the servers alike. Buckets and users are created first, then IAM
enforcement is switched on: from then on each client's keys work on its own
bucket only. moto keeps everything in memory; after a restart the buckets and
keys are created again (new keys: the onboarding fingerprint changes and the
servers are converged again).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.lab import s3
from infra.lab.config import LabConfig
from infra.lab.placement import PlacedClient
from infra.lab.state import write_secret


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


def bring_up(config: LabConfig, clients: Sequence[PlacedClient]) -> StorageReport:
    started = s3.running(s3_dir(config)) is None
    server = s3.start(s3_dir(config), host=config.bridge_address, port=config.s3_port)
    admin = s3.bootstrap_admin(server.endpoint, config.secrets_dir)
    stored: dict[str, ClientStorage] = {}
    for client in clients:
        storage = client.plan.storage
        s3.provision_bucket(
            server.endpoint,
            admin,
            storage.bucket,
            object_lock_days=storage.object_lock_days,
            versioning=storage.versioning,
            secrets_dir=config.secrets_dir,
        )
        stored[client.id] = ClientStorage(
            storage.bucket,
            config.secrets_dir / f"{storage.bucket}.s3.env",
            restic_password_file(config, client.id),
        )
    s3.enable_iam_enforcement(server.endpoint)
    return StorageReport(server.endpoint, started, config.secrets_dir / "s3-admin.env", stored)


def stop(config: LabConfig) -> bool:
    return s3.stop(s3_dir(config))
