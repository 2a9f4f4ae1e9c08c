"""Files that hold secrets: created 0600 from the first byte, replaced atomically."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path


def write_secret(path: Path, text: str) -> None:
    """Create a 0600 file without a moment of wider permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def receive_secret(argv: Sequence[str], path: Path, timeout: float) -> str | None:
    """A command's output (e.g. `ssh host cat FILE`) into a new 0600 file; None, or its error output."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as sink:
        done = subprocess.run(argv, stdout=sink, stderr=subprocess.PIPE, timeout=timeout, check=False)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace").strip()
