"""What every scan check shares: a finding, the site as the checks see it, the check contract.

A check is a plug-in: a name and `run(site, baseline) -> findings`. It reads
the site (files, database, host) and the baseline taken when the site was known
good, and returns findings; it never changes anything. A check that cannot run
(no database client, no yara) raises `CheckError`: the scan reports that as a
failure of the scan, never as "nothing found".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

SEVERITIES = ("critical", "high", "medium", "info")  # most severe first
ALARMING = ("critical", "high")  # these push the scan's monitor down

# Files a web server runs or obeys: ranked first among changed files, forbidden under uploads.
EXECUTABLE_SUFFIXES = (".php", ".phtml", ".phar", ".php3", ".php4", ".php5", ".php7", ".pht", ".phps", ".cgi", ".pl")
SERVER_CONFIG_NAMES = (".htaccess", ".user.ini", "php.ini")
CODE_DIRS = ("wp-content/themes/", "wp-content/plugins/", "wp-content/mu-plugins/")


class CheckError(Exception):
    """A check could not look (a tool is missing, the database does not answer); the message says which."""


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str  # one of SEVERITIES
    message: str  # one plain-language line for the agency
    path: str | None = None  # relative to the site root, when the finding is about a file
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def rank(findings: list[Finding]) -> list[Finding]:
    """Most severe first; within a severity, executable files first, then by path."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), not is_executable(f.path or ""), f.path or ""))


def is_executable(relative: str) -> bool:
    """PHP and the files that steer PHP or the web server, and JavaScript inside themes and plugins."""
    name = relative.rsplit("/", 1)[-1].lower()
    if name in SERVER_CONFIG_NAMES or name.endswith(EXECUTABLE_SUFFIXES):
        return True
    return name.endswith(".js") and any(relative.startswith(d) for d in CODE_DIRS)


@dataclass(frozen=True)
class DatabaseTarget:
    name: str
    socket: Path
    table_prefix: str


@dataclass(frozen=True)
class ScanSite:
    """The site as the checks see it."""

    id: str
    domain: str
    root: Path
    kind: str
    upload_dirs: tuple[str, ...]  # relative to the root
    database: DatabaseTarget | None
    mariadb: Path  # the client binary
    yara: Path
    rules_dir: Path
    feed: str | None  # the vulnerability feed: a file path or an http(s) URL
    core_checksums: Path  # WordPress core checksum files, <version>.json (core.py)
    other_roots: tuple[Path, ...]  # the other sites' roots on this host (their owners must not own our files)
    files: dict[str, dict[str, Any]]  # the current inventory (files.inventory), walked once per scan
    nice: int = 10
    cache_dir: Path | None = None  # where checks may keep what a rescan can reuse (root-only)
    regenerated: tuple[str, ...] = ()  # directories (relative, ending in /) the site rebuilds itself: caches


@dataclass
class Baseline:
    """The known-good state: every file, and the database facts the checks compare with."""

    taken_at: str
    files: dict[str, dict[str, Any]]  # relative path -> {size, mode, uid, gid, sha256, mtime_ns, ctime_ns, ino}
    database: dict[str, Any] = field(default_factory=dict)  # admins, siteurl, home, cron_hooks

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "taken_at": self.taken_at, "files": self.files, "database": self.database}

    @classmethod
    def from_json(cls, data: Any) -> Baseline:
        if not isinstance(data, dict) or data.get("version") != 1 or not isinstance(data.get("files"), dict):
            raise ValueError("not a scan baseline (version 1)")
        return cls(str(data.get("taken_at", "")), data["files"], dict(data.get("database") or {}))


class Check(Protocol):
    name: str

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]: ...


TABLE_PREFIX = re.compile(r"""^\s*\$table_prefix\s*=\s*['"]([A-Za-z0-9_]+)['"]\s*;""", re.M)


def table_prefix(root: Path) -> str:
    """The WordPress table prefix from wp-config.php (WordPress's default when it says nothing readable)."""
    try:
        match = TABLE_PREFIX.search((root / "wp-config.php").read_text(errors="replace"))
    except OSError:
        return "wp_"
    return match.group(1) if match else "wp_"
