"""A client's site archive (tar, optionally gzip/bzip2/xz): checked whole before anything is unpacked.

Every member must stay inside the site root: no absolute names, no `..`, no
symlink or hard link that points out of the root, no device files or FIFOs.
The archive may hold the site at its top or inside one top directory
(`public_html/`, `www/`): that directory is taken off. A WordPress archive must
hold `wp-config.php` there (the site's own, which tells the table prefix; the
import replaces it with the one carestack writes). The sum of the files' sizes
is what the free-space check needs.

`extract` unpacks exactly the checked members under the staging directory; the
caller then gives every entry to the site's user.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

WP_CONFIG = "wp-config.php"
_TABLE_PREFIX = re.compile(rb"""^\s*\$table_prefix\s*=\s*['"]([A-Za-z0-9_]*)['"]\s*;""", re.MULTILINE)
_INDEX_FILES = ("index.php", "index.html", WP_CONFIG)


class ArchiveError(ValueError):
    """The archive cannot be imported; the message names the archive, the member and what is wrong."""


class UnsafeMember(ArchiveError):
    """A member would land outside the site root (absolute, `..`, a link out) or is a device/FIFO."""


class MissingWpConfig(ArchiveError):
    """A WordPress site's archive without wp-config.php."""


@dataclass(frozen=True)
class ArchiveFacts:
    path: Path
    top: str  # the directory taken off ("" when the site is at the archive's top)
    members: int
    file_bytes: int
    table_prefix: str | None  # from the archive's wp-config.php


def table_prefix_of(text: bytes) -> str | None:
    """`$table_prefix` of a wp-config.php's text."""
    m = _TABLE_PREFIX.search(text)
    return m.group(1).decode() if m else None


def _name(member: tarfile.TarInfo) -> str:
    return _clean(member.name)


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _top_dir(names: list[str], wordpress: bool) -> str:
    """The one top directory the site sits in, or "" when it sits at the archive's top."""
    files_at_top = [n for n in names if n and "/" not in n]
    tops = {n.split("/", 1)[0] for n in names if n}
    if len(tops) != 1 or any(n in _INDEX_FILES for n in files_at_top):
        return ""
    (top,) = tops
    inside = {n[len(top) + 1 :] for n in names if n.startswith(top + "/")}
    wanted = (WP_CONFIG,) if wordpress else _INDEX_FILES
    return top if any(w in inside for w in wanted) else ""


def _relative(name: str, top: str) -> str:
    if not top:
        return name
    return "" if name == top else name[len(top) + 1 :]


def _check_member(archive: Path, member: tarfile.TarInfo, rel: str) -> None:
    shown = f"{archive}: member {member.name!r}"
    if member.name.startswith("/") or (member.name and member.name[1:3] == ":\\"):
        raise UnsafeMember(f"{shown}: an absolute path (every member must be relative to the site root)")
    if ".." in member.name.replace("\\", "/").split("/"):
        raise UnsafeMember(f"{shown}: contains '..' (it would land outside the site root)")
    if "\x00" in member.name:
        raise UnsafeMember(f"{shown}: a NUL byte in its name")
    if member.issym():
        target = member.linkname
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise UnsafeMember(f"{shown}: a symlink to {target!r}, outside the site root")
    elif member.islnk():
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            raise UnsafeMember(f"{shown}: a hard link to {target!r}, outside the site root")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeMember(f"{shown}: a device file or FIFO (a site holds files, directories and links only)")


def inspect(archive: Path, *, wordpress: bool) -> ArchiveFacts:
    """Check every member (nothing is written); the facts the import needs."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            names = [_name(m) for m in members]
            top = _top_dir(names, wordpress)
            prefix: str | None = None
            found_config = False
            for member, name in zip(members, names, strict=True):
                if top and name != top and not name.startswith(top + "/"):
                    continue  # cannot happen: _top_dir found one top directory
                rel = _relative(name, top)
                _check_member(archive, member, rel)
                if member.islnk() and top and not _clean(member.linkname).startswith(top + "/"):
                    raise UnsafeMember(
                        f"{archive}: member {member.name!r}: a hard link to {member.linkname!r}, outside the site root"
                    )
                if rel == WP_CONFIG and member.isfile():
                    found_config = True
                    handle = tar.extractfile(member)
                    prefix = table_prefix_of(handle.read(256 * 1024)) if handle else None
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ArchiveError(f"{archive}: not a readable tar archive (tar, tar.gz, tar.bz2, tar.xz): {e}") from None
    if not members:
        raise ArchiveError(f"{archive}: the archive is empty")
    if wordpress and not found_config:
        raise MissingWpConfig(
            f"{archive}: no {WP_CONFIG} at the archive's top or in its one top directory: not a WordPress site's "
            "files (archive the directory that holds wp-config.php)"
        )
    file_bytes = sum(m.size for m in members if m.isfile())
    return ArchiveFacts(archive, top, len(members), file_bytes, prefix)


def extract(facts: ArchiveFacts, dest: Path) -> int:
    """Unpack the checked members under `dest` (the top directory taken off); the number of entries."""
    count = 0
    with tarfile.open(facts.path, "r:*") as tar:
        chosen = []
        for member in tar.getmembers():
            rel = _relative(_name(member), facts.top)
            if not rel:
                continue
            _check_member(facts.path, member, rel)  # the file may have changed since the check: checked again
            member.name = rel
            if member.islnk():
                member.linkname = _relative(_clean(member.linkname), facts.top)
            chosen.append(member)
            count += 1
        if hasattr(tarfile, "data_filter"):  # the standard library's own guard as well, where it has one
            tar.extractall(dest, members=chosen, numeric_owner=True, filter="data")
        else:
            tar.extractall(dest, members=chosen, numeric_owner=True)
    return count


def hand_to(tree: Path, uid: int, gid: int) -> int:
    """Every entry under `tree` to uid:gid; directories 0755, files 0644 (no set-id or executable bits)."""
    changed = 0
    for base, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            os.lchown(path, uid, gid)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(path, 0o755)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o644)
            changed += 1
    return changed
