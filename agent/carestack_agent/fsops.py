"""Filesystem operations that swap a whole tree in at once: staging next to the live path, exchange.

A new tree (a restored snapshot, an unpacked release) is built in a staging
directory beside the live one, on the same file system, and swapped in with one
atomic renameat2(RENAME_EXCHANGE); the old tree then sits in the staging path
and is removed. Nothing live changes until the new tree is complete.

A staging directory is always empty before anything is written into it
(`fresh_dir`): restic's restore overwrites files but never removes extra ones,
so a tree left by an interrupted run (the same run id when recovery redoes
it, or the live tree an exchange parked there) would be merged in.
`clear_leftovers` removes what earlier runs left beside a live path.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
from pathlib import Path

RENAME_EXCHANGE = 2
AT_FDCWD = -100
RUN_ID = r"[0-9]{8}T[0-9]{6}-[0-9a-f]+"  # jobs.new_run_id's form: leftovers of another path never match
# glibc's soname on Debian: find_library("c") would run `ldconfig -p` at every job's start.
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two paths on one file system."""
    rc = _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"renameat2(RENAME_EXCHANGE) {a} <-> {b}: {os.strerror(err)}")


def staging_path(live: Path, purpose: str, run_id: str) -> Path:
    """A staging path beside `live` (same file system, so it can be exchanged), named for the run."""
    return live.parent / f".cs-{purpose}-{live.name}-{run_id}"


def leftovers(live: Path, purpose: str) -> list[Path]:
    """Staging paths of `purpose` beside `live` from any run (not those of another live path)."""
    if not live.parent.is_dir():
        return []
    name = re.compile(rf"\.cs-{re.escape(purpose)}-{re.escape(live.name)}-{RUN_ID}")
    return sorted(p for p in live.parent.iterdir() if name.fullmatch(p.name))


def clear_leftovers(live: Path, purpose: str) -> list[Path]:
    """Remove what interrupted runs left beside `live` (staged trees, old trees parked by an exchange)."""
    found = leftovers(live, purpose)
    for path in found:
        remove_tree(path)
    return found


def fresh_dir(path: Path) -> Path:
    """`path` as an empty directory (whatever an earlier, interrupted run left there is removed)."""
    remove_tree(path)
    path.mkdir()
    return path


def swap_in(new: Path, live: Path) -> None:
    """Put `new` at `live`: exchanged when `live` exists (the old tree then sits at `new`), else renamed."""
    if live.exists() or live.is_symlink():
        exchange(new, live)
    else:
        os.rename(new, live)


def remove_tree(path: Path) -> None:
    """Remove a staging tree (or what an exchange left in it); missing is fine.

    Errors are not raised here (callers use it in `finally`); `fresh_dir` fails
    if a leftover could not be removed, so nothing is ever merged into one.
    """
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
