"""Reconcile Uptime Kuma with a client's desired state: compare, report, apply unless a dry run.

A second sync finds nothing to do and sends nothing. An interrupted sync is
completed by the next: every created monitor is found again by its key tag,
never created twice. Push tokens are kept across syncs, returned in
`SyncResult.push_tokens` for the agent and never printed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.kuma_client import KumaSession
from infra.monitors.apply import apply_clients
from infra.monitors.desired import DesiredState
from infra.monitors.diff import Change, compare_clients


@dataclass(frozen=True)
class SyncResult:
    client_id: str
    changes: tuple[Change, ...]
    writes: int
    dry_run: bool
    # site id -> job -> token, for the agent's configuration; secret
    push_tokens: dict[str, dict[str, str]] = field(repr=False)

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in ("create", "update", "delete")}
        if not self.changes:
            return f"{self.client_id}: monitors in sync, nothing to change"
        verb = "would" if self.dry_run else "did"
        return (
            f"{self.client_id}: {verb} create {counts['create']}, update {counts['update']}, delete {counts['delete']}"
        )


def _push_tokens(desired: DesiredState, monitors: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    tokens: dict[str, dict[str, str]] = {}
    for wanted in desired.monitors:
        have = monitors.get(wanted.key)
        if wanted.job and have and have.get("pushToken"):
            tokens.setdefault(wanted.site_id, {})[wanted.job] = str(have["pushToken"])
    return tokens


def sync(
    session: KumaSession,
    desired: DesiredState,
    *,
    dry_run: bool = False,
    report: Callable[[str], None] | None = print,
    on_applied: Callable[[Change], None] | None = None,
) -> SyncResult:
    """Reconcile Kuma with `desired`: report the changes, apply them unless `dry_run`.

    `on_applied(change)` is called as each change lands in Kuma (for progress displays).
    Sync a client once per session (several clients may share one): Kuma answers a
    delete before it broadcasts the new monitor list, so a second sync of the same
    client on the same session could read the list from before the first one's deletes.
    """
    return sync_clients(session, [desired], dry_run=dry_run, report=report, on_applied=on_applied)[0]


def sync_clients(
    session: KumaSession,
    states: Sequence[DesiredState],
    *,
    dry_run: bool = False,
    report: Callable[[str], None] | None = print,
    on_applied: Callable[[Change], None] | None = None,
) -> list[SyncResult]:
    """`sync` for several clients at once (each once): one reading of Kuma, each kind of write made
    for all of them together. Each result's `writes` counts the writes of the whole batch."""
    clients = [d.client_id for d in states]
    repeated = sorted({c for c in clients if clients.count(c) > 1})
    if repeated:
        raise ValueError(f"a sync takes each client once; given more than once: {', '.join(repeated)}")
    writes_before = session.writes
    works = compare_clients(session, states)
    for work in works:
        for change in work.changes:
            if report:
                report(str(change))
    finals = [work.existing for work in works]
    if any(work.changes for work in works) and not dry_run:
        finals = apply_clients(session, list(zip(states, works, strict=True)), on_applied or (lambda change: None))
    writes = session.writes - writes_before
    results = [
        SyncResult(desired.client_id, tuple(work.changes), writes, dry_run, _push_tokens(desired, final))
        for desired, work, final in zip(states, works, finals, strict=True)
    ]
    for result in results:
        if report:
            report(result.summary())
    return results
