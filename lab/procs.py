"""The lab's own processes: started detached, recorded by PID, stopped by PID.

A PID file holds the PID and the process's start time (field 22 of
/proc/<pid>/stat), so a PID reused by an unrelated process after a crash or a
reboot is never mistaken for ours and never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcRecord:
    pid: int
    start_time: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def root_upperdir(pid: int) -> str | None:
    """The upper directory of the overlay a process (in its own mount namespace) has as its root.

    Inside its mount namespace a lab guest's root reads as "/", so /proc/<pid>/root cannot
    tell which guest it belongs to; its root mount's options can.
    """
    try:
        if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
            return None
        with open(f"/proc/{pid}/mountinfo") as mounts:
            root_line = next((line for line in mounts if line.split()[4] == "/"), "")
    except OSError:
        return None
    for option in root_line.split()[-1].split(","):
        if option.startswith("upperdir="):
            return option.removeprefix("upperdir=")
    return None


def pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def alive(record: ProcRecord) -> bool:
    fields = _stat_fields(record.pid)
    return fields is not None and fields[0] != "Z" and int(fields[19]) == record.start_time


def record_of(pid: int) -> ProcRecord | None:
    started = start_time(pid)
    return ProcRecord(pid, started) if started is not None else None


def save(path: Path, record: ProcRecord) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": record.pid, "start_time": record.start_time}))
    tmp.replace(path)


def load(path: Path) -> ProcRecord | None:
    try:
        data = json.loads(path.read_text())
        return ProcRecord(int(data["pid"]), int(data["start_time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(path: Path) -> ProcRecord | None:
    """The recorded process if it is still the one we started."""
    record = load(path)
    return record if record is not None and alive(record) else None


def spawn(
    argv: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcRecord:
    """Start a daemon in its own session (it outlives the CLI) and record it."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    record = record_of(proc.pid) or ProcRecord(proc.pid, 0)
    save(pid_file, record)
    return record


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(record: ProcRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(record):
        _reap(record.pid)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _reap(record.pid)
    return True


def stop(record: ProcRecord, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if the process was running."""
    if not alive(record):
        _reap(record.pid)
        return False
    signal_pid(record.pid, signal.SIGTERM)
    if not wait_gone(record, timeout):
        signal_pid(record.pid, signal.SIGKILL)
        wait_gone(record, 5.0)
    return True


def signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended between the check and the signal
        os.kill(pid, signum)


def stop_recorded(pid_file: Path, timeout: float = 10.0) -> bool:
    record = load(pid_file)
    stopped = stop(record, timeout) if record is not None else False
    pid_file.unlink(missing_ok=True)
    return stopped


def pss_kib(pid: int) -> int:
    """Proportional set size of one process (shared pages split among their users)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def ancestors(pid: int) -> list[int]:
    """The parent of `pid`, its parent, and so on up to (not including) PID 0."""
    found: list[int] = []
    current = parent(pid)
    while current > 0 and current not in found:
        found.append(current)
        current = parent(current)
    return found


def descendants(roots: Sequence[int]) -> list[int]:
    """The roots and every process below them."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    found: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a service's log, for an error message that says why it did not start."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
