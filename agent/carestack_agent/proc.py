"""Child processes: low priority, killed with the agent, and under a watchdog.

Every external program the agent runs (restic, mariadb-dump, mariadb) is
started through `spawn`:
- in its own session / process group, so the watchdog can kill the whole group;
- under `setpriv --pdeathsig KILL` when available, so a crashed (kill -9) agent
  takes its children with it instead of leaving an orphan restic writing on;
- under `nice` and `ionice -c 3` (idle), optionally SCHED_IDLE (`chrt --idle`),
  so the site keeps answering quickly while a backup runs.
Those wrappers `exec` each other: the PID we hold is the real program's.
`run` is the one-shot form (output collected, watchdog at the deadline).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

KILL_GRACE_SECONDS = 3.0  # after SIGINT (restic removes its lock), then SIGKILL


class Deadline:
    """A job's time budget, shared by every command the job runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


def wrap(argv: Sequence[str], *, nice: int, ionice_idle: bool, sched_idle: bool = False) -> list[str]:
    prefix: list[str] = []
    setpriv = shutil.which("setpriv")
    if setpriv:
        prefix += [setpriv, "--pdeathsig", "KILL", "--"]
    chrt = shutil.which("chrt")
    if sched_idle and chrt:
        prefix += [chrt, "--idle", "0"]
    ionice = shutil.which("ionice")
    if ionice_idle and ionice:
        prefix += [ionice, "-c", "3"]
    if nice:
        nice_bin = shutil.which("nice")
        if nice_bin:
            prefix += [nice_bin, "-n", str(nice)]
    return prefix + list(argv)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    nice: int = 0,
    ionice_idle: bool = False,
    sched_idle: bool = False,
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    cwd: str | os.PathLike[str] | None = None,
    user: tuple[int, int] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv`; `user` = (uid, gid) runs it as that user with no supplementary groups."""
    return subprocess.Popen(
        wrap(argv, nice=nice, ionice_idle=ionice_idle, sched_idle=sched_idle),
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        user=user[0] if user else None,
        group=user[1] if user else None,
        extra_groups=[] if user else None,
        start_new_session=True,
        close_fds=True,
    )


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    killed: bool  # by the watchdog at the deadline

    def last_error(self) -> str:
        """The last non-empty line of stderr (else of stdout): what a failure message quotes."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.returncode}"


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    deadline: Deadline,
    input_text: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: tuple[int, int] | None = None,
) -> Completed:
    """Run a program to its end (or the deadline); output decoded, nothing raised for a non-zero exit."""
    proc = spawn(
        argv,
        env=env,
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        cwd=cwd,
        user=user,
    )
    with Watchdog(deadline, [proc]) as dog:
        out, err = proc.communicate(input_text.encode() if input_text is not None else None)
    return Completed(
        tuple(argv),
        proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        dog.fired,
    )


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def terminate(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGINT (restic then removes its lock), SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    kill_group(proc, signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        kill_group(proc, signal.SIGKILL)
        proc.wait()


class Watchdog:
    """Kills the given processes when the deadline passes (or on `fire()`)."""

    def __init__(self, deadline: Deadline, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        self.deadline = deadline
        self.procs = list(procs)
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)

    def _run(self) -> None:
        if self._done.wait(max(0.0, self.deadline.remaining())):
            return
        self.fired = True
        for proc in self.procs:
            kill_group(proc, signal.SIGINT)
        if self._done.wait(KILL_GRACE_SECONDS):
            return
        for proc in self.procs:
            if proc.poll() is None:
                kill_group(proc, signal.SIGKILL)


class TailReader:
    """Drains a pipe in a thread, keeping the last lines (bounded memory)."""

    def __init__(self, pipe: IO[bytes] | None, keep: int = 40, on_line: Callable[[str], None] | None = None) -> None:
        self.lines: list[str] = []
        self.keep = keep
        self._on_line = on_line
        self._pipe = pipe
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._pipe is None:
            return
        for raw in self._pipe:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if len(self.lines) > self.keep:
                del self.lines[0]
            if self._on_line is not None:
                self._on_line(line)

    def join(self, timeout: float | None = None) -> list[str]:
        self._thread.join(timeout)
        return self.lines
