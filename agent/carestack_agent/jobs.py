"""What every job shares: the site lock, the journal, the deadline, the heartbeat.

`run_job` takes the lock, writes `start`, lets `settle` finish what an earlier
run left (the CLI passes the interrupted-update recovery; this frame knows no
action), runs the action's body, maps its failure to a reason and an exit
code, writes `end`, pushes the heartbeat, and leaves the run's evidence record
in the client's bucket (`evidence.py`; a failure there is journaled, never the
job's). Bodies only do their work and
raise on failure; callers that already hold the site lock (the
update-with-rollback flow) call the bodies with their own `Context` instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from . import evidence, exitcodes, lease, restic_commands
from .config import Config, Site
from .hooks import kuma
from .hooks.mariadb import DatabaseError
from .journal import Journal, JournalError
from .lock import LockBusy, SiteLock
from .proc import Deadline
from .restic import Restic, ResticError, with_retries
from .secrets import SecretError
from .streamfs import StreamFsError

log = logging.getLogger("carestack_agent")
T = TypeVar("T")

RESTIC_EXIT = {
    "locked": exitcodes.UNAVAILABLE,
    "auth": exitcodes.AUTH,
    "not_initialized": exitcodes.NOT_INITIALIZED,
    "timeout": exitcodes.TIMEOUT,
    "stalled": exitcodes.UNAVAILABLE,
    "transient": exitcodes.UNAVAILABLE,
    "failed": exitcodes.FAILED,
}


class JobFailed(Exception):
    def __init__(self, message: str, exit_code: int = exitcodes.FAILED, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.figures = figures or {}


@dataclass
class Context:
    config: Config
    site: Site
    job: str
    run_id: str
    deadline: Deadline
    restic: Restic
    journal: Journal
    figures: dict[str, Any] = field(default_factory=dict)
    unclean: bool = True  # the site's previous job did not succeed: restic may have left a stale lock
    # The job succeeded, yet its Kuma monitor must stay down: an earlier update was rolled back and nobody
    # has dealt with it (the message says so). Kuma notifies only when a monitor changes state.
    monitor_down: bool = False
    # Objects that go to the bucket beside the run's evidence record, by name (the scan's baseline).
    attachments: dict[str, bytes] = field(default_factory=dict)
    _unlocked: bool = False

    def retry(self, attempt: Callable[[], T], what: str) -> T:
        """`attempt` with retries of transient errors; a lock conflict first removes stale locks."""
        return with_retries(
            attempt,
            settings=self.config.agent,
            deadline=self.deadline,
            what=what,
            on_locked=self.unlock_stale,
            on_retry=self.note_retry,
        )

    def note_retry(self, what: str, wait: float, error: ResticError) -> None:
        """Each retry goes into the run's figures (journal `end`): what failed, why, the wait before the next."""
        self.figures.setdefault("retries", []).append(
            {"what": what, "wait_seconds": round(wait, 3), "error": self.restic.redact(error.message)}
        )

    def note(self, event: str, **fields: Any) -> None:
        """Journal one event of this run (the update flow records each step, and what it is about to change)."""
        self.journal.append(
            {"site": self.site.id, "job": self.job, "run_id": self.run_id, "host": self.config.agent.host,
             "event": event, **fields}
        )  # fmt: skip

    def unlock_stale(self) -> None:
        """`restic unlock`: removes only stale locks (same host, dead PID); live locks are respected.

        Never `--remove-all`: that would break a job running elsewhere on the repository.
        """
        with_retries(
            lambda: self.restic.run(restic_commands.unlock(), self.deadline, what="unlock"),
            settings=self.config.agent,
            deadline=self.deadline,
            what="unlock",
            on_retry=self.note_retry,
        )
        self._unlocked = True

    def prepare(self) -> None:
        """Before a job: remove stale restic locks if the previous job on this site did not end well.

        A crashed or killed run (kill -9, watchdog, power loss) never reaches a
        successful end, so the next run unlocks first; a lock conflict found
        later (a stale lock from elsewhere on this host) unlocks via `retry`.
        Skipping the unconditional unlock saves one restic start per job.
        """
        if self.unclean and not self._unlocked:
            self.unlock_stale()

    @classmethod
    def create(cls, config: Config, site: Site, job: str, timeout: float) -> Context:
        return cls(
            config=config,
            site=site,
            job=job,
            run_id=new_run_id(),
            deadline=Deadline(timeout),
            restic=Restic(config.agent, site),
            journal=Journal(config.agent.state_dir),
        )


@dataclass
class JobResult:
    job: str
    site: str
    ok: bool
    message: str
    exit_code: int
    run_id: str
    duration: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


Body = Callable[[Context], str]  # returns the one-line summary; puts figures into ctx.figures
Settle = Callable[[Context], None]  # runs before the body; raises JobFailed if the site must not go on


def run_job(
    config: Config,
    site_id: str,
    job: str,
    body: Body,
    *,
    timeout: float,
    wait: bool = False,
    push: bool = True,
    extra: dict[str, Any] | None = None,
    settle: Settle | None = None,
) -> JobResult:
    site = config.site(site_id)
    ctx = Context.create(config, site, job, timeout)
    base = {"site": site.id, "job": job, "run_id": ctx.run_id, "host": config.agent.host, **(extra or {})}
    lock = SiteLock(config.agent.state_dir, site.id, job)
    try:
        lock.acquire(wait=wait)
    except LockBusy as e:
        ctx.journal.append({**base, "event": "busy", "message": str(e)})
        return JobResult(job, site.id, False, str(e), exitcodes.BUSY, ctx.run_id)
    held = lease.verdict(config, site, job)  # during a failover another server may hold the site
    if held.refusal is not None:
        lock.release()
        return _fenced(config, ctx, base, held.refusal, push)
    ctx.monitor_down = held.warning is not None
    clean_marker = config.agent.state_dir / "clean" / site.id
    try:
        ctx.unclean = not clean_marker.exists()
        clean_marker.unlink(missing_ok=True)  # a crash from here on leaves the site "unclean"
        started = time.monotonic()
        started_at = datetime.now(UTC)
        try:
            ctx.journal.append({**base, "event": "start", "pid": os.getpid()})
        except JournalError as e:  # nothing runs that the journal cannot account for
            return _unjournaled(config, ctx, f"{e}; the job did not run")
        log.info("%s %s: started (run %s)", job, site.id, ctx.run_id)
        try:
            if settle is not None:  # e.g. an update interrupted on this site is rolled back before anything else
                settle(ctx)
            summary = body(ctx)
            ok, code, message = True, exitcodes.OK, summary
        except JobFailed as e:
            ok, code, message = False, e.exit_code, e.message
            ctx.figures.update(e.figures)
        except ResticError as e:
            ok, code, message = False, RESTIC_EXIT.get(e.kind, exitcodes.FAILED), e.message
        except SecretError as e:
            ok, code, message = False, exitcodes.CONFIG, str(e)
        except (DatabaseError, StreamFsError, OSError) as e:
            ok, code, message = False, exitcodes.FAILED, f"{type(e).__name__}: {e}"
        except Exception as e:  # an agent bug must still end the job cleanly and push down
            log.exception("%s %s: internal error", job, site.id)
            ok, code, message = False, exitcodes.FAILED, f"internal error: {type(e).__name__}"
        duration = time.monotonic() - started
        message = (f"{held.warning}; " if held.warning else "") + ctx.restic.redact(message)  # first: pushes cut it
        if ok:
            clean_marker.parent.mkdir(parents=True, exist_ok=True)
            clean_marker.touch()
        try:
            ctx.journal.append(
                {
                    **base,
                    "event": "end",
                    "result": "ok" if ok else "failed",
                    "exit_code": code,
                    "message": message,
                    "duration": round(duration, 3),
                    "figures": ctx.figures,
                }
            )
        except JournalError as e:  # `status` will show the run as interrupted: say why, and do not count it clean
            clean_marker.unlink(missing_ok=True)
            ok, code, message = False, exitcodes.FAILED, f"{message}; {e}"
        (log.info if ok else log.error)("%s %s: %s", job, site.id, message)
        if push:
            up = ok and not ctx.monitor_down
            pushed = kuma.push(
                site.push_base_url,
                site.push_tokens_file,
                job,
                up=up,
                msg=message if ok else f"{job} failed: {message}",
                ping_ms=int(duration * 1000),
                timeout=config.agent.push_timeout_seconds,
            )
            if pushed:
                log.info("%s %s: heartbeat pushed (%s)", job, site.id, "up" if up else "down")
        leave_evidence(ctx, started_at, ok=ok, exit_code=code, message=message)
        return JobResult(job, site.id, ok, message, code, ctx.run_id, duration, dict(ctx.figures))
    finally:
        lock.release()


def _fenced(config: Config, ctx: Context, base: dict[str, Any], message: str, push: bool) -> JobResult:
    """A job refused because the site's lease names another server: journaled, logged and pushed down."""
    log.error("%s %s: %s", ctx.job, ctx.site.id, message)
    with contextlib.suppress(JournalError):  # the refusal stands; stderr and the heartbeat still say why
        ctx.journal.append({**base, "event": "fenced", "message": message})
    if push:
        refused = f"{ctx.job} refused: {message}"
        kuma.push(ctx.site.push_base_url, ctx.site.push_tokens_file, ctx.job, up=False, msg=refused, ping_ms=0,
                  timeout=config.agent.push_timeout_seconds)  # fmt: skip
    return JobResult(ctx.job, ctx.site.id, False, message, exitcodes.FENCED, ctx.run_id)


def leave_evidence(ctx: Context, started_at: datetime, *, ok: bool, exit_code: int, message: str) -> None:
    """The run's record to the client's bucket (after the heartbeat: a slow S3 must not delay it); what
    could not be sent stays in the outbox for the next job of the site, and the journal says why."""
    if not ctx.site.repository.startswith("s3:"):
        return  # a repository on a local path has no bucket to keep evidence in
    base = {"site": ctx.site.id, "job": ctx.job, "run_id": ctx.run_id, "host": ctx.config.agent.host}
    try:
        sent = evidence.leave(ctx.config, ctx.site, ctx.job, ctx.run_id, started_at, datetime.now(UTC), ok=ok,
                              exit_code=exit_code, message=message, figures=ctx.figures,
                              attachments=ctx.attachments)  # fmt: skip
    except OSError as e:  # not even the outbox took it (disk full, ...): the job's result stands
        error, left = f"the outbox could not take it ({e.strerror or e})", None
    except Exception as e:  # an agent bug: the job's result stands all the same
        log.exception("%s %s: evidence not written", ctx.job, ctx.site.id)
        error, left = f"internal error: {type(e).__name__}", None
    else:
        if sent.error is None:
            return
        error, left = sent.error, sent.pending
    text = f"evidence not written: {error}" + (f" ({left} record(s) kept in the outbox)" if left else "")
    log.warning("%s %s: %s", ctx.job, ctx.site.id, text)
    with contextlib.suppress(JournalError):
        ctx.journal.append({**base, "event": "evidence", "result": "failed", "message": text, "pending": left})


def _unjournaled(config: Config, ctx: Context, message: str) -> JobResult:
    """A job refused because its `start` could not be journaled: said on stderr and to Kuma."""
    log.error("%s %s: %s", ctx.job, ctx.site.id, message)
    kuma.push(ctx.site.push_base_url, ctx.site.push_tokens_file, ctx.job, up=False, msg=f"{ctx.job} failed: {message}",
              ping_ms=0, timeout=config.agent.push_timeout_seconds)  # fmt: skip
    return JobResult(ctx.job, ctx.site.id, False, message, exitcodes.FAILED, ctx.run_id)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
