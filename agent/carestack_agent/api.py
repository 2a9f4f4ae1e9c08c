"""The agent's reusable entry points (the update-with-rollback flow builds on these).

    cfg = load_config()
    before = backup_site(cfg, "bakery-www", reason="pre-update")
    ... update, probe pages ...
    restore_snapshot(cfg, "bakery-www", before.figures["snapshot_id"])

For a flow that must hold the site lock across several steps, use the bodies
`do_backup(ctx, reason)` / `do_restore(ctx, RestoreOptions(...))` inside one
`run_job(...)`.
"""

from __future__ import annotations

from pathlib import Path

from .actions.backup import backup as backup_site
from .actions.backup import do_backup
from .actions.restore import RestoreOptions, do_restore, restore
from .actions.update import UpdateOptions, do_update
from .actions.update import update as update_site
from .config import Config
from .config import load as load_config
from .jobs import Context, JobResult, run_job


def restore_snapshot(
    config: Config, site_id: str, snapshot_id: str, *, target: Path | None = None, wait: bool = False
) -> JobResult:
    """Restore files and database of one snapshot (in place unless `target`)."""
    return restore(config, site_id, RestoreOptions(snapshot=snapshot_id, target=target), wait=wait)


__all__ = [
    "Context",
    "JobResult",
    "RestoreOptions",
    "UpdateOptions",
    "backup_site",
    "do_backup",
    "do_restore",
    "do_update",
    "load_config",
    "restore_snapshot",
    "run_job",
    "update_site",
]
