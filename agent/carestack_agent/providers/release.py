"""release: the site's own code, from a tarball the agency builds and drops on the host.

Where: `updates.release_dir` (default state_dir/releases/<site>), files named
`<name>-<version>.tar.gz` (also .tgz, .tar.xz, .tar), e.g. `plans-2.4.1.tar.gz`.
The version is everything after the last `-` that starts with a digit, and
versions compare like Debian's (`2.10 > 2.9`, `3.0~rc1 < 3.0`).

What runs: the record `<root>/.carestack-release` (JSON: version, artifact,
sha256, time) names the installed release. It lives inside the site root, so
the pre-update snapshot carries it: a rollback restores the code and the
record together. A site without a record takes the newest artifact.

Apply: the tarball is unpacked into a staging directory next to the root (a
single top-level directory in the archive is taken as the root itself), the
paths listed in `release_preserve` (uploads, local config) are copied over
from the running release, every file is given to the root's owner, and the
staging tree is swapped in with one atomic RENAME_EXCHANGE. Archives are
checked member by member first: only files, directories and symlinks that
stay inside the tree; no setuid/setgid bits, nothing writable by others.
Rollback is the pre-update snapshot (files and database).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import time
from pathlib import Path, PurePosixPath

from .. import fsops, owners
from ..jobs import Context
from ..versions import debian_compare
from .base import Change, Offer, ProviderError, Remembered

ARTIFACT = re.compile(r"^(?P<name>.+?)-(?P<version>\d[A-Za-z0-9.+~]*)\.(?:tar\.gz|tgz|tar\.xz|tar)$")
RECORD = ".carestack-release"


def artifacts(directory: Path) -> list[tuple[str, Path]]:
    """(version, path) of each release artifact in the directory, oldest first."""
    found = []
    for path in directory.iterdir() if directory.is_dir() else []:
        match = ARTIFACT.match(path.name)
        if match and path.is_file():
            found.append((match["version"], path))
    ordered: list[tuple[str, Path]] = []
    for item in found:  # insertion sort by Debian order (a handful of files)
        i = len(ordered)
        while i and debian_compare(ordered[i - 1][0], item[0]) > 0:
            i -= 1
        ordered.insert(i, item)
    return ordered


def current(root: Path) -> str | None:
    try:
        data = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return str(version) if version else None


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member, or ProviderError naming the first one that could escape the tree or is not plain."""
    members = archive.getmembers()
    for m in members:
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts:
            raise ProviderError(f"release archive member {m.name!r} points outside the tree")
        if m.issym():
            target = PurePosixPath(m.linkname)
            if target.is_absolute() or ".." in (name.parent / target).parts:
                raise ProviderError(f"release archive symlink {m.name!r} -> {m.linkname!r} leaves the tree")
        elif not (m.isfile() or m.isdir()):
            raise ProviderError(f"release archive member {m.name!r} is not a file, directory or symlink")
    return members


def _strip_top(members: list[tarfile.TarInfo]) -> str | None:
    """The single top-level directory every member sits under (git archive --prefix), or None."""
    paths = [(PurePosixPath(m.name).parts, m) for m in members]
    paths = [(parts, m) for parts, m in paths if parts]
    tops = {parts[0] for parts, _ in paths}
    if len(tops) != 1:
        return None
    top = tops.pop()
    is_dir = all(m.isdir() for parts, m in paths if len(parts) == 1)
    return top if is_dir and any(len(parts) > 1 for parts, _ in paths) else None


def unpack(artifact: Path, into: Path) -> None:
    with tarfile.open(artifact) as archive:
        members = _safe_members(archive)
        top = _strip_top(members)
        for m in members:
            parts = PurePosixPath(m.name).parts
            if top is not None:
                parts = parts[1:]
            if not parts or parts == (".",):
                continue
            target = into.joinpath(*parts)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif m.issym():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(m.linkname, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(m)
                assert source is not None
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                # the archive's mode, minus setuid/setgid/sticky and write for group and others
                os.chmod(target, m.mode & 0o755)


def _give_to(tree: Path, uid: int, gid: int) -> None:
    for path in owners.entries(tree):
        os.lchown(path, uid, gid)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o755)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReleaseProvider:
    name = "release"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.root = ctx.site.root
        release_dir = ctx.site.updates.release_dir
        assert release_dir is not None  # filled in by the config
        self.dir = release_dir

    def discover(self, failed: Remembered) -> Offer:
        offer = Offer(self.name)
        found = artifacts(self.dir)
        if not found:
            return offer
        running = current(self.root)
        for version, path in reversed(found):  # newest first
            if running is not None and debian_compare(version, running) <= 0:
                break
            change = Change(self.name, "release", self.ctx.site.id, running, version, str(path))
            why = failed.blocked(change)
            if why:
                offer.notes.append(why)
                continue
            offer.changes = [change]
            break
        return offer

    def prepare(self, offer: Offer) -> None:
        for change in offer.changes:
            assert change.source is not None
            try:
                with tarfile.open(change.source) as archive:
                    _safe_members(archive)
            except (OSError, tarfile.TarError) as e:
                raise ProviderError(f"release {change.to_version}: unreadable archive {change.source}: {e}") from None

    def apply(self, offer: Offer) -> list[Change]:
        for change in offer.changes:
            self._install(change)
        return offer.changes

    def _install(self, change: Change) -> None:
        assert change.source is not None
        artifact = Path(change.source)
        live = os.stat(self.root)
        owner = owners.owner_of(self.root)
        if owner is None:
            raise ProviderError(f"release {change.to_version}: the owner of {self.root} is no user of this host")
        staging = fsops.fresh_dir(fsops.staging_path(self.root, "release", self.ctx.run_id))
        try:
            try:
                unpack(artifact, staging)
            except (OSError, tarfile.TarError) as e:
                raise ProviderError(f"release {change.to_version}: unpacking {artifact.name} failed: {e}") from None
            for keep in self.ctx.site.updates.release_preserve:
                self._preserve(keep, staging)
            record = {"version": change.to_version, "artifact": artifact.name, "sha256": _sha256(artifact),
                      "installed": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip
            (staging / RECORD).write_text(json.dumps(record, indent=1) + "\n")
            _give_to(staging, *owner)
            # the root itself keeps its owner, group and mode (e.g. group www-data, 0750)
            os.chown(staging, live.st_uid, live.st_gid)
            os.chmod(staging, stat.S_IMODE(live.st_mode))
            fsops.exchange(staging, self.root)  # live now runs the new release; staging holds the old one
        finally:
            fsops.remove_tree(staging)

    def _preserve(self, relative: str, staging: Path) -> None:
        source = self.root / relative
        target = staging / relative
        if not (source.exists() or source.is_symlink()):
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)

    def rollback(self, offer: Offer) -> str | None:
        fsops.clear_leftovers(self.root, "release")  # a run killed while unpacking or right after its exchange
        return None  # the pre-update snapshot holds the previous release and its record

    def finish(self, offer: Offer) -> None:
        fsops.clear_leftovers(self.root, "release")  # the old tree, if the run died before removing it

    def close(self) -> None:
        pass
