"""The restic runner: environment, watchdog, `--json` parsing, error classes, retries.

It runs the command lines `restic_commands` builds and adds only the binary and
`--json`. restic runs directly (no shell). Its repository, password file and S3 keys
reach it through the child's environment only, never argv. Output is parsed
line by line from `--json`; only the summary, errors and the last backend
error are kept (status lines are dropped), so the agent's memory stays small.

Error classes decide what happens next:
- auth: wrong repository password or S3 keys rejected -> fail now, clear message
- transient: S3 unreachable, 5xx, timeouts -> retry with exponential backoff
  within the job's deadline
- locked: the repository is locked by another process -> `restic unlock`
  (removes only stale locks: same host, dead PID) and retry with backoff; a
  lock held by a live process is respected until the deadline
- not_initialized: no repository at the location -> `carestack-agent init SITE`
- timeout: the watchdog killed restic at the job's deadline
- stalled: restic made no progress for the site's `repository_stall_seconds`
  (an S3 endpoint that accepts connections and then answers nothing hangs
  restic 0.14 for good): restic is stopped and the endpoint named, no retry
- failed: anything else

Progress is what restic reads (`rchar` of /proc/<pid>/io: file contents, the
dump, S3's answers) and, for a backup, the figures of its `--json` status
lines. Writes do not count: restic writes status lines while it waits, and a
stalled S3 still accepts bytes into its socket buffers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import restic_commands
from .config import AgentSettings, Site
from .proc import KILL_GRACE_SECONDS, Deadline, TailReader, Watchdog, kill_group, spawn
from .secrets import check_private, s3_environment

log = logging.getLogger("carestack_agent.restic")

AUTH_PATTERNS = (
    (re.compile(r"wrong password or no key found"), "wrong repository password"),
    (
        re.compile(r"Access Denied|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|InvalidToken|"
                   r"Access Key Id you provided does not exist|request signature we calculated|403 Forbidden"),
        "S3 credentials rejected (access key unknown, wrong secret or not allowed on this bucket)",
    ),
)  # fmt: skip
NOT_INITIALIZED = re.compile(
    r"The specified key does not exist|NoSuchKey|config file .*(does not exist|not found)|"
    r"unable to open config file: stat .*no such file"
)
NO_BUCKET = re.compile(r"NoSuchBucket|The specified bucket does not exist")
TRANSIENT = re.compile(
    r"connection refused|connection reset|i/o timeout|no such host|network is unreachable|"
    r"TLS handshake timeout|server closed|broken pipe|unexpected EOF|: EOF|"
    r"context deadline exceeded|Client\.Timeout|InternalError|SlowDown|"
    r"\b50[0234] (Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)|"
    r"ServiceUnavailable|RequestTimeout|temporarily unavailable",
    re.IGNORECASE,
)
BACKEND_RETRY = re.compile(r"returned error, retrying after")
LOCKED = re.compile(r"repository is already locked|unable to create lock in backend")
# A pause in progress this share of the stall limit or longer is reported even when restic recovered.
STALL_NOTICE_SHARE = 0.25


class ResticError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Pause:
    """A stretch without progress: when it began (time.monotonic()) and how long it lasted."""

    began: float
    seconds: float


class ProgressWatch:
    """Stops a restic process that makes no progress for `limit` seconds; keeps the pauses it saw.

    A pause of at least `limit * STALL_NOTICE_SHARE` is recorded even when
    progress resumed, so a job that rode out a stall can say so.
    """

    def __init__(self, proc: subprocess.Popen[bytes], limit: float) -> None:
        self.proc = proc
        self.limit = limit
        self.notice = limit * STALL_NOTICE_SHARE
        self.pauses: list[Pause] = []
        self.fired = False
        self.status: tuple[Any, ...] = ()  # the last status line's figures (set by the stdout reader)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-watch", daemon=True)

    def __enter__(self) -> ProgressWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def note_status(self, msg: dict[str, Any]) -> None:
        self.status = (msg.get("files_done"), msg.get("bytes_done"), msg.get("total_bytes"))

    def _read_bytes(self) -> int | None:
        try:
            with open(f"/proc/{self.proc.pid}/io", encoding="ascii") as f:
                for line in f:
                    if line.startswith("rchar:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def _run(self) -> None:
        if self._read_bytes() is None:  # no /proc io for this process (not root, or gone): nothing to watch
            log.debug("restic (pid %d): progress not observable, no stall limit", self.proc.pid)
            return
        tick = min(1.0, self.limit / 20)
        last = (self._read_bytes(), self.status)
        since = time.monotonic()
        while not self._done.wait(tick):
            now = time.monotonic()
            current = (self._read_bytes(), self.status)
            if current != last:
                if now - since >= self.notice:
                    self.pauses.append(Pause(since, now - since))
                last, since = current, now
            elif now - since >= self.limit:
                self.fired = True
                self.pauses.append(Pause(since, now - since))
                kill_group(self.proc, signal.SIGINT)  # restic tries to remove its lock (S3 may not answer)
                if self._done.wait(KILL_GRACE_SECONDS):
                    return
                if self.proc.poll() is None:
                    kill_group(self.proc, signal.SIGKILL)
                return
        # restic ended within a tick of its progress resuming: the pause it rode out still counts.
        if time.monotonic() - since >= self.notice:
            self.pauses.append(Pause(since, time.monotonic() - since))


@dataclass
class ResticResult:
    returncode: int
    summary: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    last_backend_error: str | None = None
    timed_out: bool = False
    duration: float = 0.0
    stalled: bool = False  # stopped because it made no progress for the stall limit
    pauses: list[Pause] = field(default_factory=list)  # pauses in progress worth reporting (the fatal one too)

    @property
    def snapshot_id(self) -> str | None:
        if self.summary and isinstance(self.summary.get("snapshot_id"), str):
            return str(self.summary["snapshot_id"])
        return None


def _redact(text: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        if len(s) >= 4:
            text = text.replace(s, "***")
    return text


class Restic:
    """restic for one site's repository."""

    def __init__(self, settings: AgentSettings, site: Site) -> None:
        self.settings = settings
        self.site = site
        self._env: dict[str, str] | None = None
        self._secrets: list[str] = []

    def env(self) -> dict[str, str]:
        """The child's environment; secrets are loaded here, at run time, from their files."""
        if self._env is None:
            check_private(self.site.password_file)
            env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")}
            env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            env["HOME"] = str(self.settings.state_dir)
            env["RESTIC_CACHE_DIR"] = str(self.settings.state_dir / "cache")
            env["RESTIC_REPOSITORY"] = self.site.repository
            env["RESTIC_PASSWORD_FILE"] = str(self.site.password_file)
            env["GOMAXPROCS"] = str(restic_cpus(self.settings.restic_cpus))
            if self.site.credentials_file is not None:
                aws = s3_environment(self.site.credentials_file)
                self._secrets = [v for k, v in aws.items() if k != "AWS_DEFAULT_REGION"]
                env.update(aws)
            self._env = env
        return self._env

    def redact(self, text: str) -> str:
        return _redact(text, self._secrets)

    def spawn(
        self,
        args: Sequence[str],
        *,
        stdout: Any = subprocess.PIPE,
        stdin: Any = subprocess.DEVNULL,
        json_flag: bool = True,
    ) -> subprocess.Popen[bytes]:
        argv = [str(self.settings.restic)] + (["--json"] if json_flag else []) + list(args)
        return spawn(
            argv,
            env=self.env(),
            nice=self.settings.nice,
            ionice_idle=self.settings.ionice_idle,
            sched_idle=self.settings.sched_idle,
            stdin=stdin,
            stdout=stdout,
        )

    def run(self, args: Sequence[str], deadline: Deadline, *, what: str | None = None) -> ResticResult:
        """Run one restic command under the watchdog; raise ResticError unless it exits 0."""
        result = self.run_raw(args, deadline)
        if result.returncode != 0:
            raise self.classify(result, what or args[0])
        return result

    def run_raw(self, args: Sequence[str], deadline: Deadline) -> ResticResult:
        if deadline.expired():
            return ResticResult(returncode=-1, timed_out=True)
        started = time.monotonic()
        proc = self.spawn(args)
        log.debug("restic %s: started (pid %d)", args[0], proc.pid)
        result = ResticResult(returncode=0)

        def on_stderr(line: str) -> None:
            if line.startswith('{"message_type":"error"') and len(result.errors) < 100:
                with contextlib.suppress(ValueError):  # restic 0.14 prints --json errors on stderr
                    result.errors.append(json.loads(line))
            if BACKEND_RETRY.search(line) or TRANSIENT.search(line):
                result.last_backend_error = line

        stderr = TailReader(proc.stderr, on_line=on_stderr)
        watch = ProgressWatch(proc, self.site.jobs.repository_stall_seconds)
        with Watchdog(deadline, [proc]) as dog, watch:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.strip()
                if not line:
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict) and "message_type" in msg:
                    kind = msg["message_type"]
                    if kind == "status":
                        watch.note_status(msg)
                    elif kind == "summary":
                        result.summary = msg
                    elif kind == "error" and len(result.errors) < 100:
                        result.errors.append(msg)
                    continue
                result.documents.append(msg)
            result.returncode = proc.wait()
            result.timed_out = dog.fired
        result.stalled = watch.fired and not result.timed_out
        result.pauses = list(watch.pauses)
        result.stderr = [self.redact(x) for x in stderr.join(timeout=5)]
        if result.last_backend_error:
            result.last_backend_error = self.redact(result.last_backend_error)
        result.duration = time.monotonic() - started
        log.debug("restic %s: exit %s after %.2fs%s", args[0], result.returncode, result.duration,
                  " (watchdog)" if result.timed_out else " (stalled)" if result.stalled else "")  # fmt: skip
        for pause in result.pauses:
            fatal = result.stalled and pause is result.pauses[-1]
            log.warning("restic %s: %s made no progress for %.0f s%s", args[0], endpoint_name(self.site.repository),
                        pause.seconds, "" if fatal else " (then recovered)")  # fmt: skip
        if result.returncode != 0:
            for tail in result.stderr[-5:]:
                log.debug("restic %s: stderr: %s", args[0], tail)
        return result

    def classify(self, result: ResticResult, what: str) -> ResticError:
        text = "\n".join(result.stderr)
        fatal = next((x for x in reversed(result.stderr) if x.startswith("Fatal:")), None)
        detail = fatal or next((x for x in reversed(result.stderr) if x.strip()), f"exit status {result.returncode}")
        if result.timed_out:
            probe = probe_endpoint(self.site.repository)
            if probe:
                why = f"; {probe}"
            elif result.last_backend_error:
                why = f"; last backend error: {_essence(result.last_backend_error)}"
            else:
                why = ""
            return ResticError("timeout", f"restic {what} killed by the watchdog at the job's deadline{why}")
        if result.stalled:
            return ResticError("stalled", stall_message(self.site, what, result.pauses[-1].seconds))
        for pattern, message in AUTH_PATTERNS:
            if pattern.search(text):
                return ResticError("auth", f"restic {what}: {message}")
        if "repository contains errors" in text:
            found = [x.strip() for x in result.stderr if x.strip() and not x.startswith(("Fatal:", "[", "using "))]
            detail = "; ".join(found[-3:]) if found else "see restic check output"
            return ResticError("failed", f"restic {what} failed: the repository contains errors: {_short(detail)}")
        if NO_BUCKET.search(text):
            return ResticError("failed", f"restic {what}: the S3 bucket does not exist")
        if LOCKED.search(text):
            return ResticError("locked", f"restic {what}: repository locked by another process: {_short(detail)}")
        if TRANSIENT.search(text):
            return ResticError("transient", f"restic {what}: repository unreachable or busy: {_short(detail)}")
        if NOT_INITIALIZED.search(text) or "Is there a repository at the following location" in text:
            return ResticError(
                "not_initialized",
                f"restic {what}: no repository at {self.site.repository} (run `carestack-agent init {self.site.id}`)",
            )
        return ResticError("failed", f"restic {what} failed (exit {result.returncode}): {_short(detail)}")

    def stall_note(self, result: ResticResult, figures: dict[str, Any]) -> str:
        """ "; S3 endpoint ... stalled 1x (longest 14 s) and recovered" for a command that rode out pauses, else "".

        The job's figures get `stalls` and `longest_stall_seconds` either way.
        """
        seconds = [p.seconds for p in result.pauses]
        figures["stalls"] = len(seconds)
        figures["longest_stall_seconds"] = round(max(seconds), 1) if seconds else 0
        if not seconds:
            return ""
        where = endpoint_name(self.site.repository)
        return f"; {where} stalled {len(seconds)}x (longest {max(seconds):.0f} s) and recovered"

    def snapshots(self, deadline: Deadline) -> list[dict[str, Any]]:
        """The site's snapshots, as restic's JSON objects."""
        result = self.run(restic_commands.snapshots(self.site.id), deadline, what="snapshots")
        docs = result.documents[-1] if result.documents else []
        return [s for s in docs if isinstance(s, dict)] if isinstance(docs, list) else []


def restic_cpus(setting: int) -> int:
    """GOMAXPROCS for restic: the setting, or half of the CPUs this process may run on (at least one)."""
    return setting or max(1, len(os.sched_getaffinity(0)) // 2)


def endpoint_name(repository: str) -> str:
    """What a message calls the repository's endpoint: "S3 endpoint host:port (bucket b)" or the local path."""
    if not repository.startswith("s3:"):
        return f"repository {repository}"
    parts = urllib.parse.urlsplit(repository[3:])
    bucket = parts.path.strip("/").split("/", 1)[0]
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)  # never user:password@
    return f"S3 endpoint {where}" + (f" (bucket {bucket})" if bucket else "")


def stall_message(site: Site, what: str, seconds: float) -> str:
    return (
        f"restic {what}: {endpoint_name(site.repository)} stalled: no progress for {seconds:.0f} s "
        f"(limit {site.jobs.repository_stall_seconds} s), restic stopped"
    )


def probe_endpoint(repository: str, timeout: float = 2.0) -> str | None:
    """For an s3: repository, None if its endpoint accepts TCP connections, else why not (one line)."""
    if not repository.startswith("s3:"):
        return None
    parts = urllib.parse.urlsplit(repository[3:])
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        where = f"{host}:{parts.port}" if parts.port else host
        return f"S3 endpoint {where} unreachable ({reason.lower()})"


def _essence(line: str | None) -> str:
    """The root cause of a backend error line, without URLs: "dial tcp 10.0.0.1:9000: connect: connection refused"."""
    text = (line or "").strip()
    cut = text.rfind('": ')  # restic/minio quote the URL, the cause follows it
    if cut >= 0:
        text = text[cut + 3 :]
    return _short(text, 160)


def _short(text: str | None, limit: int = 240) -> str:
    text = (text or "").strip().replace("\n", " ")
    if text.startswith("Fatal: "):
        text = text[len("Fatal: ") :]
    return text if len(text) <= limit else text[: limit - 3] + "..."


T = TypeVar("T")


def with_retries(
    attempt: Callable[[], T],
    *,
    settings: AgentSettings,
    deadline: Deadline,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    on_locked: Callable[[], object] | None = None,
    on_retry: Callable[[str, float, ResticError], object] | None = None,
) -> T:
    """Run `attempt`, retrying transient (and locked) ResticErrors with exponential backoff inside the deadline.

    `on_retry(what, wait, error)` hears each retry before its wait (the job's figures record them).
    """
    delay = settings.retry_backoff_seconds
    unlocked = False
    for n in range(settings.retries + 1):
        try:
            return attempt()
        except ResticError as e:
            if e.kind not in ("transient", "locked") or n == settings.retries:
                raise
            if e.kind == "locked" and on_locked is not None and not unlocked:
                unlocked = True
                on_locked()  # stale locks only; then retry at once
                continue
            wait = min(delay, max(0.0, deadline.remaining() - 1))
            if wait <= 0:
                raise
            log.warning("%s: %s; retry %d/%d in %.1fs", what, e.message, n + 1, settings.retries, wait)
            if on_retry is not None:
                on_retry(what, wait, e)
            sleep(wait)
            delay *= 2
    raise AssertionError("unreachable")
