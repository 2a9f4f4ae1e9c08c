"""Core integrity: the site's WordPress core files against the reference for the installed version.

Two references, both offline on the server:
- the md5sums file dpkg keeps for Debian's `wordpress` package
  (/var/lib/dpkg/info/wordpress.md5sums, what `dpkg --verify` and `debsums`
  read): signed into the archive the package came from, and the source every
  lab site is copied from; a reference only when the package's version is the
  site's version;
- for other versions (a site imported with WordPress's own release), a
  checksum file `<version>.json` in the scan's `core_checksums` directory, in
  the format of WordPress's core checksums API (`{"checksums": {path: md5}}`),
  which converge copies from the agency's controller.
Without either the check says it has none (info) rather than guessing. Compared:
the top-level files, wp-admin/ and wp-includes/ (wp-content belongs to the site;
plugins and themes are updated on their own).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .base import Baseline, Finding, ScanSite, is_executable

NAME = "core"
DPKG_INFO = Path("/var/lib/dpkg/info")
PACKAGE = "wordpress"
PACKAGE_ROOT = "usr/share/wordpress/"
SITE_OWN = ("wp-config.php",)  # the site's own file where the package has Debian's
CORE_DIRS = ("wp-admin/", "wp-includes/")
VERSION = re.compile(r"""^\$wp_version\s*=\s*['"]([^'"]+)['"]\s*;""", re.M)
MD5 = re.compile(r"^[0-9a-f]{32}$")
# A version as a file name: WordPress's own (6.4.3, 6.5-RC1), never a path.
SAFE_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+~-]{0,39}$")


class CoreReferenceError(ValueError):
    """A core checksum file that cannot serve as a reference; the message names the file and why."""


def wp_version(root: Path) -> str | None:
    try:
        match = VERSION.search((root / "wp-includes/version.php").read_text(errors="replace"))
    except OSError:
        return None
    return match.group(1) if match else None


def _md5sums(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        digest, _, name = line.partition("  ")
        out["/" + name] = digest
    return out


def _in_scope(rel: str) -> bool:
    return rel not in SITE_OWN and ("/" not in rel or rel.startswith(CORE_DIRS))


def reference(
    dpkg_info: Path = DPKG_INFO, package_root: Path = Path("/") / PACKAGE_ROOT
) -> tuple[str | None, dict[str, str]]:
    """The package's WordPress version and its core files' md5 sums by path inside the site root.

    Debian's package links some core files to other packages (getID3, underscore.js): a site copies the
    link's target, so the target's sum from its own package's md5sums is the reference. A link to a file
    no package lists (a generated CA bundle) has no reference and is not compared.
    """
    own = _md5sums(dpkg_info / f"{PACKAGE}.md5sums")
    if not own:
        return None, {}
    sums: dict[str, str] = {}
    elsewhere: dict[str, list[str]] = {}  # a link's target outside the package -> the core paths copied from it
    for dirpath, _, filenames in os.walk(package_root, followlinks=True):
        for name in filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, package_root)
            if not _in_scope(rel):
                continue
            real = os.path.realpath(path)
            if real in own:
                sums[rel] = own[real]
                continue
            elsewhere.setdefault(real, []).append(rel)
    if elsewhere:  # read every package's sums line by line, keeping only the targets (memory: not all of dpkg)
        for other in sorted(dpkg_info.glob("*.md5sums")):
            try:
                with open(other, errors="replace") as f:
                    for line in f:
                        digest, _, name = line.rstrip("\n").partition("  ")
                        for rel in elsewhere.get("/" + name, ()):
                            sums[rel] = digest
            except OSError:
                continue
    return wp_version(package_root), sums


def checksum_file(directory: Path, version: str) -> Path | None:
    """Where `version`'s checksum file would be, or None for a version string that cannot name a file."""
    return directory / f"{version}.json" if SAFE_VERSION.match(version) else None


def checksums_reference(path: Path, version: str) -> dict[str, str]:
    """The in-scope core paths and md5 sums of a checksum file, as WordPress's checksums API gives them:
    `{"checksums": {path: md5}}` for one version, or `{"checksums": {version: {path: md5}}}`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CoreReferenceError(f"{path}: {e.strerror or e}") from None
    except ValueError as e:
        raise CoreReferenceError(f"{path}: not JSON ({e})") from None
    sums = data.get("checksums") if isinstance(data, dict) else None
    if isinstance(sums, dict) and isinstance(sums.get(version), dict):
        sums = sums[version]
    if not isinstance(sums, dict) or not sums:
        raise CoreReferenceError(f'{path}: expected {{"checksums": {{path: md5}}}} for WordPress {version}')
    out: dict[str, str] = {}
    for rel, digest in sums.items():
        if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/"):
            raise CoreReferenceError(f"{path}: {rel!r} is not a path inside the site root")
        if not isinstance(digest, str) or not MD5.match(digest):
            raise CoreReferenceError(f"{path}: checksums[{rel!r}]: expected an md5 sum (32 hex digits), got {digest!r}")
        if _in_scope(rel):
            out[rel] = digest
    return out


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


class CoreIntegrity:
    name = NAME

    def __init__(self, dpkg_info: Path = DPKG_INFO) -> None:
        self.dpkg_info = dpkg_info

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        if site.kind not in ("wordpress", "woocommerce"):
            return []
        installed = wp_version(site.root)
        if installed is None:
            return [Finding(NAME, "medium", "WordPress core: wp-includes/version.php is missing or unreadable")]
        ref_version, sums = reference(self.dpkg_info)
        if ref_version != installed or not sums:
            found = checksum_file(site.core_checksums, installed)
            if found is None or not found.is_file():
                have = f"the {PACKAGE} package has {ref_version}" if ref_version else f"no {PACKAGE} package installed"
                where = found or site.core_checksums
                return [Finding(NAME, "info", f"WordPress {installed}: no offline core reference ({have}, "
                                              f"no {where}); not compared")]  # fmt: skip
            try:
                sums = checksums_reference(found, installed)
            except CoreReferenceError as e:
                return [Finding(NAME, "medium", f"WordPress {installed}: the core reference is unusable: {e}")]
        out: list[Finding] = []
        for rel, digest in sorted(sums.items()):
            path = site.root / rel
            if rel not in site.files:
                out.append(Finding(NAME, "medium", f"WordPress core file missing: {rel}", rel))
                continue
            try:
                actual = md5_of(path)
            except OSError as e:
                out.append(Finding(NAME, "medium", f"WordPress core file unreadable: {rel} ({e.strerror})", rel))
                continue
            if actual != digest:
                out.append(Finding(NAME, "critical", f"WordPress core file modified: {rel}", rel))
        for rel in sorted(site.files):
            if rel.startswith(CORE_DIRS) and rel not in sums and is_executable(rel):
                out.append(Finding(NAME, "high", f"file in WordPress core that the release does not have: {rel}", rel))
        return out
