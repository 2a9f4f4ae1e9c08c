"""What a snapshot holds and whether it counts: read from restic's JSON (tags, paths), pure.

A backup writes its snapshot tagged `incomplete` and swaps that tag for
`complete` only after everything in it succeeded (the files, the database
dump, restic's exit). Restores (and so rollbacks, the failover restore and
drills) pick complete snapshots only; retention counts complete snapshots only.

Snapshots made before the tags existed carry neither tag ("legacy"). They
count as complete when they hold every part they name: the site's paths and,
with a `db:` tag, the dump file (a pre-tag backup whose dump failed has no
dump file). The next backup tags them accordingly, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .restic_commands import COMPLETE, INCOMPLETE

Snapshot = dict[str, Any]  # one object of `restic snapshots --json`


def tags(snapshot: Snapshot) -> list[str]:
    return [str(t) for t in snapshot.get("tags") or []]


def tag_value(snapshot: Snapshot, key: str) -> str | None:
    for tag in tags(snapshot):
        if tag.startswith(key + ":"):
            return tag[len(key) + 1 :]
    return None


def is_complete(snapshot: Snapshot) -> bool:
    return COMPLETE in tags(snapshot) and INCOMPLETE not in tags(snapshot)


def is_incomplete(snapshot: Snapshot) -> bool:
    return INCOMPLETE in tags(snapshot)


def is_legacy(snapshot: Snapshot) -> bool:
    """Made before the complete tag existed: it counts only if it holds every part (see `missing_parts`)."""
    return COMPLETE not in tags(snapshot) and INCOMPLETE not in tags(snapshot)


def short_id(snapshot: Snapshot) -> str:
    return str(snapshot.get("short_id") or str(snapshot.get("id", ""))[:8])


@dataclass(frozen=True)
class Parts:
    """What a snapshot says it holds: the site's paths and, with a database, the dump file."""

    paths: list[Path]
    dump_dir: Path | None
    database: str | None

    @property
    def dump_file(self) -> Path | None:
        if self.dump_dir is None or self.database is None:
            return None
        return self.dump_dir / f"{self.database}.sql"


def parts_of(snapshot: Snapshot) -> Parts:
    """The site's paths and the dump's mount directory (`<state_dir>/dump/<site>`), as recorded."""
    site, database = tag_value(snapshot, "site") or "", tag_value(snapshot, "db")
    paths: list[Path] = []
    dump: Path | None = None
    for p in snapshot.get("paths", []):
        path = Path(p)
        if dump is None and database is not None and path.parent.name == "dump" and path.name == site:
            dump = path
        else:
            paths.append(path)
    return Parts(paths, dump, database)


def listed_paths(ls_output: list[Any]) -> set[Path]:
    """The paths of the nodes `restic ls --json` printed (its first document is the snapshot)."""
    return {Path(d["path"]) for d in ls_output if isinstance(d, dict) and d.get("struct_type") == "node"}


def missing_parts(parts: Parts, listed: set[Path], *, files: bool = True, database: bool = True) -> list[str]:
    """The parts a restore needs that the snapshot's listing lacks, each named."""
    missing = [f"files {p}" for p in parts.paths if files and p not in listed]
    dump = parts.dump_file
    if database and parts.database is not None and (dump is None or dump not in listed):
        missing.append(f"the database dump {dump or parts.database + '.sql'}")
    return missing


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    return value if value.tzinfo else value.astimezone()


def newest_first(snapshots: list[Snapshot]) -> list[Snapshot]:
    return sorted(snapshots, key=lambda s: parse_time(str(s["time"])), reverse=True)


def find_rewritten(snapshots: list[Snapshot], old_id: str) -> Snapshot | None:
    """The snapshot `restic tag` wrote in place of `old_id` (it records the first id as `original`)."""
    for s in snapshots:
        named = str(s.get("original") or "").startswith(old_id) or str(s.get("id", "")).startswith(old_id)
        if named and not is_incomplete(s):
            return s
    return None
