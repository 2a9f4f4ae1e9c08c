"""Secret files: 0600 from the first byte, whether written from text or received from a command."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from infra.secret_file import receive_secret, write_secret


def test_a_written_secret_is_private_and_replaces_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "key"
    write_secret(path, "one")
    write_secret(path, "two")
    assert path.read_text() == "two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_received_secret_is_private_and_a_failure_returns_the_commands_error(tmp_path: Path) -> None:
    path = tmp_path / "fetched"
    path.write_text("an earlier, partial copy")
    ok = receive_secret([sys.executable, "-c", "import sys; sys.stdout.buffer.write(bytes(range(256)))"], path, 30)
    assert ok is None and path.read_bytes() == bytes(range(256))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    failed = receive_secret([sys.executable, "-c", "import sys; sys.exit('cat: /x: No such file')"], path, 30)
    assert failed == "cat: /x: No such file"
