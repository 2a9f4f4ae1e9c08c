"""update SITE: the plan's updates, with a snapshot before, probes after, and automatic rollback.

The flow, holding the site's lock from start to end (each step journaled):
1. health: probe every page of the site (and, when apt runs, of every other
   site on this host that takes apt updates). A site that already fails gets
   no update: the run ends `refused` and Kuma hears why.
2. check: each provider the plan lists (apt, wordpress, release) says what the
   plan's policy allows, exactly (name, from, to), and what it holds back.
   Nothing to do ends the run here (a no-op run takes no snapshot). A provider
   that cannot check (its update source is down) does not hold up the others;
   the run still ends failed, naming it.
3. snapshot: a backup tagged reason:pre-update (files and database), through
   the backup action's own body.
4. apply, provider by provider: the offer is journaled first, then applied,
   then the pages are probed against their baselines (status, keyword,
   response time within probe_slowdown_limit x baseline, retried briefly).
5. A failed probe or apply rolls everything back: the providers undo what the
   snapshot cannot (apt reinstalls the previous .debs), the snapshot's files
   and database are swapped in, and the pages are probed again. The versions
   that broke the site are remembered (all of them, per component) and not
   offered again until an operator clears them (`--retry COMPONENT`, see
   providers/failed.py). Success reports every change.
A rollback stays open until its component updates successfully or an operator
acknowledges it (`--acknowledge`): until then every update run, even one with
nothing to do, says "still rolled back: ..." and keeps Kuma's UPDATE monitor
down (the run itself succeeds).
A run that dies half-way leaves its journal: the next run of any verb on the
site finishes the rollback first (recovery.py, wired in by the CLI).

Exit codes: 0 updated or nothing to do, 6 rolled back (site healthy on the
previous versions), 7 refused (the site was already failing), 1 anything else,
including a rollback that did not bring the site back. The Kuma push (UPDATE)
is up with what changed, or down with what broke and what was rolled back.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from .. import exitcodes, probe
from ..config import Config
from ..jobs import RESTIC_EXIT, Context, JobFailed, JobResult, Settle, run_job
from ..providers.base import Change, Offer, Provider, ProviderError
from ..providers.failed import FailedVersions, UnknownComponent, describe_open
from ..providers.registry import make_provider
from ..restic import ResticError
from .backup import do_backup
from .rollback import roll_back

log = logging.getLogger("carestack_agent.update")


@dataclass(frozen=True)
class UpdateOptions:
    retry: tuple[str, ...] = ()  # components whose remembered broken versions are forgotten (offered again)
    acknowledge: bool = False  # only mark the open rollbacks as seen by an operator; no update runs


def watched_pages(ctx: Context, with_apt: bool) -> list[probe.Page]:
    """The site's pages; with apt, also every other site's on this host that takes apt updates."""
    pages = probe.pages_of(ctx.site)
    if with_apt:
        for other in ctx.config.sites.values():
            if other.id != ctx.site.id and "apt" in other.updates.providers:
                pages += probe.pages_of(other)
    return pages


def pre_update_snapshot(ctx: Context) -> str:
    """The backup action's body, its figures kept apart; the snapshot id."""
    sub = dataclasses.replace(ctx, figures={})
    try:
        do_backup(sub, "pre-update")
    except JobFailed as e:
        raise JobFailed(f"nothing updated: the pre-update backup failed: {e.message}", e.exit_code) from None
    except ResticError as e:
        raise JobFailed(f"nothing updated: the pre-update backup failed: {e.message}", RESTIC_EXIT[e.kind]) from None
    ctx._unlocked = sub._unlocked
    snapshot = str(sub.figures["snapshot_id"])
    ctx.figures["snapshot"] = {k: sub.figures.get(k) for k in ("snapshot_id", "bytes_added", "backup_seconds")}
    return snapshot


def _verify(ctx: Context, baseline: probe.Baseline, apt_changed: bool) -> list[probe.Verdict]:
    """Probe the pages that were healthy before: the site's own, and after apt every watched site's
    (packages are the host's)."""
    pages = [p for p in baseline.healthy_pages() if apt_changed or p.site == ctx.site.id]
    limit = ctx.site.updates.probe_slowdown_limit
    return probe.verify(pages, baseline, limit, ctx.config.agent)


def _describe(changes: list[Change]) -> str:
    return ", ".join(c.describe() for c in changes)


def _unless_unchecked(ctx: Context, failed: FailedVersions, summary: str, unchecked: list[str]) -> str:
    """The run's summary; a failure if some provider could not check for updates (the promise is not kept).

    That failure still names the rollbacks that stay open: the run's record is
    what the report reads them from.
    """
    if unchecked:
        raise JobFailed(f"{_still_rolled_back(ctx, failed, summary)}; NOT CHECKED: {'; '.join(unchecked)}")
    return summary


def _still_rolled_back(ctx: Context, failed: FailedVersions, summary: str) -> str:
    """A successful run's summary; while a rollback is open, the UPDATE monitor stays down and says which."""
    still = failed.open_rollbacks()
    if not still:
        return summary
    ctx.figures["still_rolled_back"] = [f.figures() for f in still]
    ctx.monitor_down = True
    return f"{failed.still_rolled_back(still)}; {summary}"


def _acknowledge(ctx: Context, failed: FailedVersions) -> str:
    seen = failed.acknowledge(f"an operator (run {ctx.run_id})")
    ctx.figures["outcome"] = "acknowledged"
    ctx.figures["acknowledged"] = [f.figures() for f in seen]
    if not seen:
        return "nothing to acknowledge: no rollback is open"
    return (f"acknowledged: {describe_open(seen)}; these versions stay held "
            f"(`carestack-agent update {ctx.site.id} --retry COMPONENT` offers them again)")  # fmt: skip


def _forget(ctx: Context, failed: FailedVersions, components: tuple[str, ...]) -> None:
    for component in components:
        try:
            key = failed.match(component)
        except UnknownComponent as e:
            raise JobFailed(str(e), exitcodes.USAGE) from None
        gone = failed.forget(key)
        ctx.note("retry", component=key, versions=[f.version for f in gone])
        ctx.figures.setdefault("retried", []).extend(f.figures() for f in gone)
        log.info("update %s: %s offered again: %s", ctx.site.id, key, ", ".join(f.version for f in gone))


def do_update(ctx: Context, opts: UpdateOptions) -> str:
    """The body of an update (holds the site lock through run_job)."""
    site = ctx.site
    failed = FailedVersions(ctx.config.agent.state_dir, site.id)
    if opts.acknowledge:
        return _acknowledge(ctx, failed)
    _forget(ctx, failed, opts.retry)
    if not site.updates.providers:
        ctx.figures["outcome"] = "nothing to do"
        return _still_rolled_back(ctx, failed, "no update providers configured for this site")
    providers = [make_provider(name, ctx) for name in site.updates.providers]
    try:
        return _still_rolled_back(ctx, failed, _flow(ctx, providers, failed))
    finally:
        for provider in providers:
            provider.close()


def _flow(ctx: Context, providers: list[Provider], failed: FailedVersions) -> str:
    site, settings, updates = ctx.site, ctx.config.agent, ctx.site.updates
    with_apt = "apt" in updates.providers and updates.apt_policy != "none"

    ctx.note("step", step="health")
    baseline = probe.measure(watched_pages(ctx, with_apt), settings)
    ctx.figures["baseline"] = [v.figures() for v in baseline.verdicts]
    failing = baseline.failing(site.id)
    if failing:
        ctx.figures["outcome"] = "refused"
        raise JobFailed(
            f"update refused: the site already fails its probes: {probe.summary(failing)}", exitcodes.REFUSED
        )
    notes = [f"{v.reason} (before the update; not watched)" for v in baseline.failing()]

    ctx.note("step", step="check")
    offers: list[tuple[Provider, Offer]] = []
    unchecked: list[str] = []  # providers that could not say what to update: the others still run
    for provider in providers:
        try:
            offer = provider.discover(failed)
            notes += offer.notes
            if offer.changes:
                offer.data["run_id"] = ctx.run_id
                provider.prepare(offer)
                offers.append((provider, offer))
        except ProviderError as e:
            unchecked.append(str(e))
    ctx.figures["held"] = notes
    if unchecked:
        ctx.figures["unchecked"] = unchecked
    held = f" (held: {'; '.join(notes)})" if notes else ""
    if not offers:
        ctx.figures["outcome"] = "nothing to do"
        return _unless_unchecked(ctx, failed, "no updates" + held, unchecked)

    ctx.note("step", step="snapshot")
    snapshot = pre_update_snapshot(ctx)
    ctx.note("snapshot", snapshot_id=snapshot)

    applied: list[tuple[Provider, Offer]] = []
    verdicts: list[probe.Verdict] = []
    broke: str | None = None
    broken_since = 0.0  # when the site last changed: the start of the "broken until healthy" figure
    for provider, offer in offers:
        ctx.note("step", step="apply", provider=provider.name)
        ctx.note("apply", provider=provider.name, offer=offer.to_json())
        applied.append((provider, offer))
        started = broken_since = time.monotonic()
        try:
            provider.apply(offer)
            broken_since = time.monotonic()
            ctx.note("step", step="probe", provider=provider.name)
            verdicts = _verify(ctx, baseline, provider.name == "apt")
        except ProviderError as e:
            broke = str(e)
        except Exception as e:  # the site may be half-changed: roll back whatever went wrong
            log.exception("update %s: internal error while applying %s", site.id, provider.name)
            broke = f"internal error while applying {provider.name}: {type(e).__name__}: {e}"
        ctx.figures.setdefault("apply_seconds", {})[provider.name] = round(time.monotonic() - started, 3)
        if broke is None and any(not v.ok for v in verdicts):
            broke = f"{_describe(offer.changes)} broke {probe.summary(verdicts)}"
            failed.add(offer.changes, ctx.run_id, probe.summary(verdicts))
        elif broke is not None:
            failed.add(offer.changes, ctx.run_id, broke)
        ctx.figures["probe"] = [v.figures() for v in verdicts]
        if broke is not None:
            break

    changes = [c for _, offer in applied for c in offer.changes]
    ctx.figures["changes"] = [c.figures() for c in changes]
    if broke is None:
        for provider, offer in applied:
            provider.finish(offer)
        ctx.note("verified")
        ctx.figures["outcome"] = "updated"
        resolved = failed.resolve(changes, ctx.run_id)  # an earlier rollback of these components is over
        if resolved:
            ctx.figures["resolved"] = [f.figures() for f in resolved]
        summary = f"updated: {_describe(changes)}; {probe.summary(verdicts)}; snapshot {snapshot} before{held}"
        return _unless_unchecked(ctx, failed, summary, unchecked)
    return _after_failure(ctx, snapshot, applied, baseline, broke, broken_since, failed)


def _after_failure(
    ctx: Context,
    snapshot: str,
    applied: list[tuple[Provider, Offer]],
    baseline: probe.Baseline,
    broke: str,
    broken_since: float,
    failed: FailedVersions,
) -> str:
    site = ctx.site
    ctx.figures["broke"] = broke
    # Each message leads with the outcome and the versions: heartbeats are cut at a few hundred characters.
    failing = _describe(applied[-1][1].changes)
    cause = f"it broke {broke.removeprefix(f'{failing} broke ')}" if broke.startswith(f"{failing} broke ") else broke
    head = failing
    earlier = [f for f in failed.open_rollbacks() if f.run_id != ctx.run_id]
    if earlier:  # Kuma's monitor is already down for these and will not notify again: this message names them
        ctx.figures["still_rolled_back"] = [f.figures() for f in earlier]
        head += f" (still rolled back: {describe_open(earlier, pages=False)})"
    if not site.updates.rollback:
        ctx.figures["outcome"] = "broken"
        raise JobFailed(
            f"NOT rolled back (rollback is off in this plan; the site runs the new versions): {head}; {cause}"
        )
    started = time.monotonic()
    try:
        done = roll_back(ctx, snapshot, applied)
    except Exception as e:  # journaled as pending: the next run of any verb tries again
        ctx.figures["outcome"] = "rollback failed"
        reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        raise JobFailed(
            f"ROLLBACK FAILED: {head}; {cause}; the rollback failed: {reason}", figures={"pending_rollback": True}
        ) from None
    after = _verify(ctx, baseline, any(o.provider == "apt" for _, o in applied))
    healthy = time.monotonic()
    figures: dict[str, Any] = {
        "rolled_back": [c.figures() for _, o in applied for c in o.changes],
        "rollback_seconds": round(healthy - started, 3),
        "healthy_after_seconds": round(healthy - broken_since, 3),
        "probe_after_rollback": [v.figures() for v in after],
    }
    ctx.figures.update(figures)
    if any(not v.ok for v in after):
        ctx.figures["outcome"] = "rolled back, still failing"
        raise JobFailed(
            f"rolled back but the site STILL FAILS: {head}; after the rollback: {probe.summary(after)}; "
            f"{cause}; rollback: {done}"
        )
    ctx.figures["outcome"] = "rolled back"
    raise JobFailed(
        f"rolled back: {head}; {cause}; healthy again {healthy - broken_since:.1f}s after the update; {done}",
        exitcodes.ROLLED_BACK,
    )


def update(
    config: Config, site_id: str, opts: UpdateOptions | None = None, *, wait: bool = False, settle: Settle | None = None
) -> JobResult:
    """Update one site the way the plan allows; see the module docstring."""
    site = config.site(site_id)
    return run_job(
        config,
        site_id,
        "update",
        lambda ctx: do_update(ctx, opts or UpdateOptions()),
        timeout=site.jobs.update_timeout_seconds,
        wait=wait,
        settle=settle,
    )
