"""Reading a site's snapshot list from its restic repository (`restic snapshots --json`), read-only.

`--no-lock` keeps the report from ever taking (or leaving) a lock in a client's repository while a
backup runs. The credentials go in restic's environment only.
"""

from __future__ import annotations

import json
import os
import subprocess

from infra.report.access import ClientAccess
from infra.report.backups import Snapshot, SnapshotError, parse_snapshots

TIMEOUT_SECONDS = 120


class RepositoryError(Exception):
    """A repository the report could not read: the message says which and why (no secrets)."""


def restic_env(access: ClientAccess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RESTIC_"))}
    env.update(
        AWS_ACCESS_KEY_ID=access.access_key_id,
        AWS_SECRET_ACCESS_KEY=access.secret_access_key,
        RESTIC_PASSWORD=access.restic_password,
    )
    return env


def read_snapshots(access: ClientAccess, site_id: str) -> list[Snapshot]:
    repository = access.site_repository(site_id)
    try:
        done = subprocess.run(
            ["restic", "-r", repository, "snapshots", "--json", "--no-lock"],
            env=restic_env(access),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise RepositoryError("restic is not installed on this machine (apt install restic)") from None
    except subprocess.TimeoutExpired:
        raise RepositoryError(f"{repository}: restic gave no snapshot list within {TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RepositoryError(f"{repository}: restic snapshots failed (exit {done.returncode}): {last}")
    try:
        return parse_snapshots(json.loads(done.stdout or "[]"), repository)
    except (ValueError, SnapshotError) as e:
        raise RepositoryError(f"{repository}: {e}") from None
