"""Pieces several actions share."""

from __future__ import annotations

from pathlib import Path

from ..config import Config


def dump_dir(config: Config, site_id: str) -> Path:
    """Where the streamed dump is mounted during a backup (its path is recorded in the snapshot)."""
    return config.agent.state_dir / "dump" / site_id
