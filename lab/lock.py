"""One `lab up`/`lab down` at a time per state directory."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.errors import LabError

LOCK_FILE = ".lock"


@contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock; a directory that ends up holding nothing else is removed again
    (a `lab up` refused by its checks leaves nothing behind)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = state_dir / LOCK_FILE
    with open(lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LabError(f"another `carestack lab` command works on {state_dir}; wait for it to end") from None
        try:
            yield
        finally:
            if [p.name for p in state_dir.iterdir()] == [LOCK_FILE]:
                lock.unlink()
                state_dir.rmdir()
