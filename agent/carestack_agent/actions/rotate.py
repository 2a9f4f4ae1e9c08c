"""rotate-passwords: give the repositories a client's new restic password, then drop the old keys.

A client's password file keys every repository of its sites, so the file must never name a password
the repositories do not know. The converge hands the agent the password files as they should be
(JSON on stdin, path -> content, before it writes them) and, for each file whose content changes:

1. writes the new password beside the file (`<file>.new`, root only): the rotation is under way;
2. adds it to each of the client's repositories as a second key (`restic key add`, authenticated by
   the current file), unless the new password already opens that repository;
3. replaces the password file with the new one (atomically: no job ever reads half a file);
4. removes every other key from each repository (`restic key remove`), so the old password opens
   nothing any more, and then the `.new` file.

Each site's steps run under the site's lock (waiting for a running job), journaled as that site's
`rekey` job. Killed anywhere, the next run finishes: before step 3 the old file still opens every
repository and step 2 is repeated where it is missing; after it, `.new` still exists and step 4 runs
again. A repository not initialized yet is skipped (its `init` uses the new file). A site this host
only drills (the standby) gets the new file but keeps its keys: the server running the site changes
them. Passwords are read from files and stdin only, never from argv, and never printed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import exitcodes, restic_commands
from ..config import Config, Site
from ..jobs import Context, JobFailed, JobResult, run_job
from ..restic import Restic, ResticError
from .init import repository_exists

REKEY_TIMEOUT = 600
PENDING_SUFFIX = ".new"


def pending_file(password_file: Path) -> Path:
    return password_file.with_name(password_file.name + PENDING_SUFFIX)


def write_private(path: Path, content: str) -> bool:
    """Write `content` to `path` (root only from the first byte, then an atomic rename); False if it
    already held exactly that with mode 0600."""
    data = content.encode()
    try:
        if path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o600:
            return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _opens(ctx: Context, password_file: Path) -> bool:
    """Whether `password_file` opens the site's repository."""
    other = Restic(ctx.config.agent, dataclasses.replace(ctx.site, password_file=password_file))
    try:
        ctx.retry(lambda: other.run(restic_commands.cat_config(), ctx.deadline, what="cat config"), "cat config")
    except ResticError as e:
        if e.kind == "auth":
            return False
        raise
    return True


def add_key(ctx: Context, new_password_file: Path) -> str:
    """Add the new password as a key, authenticated by the current file. Asked first: a repository the
    new password already opens (an earlier, interrupted run added it) needs nothing, even where the old
    password no longer opens it."""
    try:
        if _opens(ctx, new_password_file):
            ctx.figures["key_added"] = False
            return "the new password already opens the repository"
    except ResticError as e:
        if e.kind == "not_initialized":
            return "no repository yet: its init uses the new password"
        raise
    args = restic_commands.key_add(new_password_file)
    ctx.retry(lambda: ctx.restic.run(args, ctx.deadline, what="key add"), "key add")
    ctx.figures["key_added"] = True
    return "the new password was added as a key"


def remove_old_keys(ctx: Context) -> str:
    """With the (new) configured password: remove every key but the one it opened with."""
    if not repository_exists(ctx):
        return "no repository yet"
    listed = ctx.retry(lambda: ctx.restic.run(restic_commands.key_list(), ctx.deadline, what="key list"), "key list")
    keys = _keys(listed.documents)
    current = [k for k in keys if k.get("current")]
    if len(current) != 1:
        raise JobFailed(f"restic key list named {len(current)} current keys; no key was removed")
    old = [str(k["id"]) for k in keys if not k.get("current")]
    for key_id in old:
        ctx.retry(_remover(ctx, key_id), "key remove")
    ctx.figures["keys_removed"] = len(old)
    return f"{len(old)} old key(s) removed" if old else "no old key left"


def _remover(ctx: Context, key_id: str) -> Any:
    return lambda: ctx.restic.run(restic_commands.key_remove(key_id), ctx.deadline, what="key remove")


def _keys(documents: list[Any]) -> list[dict[str, Any]]:
    """`restic --json key list` prints one JSON array of {id, current, ...}."""
    for document in documents:
        if isinstance(document, list) and all(isinstance(k, dict) and "id" in k for k in document):
            return document
    raise JobFailed("restic key list printed no key list; no key was removed")


def _run(config: Config, site: Site, job: str, body: Any) -> JobResult:
    result = run_job(config, site.id, job, body, timeout=REKEY_TIMEOUT, wait=True, push=False)
    if not result.ok:
        raise RotationFailed(f"{site.id}: {job}: {result.message}", result.exit_code)
    return result


class RotationFailed(Exception):
    def __init__(self, message: str, exit_code: int = exitcodes.FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def rotate(config: Config, wanted: Mapping[str, str]) -> list[str]:
    """Rotate every password file of `wanted` (path -> its new content) this host's sites use; what was
    done, one line per step that changed something. Raises RotationFailed naming the site and step."""
    done: list[str] = []
    for name, content in sorted(wanted.items()):
        path = Path(name)
        pending = pending_file(path)
        # Only where a site runs are its keys changed: a standby that merely drills a site reads its
        # repository with the same file, which it replaces, but its converge may come first and must not
        # take the old key away from the server that still runs the site's jobs with it.
        sites = [s for s in config.sites.values() if s.password_file == path and s.drill is None]
        if not path.exists():  # the first converge writes it; nothing uses it yet
            pending.unlink(missing_ok=True)
            continue
        changes = path.read_bytes() != content.encode()
        if not changes and not pending.exists():
            continue
        if changes:
            write_private(pending, content)
            for site in sites:
                added = _run(config, site, "rekey", functools.partial(add_key, new_password_file=pending))
                if added.figures.get("key_added"):
                    done.append(f"{site.id}: new restic password added as a key")
            write_private(path, content)
            done.append(f"{path}: replaced")
        for site in sites:
            removed = _run(config, site, "rekey", remove_old_keys)
            if removed.figures.get("keys_removed"):
                done.append(f"{site.id}: {removed.figures['keys_removed']} old restic key(s) removed")
        pending.unlink(missing_ok=True)
    return done


def read_wanted(text: str) -> dict[str, str]:
    """stdin: a JSON object of password file path -> its content; a named error otherwise."""
    try:
        wanted = json.loads(text)
    except json.JSONDecodeError as e:
        raise RotationFailed(f"stdin: not JSON ({e.msg} at line {e.lineno})", exitcodes.USAGE) from None
    if not isinstance(wanted, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in wanted.items()):
        raise RotationFailed("stdin: expected a JSON object of password file path -> content", exitcodes.USAGE)
    bad = sorted(k for k in wanted if not Path(k).is_absolute())
    if bad:
        raise RotationFailed(f"stdin: password file paths must be absolute: {', '.join(bad)}", exitcodes.USAGE)
    return wanted
