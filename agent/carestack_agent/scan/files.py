"""Every file of a site: path, size, mode, owner and sha256, with a hash cache for fast rescans.

A file's sha256 is reused from the previous walk when its size, mtime_ns,
ctime_ns and inode are all unchanged. mtime alone can be set back with
`touch -d`; ctime cannot be set by any user-space call (it moves on every
write, chmod, chown and utime), so a changed file that kept its size and had
its mtime restored still gets hashed again. What this trusts: the kernel's
ctime, i.e. nobody rewound the clock or wrote to the block device directly;
`--accept` and the baseline itself always hash everything.
Symbolic links are recorded with their target (never followed): a link is a
file of the site like any other.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every non-directory below root, sorted per directory, links not followed."""
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            entries = sorted(os.scandir(current), key=lambda e: e.name)
        except OSError:
            continue  # vanished meanwhile
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
            else:
                yield os.path.relpath(entry.path, root), st


CacheEntry = list[Any]  # [size, mtime_ns, ctime_ns, ino, sha256]: a list, a third of a dict's memory
CACHE_KEYS = ("size", "mtime_ns", "ctime_ns", "ino")


def cache_of(files: dict[str, dict[str, Any]]) -> dict[str, CacheEntry]:
    """The hash cache the next walk reads: only what it compares, and the sum."""
    return {rel: [*(r[k] for k in CACHE_KEYS), r["sha256"]] for rel, r in files.items() if "sha256" in r}


def inventory(root: Path, cache: dict[str, CacheEntry] | None = None) -> tuple[dict[str, dict[str, Any]], int]:
    """Every file of the site and how many were hashed (the rest came from `cache`)."""
    files: dict[str, dict[str, Any]] = {}
    hashed = 0
    cache = cache or {}
    for rel, st in walk(root):
        rec: dict[str, Any] = {
            "size": st.st_size, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino,
        }  # fmt: skip
        if stat.S_ISLNK(st.st_mode):
            rec["link"] = os.readlink(root / rel)
        elif stat.S_ISREG(st.st_mode):
            old = cache.get(rel)
            if isinstance(old, list) and len(old) == 5 and old[:4] == [rec[k] for k in CACHE_KEYS]:
                rec["sha256"] = old[4]
            else:
                try:
                    rec["sha256"] = sha256_of(root / rel)
                except OSError:
                    continue  # vanished or unreadable between the walk and the read
                hashed += 1
        else:
            rec["special"] = True  # a socket or fifo in a site root: recorded, never read
        files[rel] = rec
    return files, hashed


def write_private(path: Path, data: Any) -> None:
    """JSON into a root-only (0600) file under a 0700 directory, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, separators=(",", ":"), sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
