"""Who a site's files belong to, carried in the snapshot so a restore on another server keeps them the site's.

restic restores numeric owners. A site's Linux user has whatever ids its server
gave it (the standby creates users in another order than the site's own
server), so a restore elsewhere would hand the files to another site's user.
Each snapshot is therefore tagged `owner:UID:GID`: the site root's owner and
that user's group at backup time. A restore in place gives every entry of the
restored tree owned by those ids to the owner of the live root instead (and
that user's group); other owners (root, www-data) are the same everywhere.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Iterator
from pathlib import Path

TAG_PREFIX = "owner:"

Ids = tuple[int, int]


def owner_of(root: Path) -> Ids | None:
    """(uid, the user's group) of the directory's owner; None if it or the user is missing."""
    try:
        uid = root.stat().st_uid
        return uid, pwd.getpwuid(uid).pw_gid
    except (OSError, KeyError):
        return None


def tag_for(root: Path) -> str | None:
    ids = owner_of(root)
    return f"{TAG_PREFIX}{ids[0]}:{ids[1]}" if ids else None


def from_tags(tags: Iterable[object]) -> Ids | None:
    for tag in tags:
        text = str(tag)
        if text.startswith(TAG_PREFIX):
            uid, _, gid = text[len(TAG_PREFIX) :].partition(":")
            if uid.isdigit() and gid.isdigit():
                return int(uid), int(gid)
    return None


def entries(tree: Path) -> Iterator[str]:
    """The tree itself and everything below it (symlinks not followed)."""
    yield str(tree)
    for base, dirs, files in os.walk(tree):
        for name in dirs + files:
            yield os.path.join(base, name)


def hand_over(tree: Path, old: Ids, new: Ids) -> int:
    """Give the tree's entries owned by `old` (uid, gid) to `new`; the number of entries changed."""
    if old == new:
        return 0
    changed = 0
    for path in entries(tree):
        st = os.lstat(path)
        uid = new[0] if st.st_uid == old[0] else -1
        gid = new[1] if st.st_gid == old[1] else -1
        if uid != -1 or gid != -1:
            os.lchown(path, uid, gid)
            changed += 1
    return changed
