"""Every restic command line the agent runs, built in one place (pure functions, no restic needed).

Each function returns restic's arguments after the global ones: the runner
(`restic.Restic`) prepends the binary and `--json`, and passes the repository,
password file and S3 keys through the environment, never argv. Actions decide
what to run and with which values; only this module knows restic's flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .config import KEEP_KEYS, Retention

# A backup's snapshot is written tagged INCOMPLETE; only once everything in it
# succeeded (files, every dump, restic's exit) is the tag swapped for COMPLETE.
# Restores and retention look at complete snapshots only (see snapshots.py).
COMPLETE = "complete"
INCOMPLETE = "incomplete"


def site_tag(site_id: str) -> str:
    """The tag every snapshot of a site carries; forget, snapshots and restores select by it."""
    return f"site:{site_id}"


def backup(
    *,
    host: str,
    site_id: str,
    reason: str,
    paths: Sequence[Path],
    database: str | None = None,
    owner_tag: str | None = None,
    exclude: Iterable[str] = (),
) -> list[str]:
    """A backup of the paths, tagged with the site, the reason, the database and the files' owner; incomplete
    until `mark_complete`."""
    args = ["backup", "--host", host, "--tag", site_tag(site_id), "--tag", f"reason:{reason}", "--tag", INCOMPLETE]
    if database is not None:
        args += ["--tag", f"db:{database}"]
    if owner_tag is not None:
        args += ["--tag", owner_tag]
    for pattern in exclude:
        args += ["--exclude", pattern]
    return args + [str(p) for p in paths]


def keep_flags(retention: Retention) -> list[str]:
    """restic's --keep-* flags for the plan's retention; kinds kept 0 times are left out."""
    flags = []
    for key in KEEP_KEYS:
        n = getattr(retention, key)
        if n:
            flags += ["--" + key.replace("_", "-"), str(n)]
    return flags


def forget_by_retention(site_id: str, retention: Retention) -> list[str]:
    """Forget the site's complete snapshots the retention does not keep (all hosts and paths in one group).

    Only complete snapshots are counted (and forgotten) here: an incomplete one
    never takes the place of a good one; `forget_incomplete` removes those.
    """
    return ["forget", "--tag", f"{site_tag(site_id)},{COMPLETE}", "--group-by", "", *keep_flags(retention)]


def forget_incomplete(site_id: str) -> list[str]:
    """Forget every incomplete snapshot of the site (keep-tag with a tag they lack: none is kept)."""
    return ["forget", "--tag", f"{site_tag(site_id)},{INCOMPLETE}", "--group-by", "", "--keep-tag", COMPLETE]


def mark_complete(snapshot_id: str) -> list[str]:
    """Swap the snapshot's incomplete tag for complete (restic writes it anew under another id)."""
    return ["tag", "--remove", INCOMPLETE, "--add", COMPLETE, snapshot_id]


def mark(snapshot_ids: Sequence[str], *, complete: bool) -> list[str]:
    """Tag snapshots made before the complete tag existed as complete or incomplete (new ids)."""
    return ["tag", "--add", COMPLETE if complete else INCOMPLETE, *snapshot_ids]


def ls(snapshot_id: str, dirs: Sequence[Path]) -> list[str]:
    """The nodes of a snapshot at the given paths and directly below them (JSON lines)."""
    return ["ls", snapshot_id, *[str(d) for d in dirs]]


def ls_newest_complete(site_id: str, dirs: Sequence[Path]) -> list[str]:
    """The site's newest complete snapshot (its first JSON line) and its nodes at `dirs`, in one repository open."""
    return ["ls", "--tag", f"{site_tag(site_id)},{COMPLETE}", "latest", *[str(d) for d in dirs]]


def forget_snapshot(snapshot_id: str) -> list[str]:
    """Forget one snapshot (a backup whose database dump failed)."""
    return ["forget", snapshot_id]


def prune() -> list[str]:
    return ["prune"]


def check(subset: int, subsets: int) -> list[str]:
    """Check the repository reading data subset `subset` of `subsets` (all data when there is one subset)."""
    if not 1 <= subset <= subsets:
        raise ValueError(f"data subset {subset}/{subsets}: must be within 1..{subsets}")
    return ["check", "--read-data"] if subsets == 1 else ["check", f"--read-data-subset={subset}/{subsets}"]


def snapshots(site_id: str) -> list[str]:
    """The site's snapshots (JSON list)."""
    return ["snapshots", "--tag", site_tag(site_id)]


def restore(snapshot_id: str, target: Path, *, include: Path | None = None, exclude: Iterable[Path] = ()) -> list[str]:
    """Restore a snapshot under `target` (restic's layout: absolute paths below it)."""
    args = ["restore", snapshot_id, "--target", str(target)]
    if include is not None:
        args += ["--include", str(include)]
    for path in exclude:
        args += ["--exclude", str(path)]
    return args


def dump(snapshot_id: str, path: str) -> list[str]:
    """One file of a snapshot on stdout (the database dump of a restore)."""
    return ["dump", snapshot_id, path]


def dump_tree(snapshot_id: str, path: str) -> list[str]:
    """A directory of a snapshot as a tar stream on stdout (members named by their path in the snapshot)."""
    return ["dump", "--archive", "tar", snapshot_id, path]


def init() -> list[str]:
    return ["init"]


def cat_config() -> list[str]:
    """Reads the repository's config: fails with "not initialized" where there is no repository."""
    return ["cat", "config"]


def unlock() -> list[str]:
    """Removes stale locks only (same host, dead PID); never `--remove-all`, which breaks live jobs elsewhere."""
    return ["unlock"]


def key_add(new_password_file: Path) -> list[str]:
    """Adds a key opened by the password in that file (the new password never appears in argv)."""
    return ["key", "add", "--new-password-file", str(new_password_file)]


def key_list() -> list[str]:
    """With --json: one array of {id, current, userName, hostName, created}."""
    return ["key", "list"]


def key_remove(key_id: str) -> list[str]:
    return ["key", "remove", key_id]
