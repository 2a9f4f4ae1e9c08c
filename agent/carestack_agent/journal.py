"""The local journal: one JSON object per line under state_dir, crash-safe.

Every job writes a `start` line before it touches anything and an `end` line
with its result and figures. Lines are appended with O_APPEND under an flock
and fsynced, so a crash leaves at worst a `start` without its `end` (shown as
"interrupted" by `status`), never a torn line that breaks the reader (torn
lines are skipped anyway). The file rotates once at 8 MiB (journal.jsonl.1).
No secrets are ever written here: callers pass only figures and messages that
were built without them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JOURNAL = "journal.jsonl"
ROTATE_BYTES = 8 * 1024 * 1024


class JournalError(OSError):
    """The journal could not take a line (disk full, read-only): nothing of the line was kept."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / JOURNAL

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        record = {"ts": now_iso(), **entry}
        line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size > ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(JOURNAL + ".1"))
                os.close(fd)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:  # a full disk may take part of the line: write on until it refuses
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as e:
                with contextlib.suppress(OSError):  # no torn line for the next writer to glue onto
                    os.ftruncate(fd, size)
                raise JournalError(f"journal {self.path}: cannot append a line ({e.strerror})") from e
        finally:
            os.close(fd)
        return record

    def entries(self) -> Iterator[dict[str, Any]]:
        for path in (self.path.with_name(JOURNAL + ".1"), self.path):
            if not path.exists():
                continue
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue  # a torn last line after a crash
                    if isinstance(record, dict):
                        yield record

    def last_results(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Per (site, job): the last start, end, busy and step (an update's) records."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for rec in self.entries():
            site, job, event = rec.get("site"), rec.get("job"), rec.get("event")
            if not isinstance(site, str) or not isinstance(job, str):
                continue
            slot = out.setdefault((site, job), {})
            if event == "start":
                slot["last_start"] = rec
            elif event == "end":
                slot["last_end"] = rec
            elif event == "busy":
                slot["last_busy"] = rec
            elif event == "step":
                slot["last_step"] = rec
        return out
