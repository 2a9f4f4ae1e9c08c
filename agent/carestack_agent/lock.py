"""One job per site at a time: an flock on <state_dir>/locks/<site>.lock.

The lock dies with its process (the kernel releases an flock when the file
is closed), so a crashed agent never leaves a site locked. The file records
who holds it, for the "busy" message.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from .journal import now_iso


class LockBusy(Exception):
    def __init__(self, site: str, holder: dict[str, Any]) -> None:
        who = f"{holder.get('job', 'a job')} (PID {holder.get('pid', '?')}, since {holder.get('since', '?')})"
        super().__init__(f"site {site}: {who} is running; try again later or use --wait")
        self.holder = holder


class SiteLock:
    def __init__(self, state_dir: Path, site: str, job: str) -> None:
        self.path = Path(state_dir) / "locks" / f"{site}.lock"
        self.site = site
        self.job = job
        self._fd = -1

    def acquire(self, wait: bool = False, timeout: float | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    holder = self.holder(fd)
                    os.close(fd)
                    raise LockBusy(self.site, holder) from None
                time.sleep(0.2)
        try:  # who holds it, for the busy message only: a full disk must not stop the job here
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "job": self.job, "since": now_iso()}).encode(), 0)
        except OSError:
            pass
        self._fd = fd

    @staticmethod
    def holder(fd: int) -> dict[str, Any]:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}

    def is_held(self) -> bool:
        """True if some process holds the lock right now (used by status)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SiteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
