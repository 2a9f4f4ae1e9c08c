"""Finishing an update that did not finish: the `settle` step the CLI gives every job (see jobs.run_job).

An update journals every step, the pre-update snapshot, and each offer before
applying it. A run that dies (kill -9, power loss, watchdog) leaves a `start`
without an `end`; a run whose rollback failed ends with `pending_rollback`.
The next job on the site, whatever its verb, looks for such a run (only after
an unclean job: the site's previous job did not succeed) and settles it:
- nothing applied yet (killed during health, check or snapshot): nothing to
  undo, the run is closed as interrupted. The database is not restored: a
  snapshot would undo the site's own writes since, for nothing;
- offers applied, probes not passed: the providers' rollbacks (apt reinstalls
  the previous .debs, finishing a dpkg run that was cut short) and the
  snapshot's files and database, then the pages are probed;
- probes had passed (`verified`): the update stays.
Redoing a rollback is harmless (packages already back are skipped, a restore
swaps in the same snapshot again), so a kill during the rollback itself is
recovered the same way. The settled run gets its `end` in the journal (with
who finished it) and Kuma's UPDATE monitor hears the outcome. If the rollback
fails again the current job fails too: the site must not run half-updated.

`settle SITE` is a job with nothing but this step (and the stale restic lock
a killed job may have left): the job units' `OnFailure=` and a boot timer run
it, so a crashed run is settled within a minute, not at the next schedule.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import exitcodes, probe
from ..config import Config
from ..hooks import kuma
from ..jobs import Context, JobFailed, JobResult, Settle, leave_evidence, run_job
from ..journal import Journal
from ..providers.base import Offer
from ..providers.failed import FailedVersions
from ..providers.registry import make_provider
from ..restic import ResticError
from .restore import finish_interrupted_restore
from .rollback import roll_back

log = logging.getLogger("carestack_agent.recovery")


@dataclass
class Interrupted:
    run_id: str
    started: str
    step: str | None = None
    snapshot: str | None = None
    offers: list[Offer] = field(default_factory=list)
    verified: bool = False


def find_interrupted(journal: Journal, site_id: str, current_run: str) -> Interrupted | None:
    """The site's last update run (other than the current one), if it never settled."""
    last: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    for rec in journal.entries():
        if rec.get("site") != site_id or rec.get("job") != "update" or rec.get("run_id") == current_run:
            continue
        if rec.get("event") == "start":
            last, events = rec, []
        elif last is not None and rec.get("run_id") == last.get("run_id"):
            events.append(rec)
    if last is None:
        return None
    ends = [e for e in events if e.get("event") == "end"]
    if ends and not (ends[-1].get("figures") or {}).get("pending_rollback"):
        return None
    found = Interrupted(str(last["run_id"]), str(last.get("ts", "")))
    for e in events:
        kind = e.get("event")
        if kind == "step":
            found.step = str(e.get("step"))
        elif kind == "snapshot":
            found.snapshot = str(e.get("snapshot_id"))
        elif kind == "apply" and isinstance(e.get("offer"), dict):
            found.offers.append(Offer.from_json(e["offer"]))
        elif kind == "verified":
            found.verified = True
    return found


def _settle(rctx: Context, run: Interrupted) -> tuple[bool, str]:
    """Do what the interrupted run left undone; (site healthy on a settled state, what was done)."""
    where = f"interrupted at step {run.step or 'start'}"
    if run.verified:
        for offer in run.offers:
            provider = make_provider(offer.provider, rctx)
            try:
                provider.finish(offer)
            finally:
                provider.close()
        return True, f"{where} after its probes passed: the update stays"
    if not run.offers or run.snapshot is None:
        return True, f"{where}, before anything changed: nothing to roll back"
    if not rctx.site.updates.rollback:
        return False, f"{where}; rollback is off in this plan: the site may run half-updated"
    providers = [make_provider(offer.provider, rctx) for offer in run.offers]
    try:
        done = roll_back(rctx, run.snapshot, list(zip(providers, run.offers, strict=True)))
    finally:
        for provider in providers:
            provider.close()
    time.sleep(rctx.config.agent.probe_settle_seconds)  # the old code may still answer from PHP's opcache
    after = probe.measure(probe.pages_of(rctx.site), rctx.config.agent)
    failing = after.failing()
    if failing:
        return False, f"{where}; rolled back ({done}) but the site STILL FAILS: {probe.summary(failing)}"
    return True, f"{where}; rolled back: {done}; the site answers again"


def finish_interrupted(ctx: Context) -> None:
    """Settle the site's interrupted update, if any, before the current job's own work."""
    if not ctx.unclean:
        return
    finish_interrupted_restore(ctx)  # a plain restore killed while swapping: redone first
    run = find_interrupted(ctx.journal, ctx.site.id, ctx.run_id)
    if run is None:
        return
    site = ctx.site
    log.warning("%s: update run %s (started %s) was interrupted at step %s; finishing it before %s",
                site.id, run.run_id, run.started, run.step or "start", ctx.job)  # fmt: skip
    rctx = Context.create(ctx.config, site, "update", site.jobs.restore_timeout_seconds)
    rctx.run_id = run.run_id  # its journal events and staging names belong to the interrupted run
    started = time.monotonic()
    figures: dict[str, Any] = {"recovered_by": f"{ctx.job} {ctx.run_id}", "interrupted_step": run.step}
    try:
        healthy, message = _settle(rctx, run)
    except Exception as e:
        reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        message = f"interrupted at step {run.step}; the rollback failed again: {reason}"
        _end(rctx, False, message, {**figures, "pending_rollback": True}, started, run.started)
        ctx.figures["finished_update"] = {"run_id": run.run_id, "started": run.started, "healthy": False,
                                          "outcome": "rollback failed", "message": message}  # fmt: skip
        raise JobFailed(f"an interrupted update (run {run.run_id}) could not be rolled back: {reason}") from None
    kept = run.verified
    figures["outcome"] = "updated" if kept else ("rolled back" if run.offers else "interrupted")
    figures["rolled_back"] = [] if kept else [c.figures() for o in run.offers for c in o.changes]
    if kept:  # the update stays: an earlier rollback of these components is over
        FailedVersions(ctx.config.agent.state_dir, site.id).resolve(
            [c for o in run.offers for c in o.changes], run.run_id
        )
    _end(rctx, kept, message, figures, started, run.started)
    ctx.figures["finished_update"] = {"run_id": run.run_id, "started": run.started, "healthy": healthy,
                                      "outcome": figures["outcome"], "message": message}  # fmt: skip
    if not healthy:
        raise JobFailed(f"an interrupted update (run {run.run_id}) left the site failing: {message}")


def describe(finished: dict[str, Any]) -> str:
    """One line on a settled run: `settled update run R (started T): interrupted at ...; rolled back: ...`."""
    verb = "could not settle" if finished.get("outcome") == "rollback failed" else "settled"
    return f"{verb} update run {finished.get('run_id')} (started {finished.get('started')}): {finished.get('message')}"


def _settle_body(ctx: Context) -> str:
    finished = ctx.figures.get("finished_update")
    if ctx.unclean:
        try:
            ctx.prepare()  # a killed restic may have left its lock in the repository: removed if stale
        except ResticError as e:
            if e.kind != "not_initialized":
                raise
            # A new server settles at boot before its first converge has run `init`: no repository, no lock.
            return "nothing to settle: the site has no repository yet"
    if finished:
        return describe(finished)
    return "nothing to settle" + ("; stale restic locks removed, if there were any" if ctx.unclean else "")


def settle(config: Config, site_id: str, *, wait: bool = False, settle_with: Settle | None = None) -> JobResult:
    """The `settle` verb: finish what a crashed job on the site left, and nothing else.

    `settle_with` is what every job runs first (the CLI adds the interrupted import's undo to the
    interrupted update's), so the units' OnFailure= settles exactly what the next job would.
    Another job holding the site's lock settles first by itself, so a busy lock is not a failure here.
    """
    site = config.site(site_id)
    result = run_job(config, site_id, "settle", lambda ctx: _settle_body(ctx),
                     timeout=site.jobs.restore_timeout_seconds, wait=wait, push=False,
                     settle=settle_with or finish_interrupted)  # fmt: skip
    if result.exit_code == exitcodes.BUSY:
        result.ok, result.exit_code = True, exitcodes.OK
        result.message = f"another job holds the site's lock and settles first ({result.message})"
    return result


def _when(journal_ts: str) -> datetime:
    try:
        moment = datetime.fromisoformat(journal_ts.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _end(rctx: Context, ok: bool, message: str, figures: dict[str, Any], started: float, run_started: str) -> None:
    duration = time.monotonic() - started
    code = (
        exitcodes.OK if ok else (exitcodes.ROLLED_BACK if figures.get("outcome") == "rolled back" else exitcodes.FAILED)
    )
    rctx.note("end", result="ok" if ok else "failed", exit_code=code, message=message,
              duration=round(duration, 3), figures=figures)  # fmt: skip
    rctx.figures = figures
    # The interrupted run's own record (its run id, its start): the report sees the update and how it ended.
    leave_evidence(rctx, _when(run_started), ok=ok, exit_code=code, message=message)
    site = rctx.site
    failed = FailedVersions(rctx.config.agent.state_dir, site.id)
    still = failed.open_rollbacks() if ok else []
    if still:  # the monitor stays down while a rollback waits for an operator (see update.py)
        message = f"{failed.still_rolled_back(still)}; {message}"
    kuma.push(
        site.push_base_url,
        site.push_tokens_file,
        "update",
        up=ok and not still,
        msg=message if ok else f"update failed: {message}",
        ping_ms=int(duration * 1000),
        timeout=rctx.config.agent.push_timeout_seconds,
    )
