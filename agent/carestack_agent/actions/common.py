"""Pieces several actions share."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..jobs import Context
from ..restic import with_retries


def dump_dir(config: Config, site_id: str) -> Path:
    """Where the streamed dump is mounted during a backup (its path is recorded in the snapshot)."""
    return config.agent.state_dir / "dump" / site_id


def unlock_stale(ctx: Context) -> None:
    """`restic unlock` removes only stale locks (same host, dead PID); live locks are respected.

    Never `--remove-all`: that would break a job running elsewhere on the repository.
    """
    with_retries(
        lambda: ctx.restic.run(["unlock"], ctx.deadline, what="unlock"),
        settings=ctx.config.agent,
        deadline=ctx.deadline,
        what="unlock",
    )
