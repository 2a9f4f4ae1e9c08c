"""Undoing an update: the providers' own rollbacks, then the pre-update snapshot's files and database.

Shared by the update flow (a change broke the site) and by recovery (a run that
died half-way is settled by the next job on the site).
"""

from __future__ import annotations

import dataclasses

from ..jobs import Context
from ..proc import Deadline
from ..providers.base import Offer, Provider
from .restore import RestoreOptions, do_restore


def roll_back(ctx: Context, snapshot: str, applied: list[tuple[Provider, Offer]]) -> str:
    """Undo the applied offers: packages first (their own rollback), then the snapshot's files and database."""
    ctx.note("step", step="rollback")
    parts = []
    for provider, offer in reversed(applied):
        done = provider.rollback(offer)
        if done:
            parts.append(done)
    sub = dataclasses.replace(ctx, figures={}, deadline=Deadline(ctx.site.jobs.restore_timeout_seconds))
    parts.append(do_restore(sub, RestoreOptions(snapshot=snapshot)))
    if "mixed_window_ms" in sub.figures:  # files back, database not yet: how long (bench/README.md)
        ctx.figures["rollback_mixed_window_ms"] = sub.figures["mixed_window_ms"]
    return "; ".join(parts)
