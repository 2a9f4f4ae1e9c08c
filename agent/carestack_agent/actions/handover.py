"""handover SITE --out DIR: a site's hand-over files, from its newest complete snapshot (offboarding).

Written into DIR (made root-only): `<site>-files.tar.gz`, the site's root as one
top directory `<site>/` (the layout any host, and `carestack import`, takes);
`<site>-database.sql.gz`, the dump exactly as the backup took it; and
`<site>-manifest.json`: the snapshot's id and time, each file's bytes and sha256.
Both are streamed out of the repository (`restic dump --archive tar` re-packed
member by member, `restic dump` of the dump file): no staged copy of the site.

Each file is written as `.part` and renamed when whole, the manifest last: a
manifest means a whole hand-over. A failed or killed run leaves no manifest, and
the next run starts over (its `.part` files are replaced).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import restic_commands, snapshots
from ..config import Config
from ..jobs import Context, JobFailed, JobResult, Settle, human_bytes, run_job
from ..proc import Watchdog
from . import restore

COMPRESS_LEVEL = 6  # gzip's default: the archive leaves over the network once; level 9 costs 3x the CPU for ~2%


@dataclass(frozen=True)
class HandoverOptions:
    out: Path
    snapshot: str | None = None  # default: the newest complete snapshot


class _Hashing:
    """A write-only file that counts and hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _private(path: Path) -> IO[bytes]:
    """A new file only root can read (it holds the site's wp-config.php and its data)."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def names(site_id: str) -> dict[str, str]:
    """The hand-over's file names for a site (the controller fetches exactly these)."""
    return {
        "files": f"{site_id}-files.tar.gz",
        "database": f"{site_id}-database.sql.gz",
        "manifest": f"{site_id}-manifest.json",
    }


def _renamed(member: tarfile.TarInfo, inside: str, top: str) -> tarfile.TarInfo | None:
    """restic's member `srv/www/<site>/x` as `<site>/x`; None for anything outside the site's root."""
    name = member.name.rstrip("/")
    if name != inside and not name.startswith(inside + "/"):
        return None
    member.name = top + name[len(inside) :]
    if member.islnk():  # restic's hard links name their target by its snapshot path too
        if not member.linkname.startswith(inside + "/"):
            return None
        member.linkname = top + member.linkname[len(inside) :]
    return member


def _raise_unless_dumped(ctx: Context, code: int | None, killed: bool, err: bytes, path: Path, part: str) -> None:
    """A `restic dump` that did not exit 0: killed at the deadline, or its last error line (secrets redacted)."""
    if code == 0:
        return
    if killed:
        raise JobFailed(f"hand-over of the {part} killed by the watchdog at the job's deadline")
    detail = err.decode("utf-8", "replace").strip().splitlines()
    if not detail and code is not None and code < 0:
        detail = [f"killed by {signal.Signals(-code).name}"]
    raise JobFailed(f"restic dump of {path} failed: {ctx.restic.redact(detail[-1]) if detail else 'no detail'}")


def _write_files(ctx: Context, snap: str, root: Path, part: Path) -> dict[str, Any]:
    inside, top = str(root).strip("/"), ctx.site.id
    producer = ctx.restic.spawn(restic_commands.dump_tree(snap, str(root)), json_flag=False)
    assert producer.stdout is not None
    members = 0
    with Watchdog(ctx.deadline, [producer]) as dog, _private(part) as raw:
        sink = _Hashing(raw)
        try:
            with (
                gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as packed,
                tarfile.open(fileobj=packed, mode="w|", format=tarfile.PAX_FORMAT) as out,
            ):
                head = tarfile.TarInfo(top)
                head.type, head.mode = tarfile.DIRTYPE, 0o750
                out.addfile(head)
                with tarfile.open(fileobj=producer.stdout, mode="r|") as given:
                    for member in given:
                        renamed = _renamed(member, inside, top)
                        if renamed is None:
                            continue
                        out.addfile(renamed, given.extractfile(member) if member.isreg() else None)
                        members += 1
                # tarfile stops at the first end-of-archive block; restic may still be writing the rest
                # of its trailer, and closing the pipe under it kills restic with SIGPIPE.
                while producer.stdout.read(1 << 16):
                    pass
        except tarfile.TarError as e:
            producer.kill()
            raise JobFailed(f"restic dump of {root}: not a tar stream ({e})") from None
        finally:
            producer.stdout.close()
            _, err = producer.communicate()
    _raise_unless_dumped(ctx, producer.returncode, dog.fired, err, root, "files")
    return {"bytes": sink.bytes, "sha256": sink.sha256.hexdigest(), "members": members}


def _write_database(ctx: Context, snap: str, dump_file: Path, part: Path) -> dict[str, Any]:
    producer = ctx.restic.spawn(restic_commands.dump(snap, str(dump_file)), json_flag=False)
    assert producer.stdout is not None
    with Watchdog(ctx.deadline, [producer]) as dog, _private(part) as raw:
        sink = _Hashing(raw)
        with gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as packed:
            while chunk := producer.stdout.read(1 << 20):
                packed.write(chunk)
        producer.stdout.close()
        _, err = producer.communicate()
    _raise_unless_dumped(ctx, producer.returncode, dog.fired, err, dump_file, "database")
    return {"bytes": sink.bytes, "sha256": sink.sha256.hexdigest()}


def _finish(part: Path) -> None:
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, part.with_suffix(""))


def do_handover(ctx: Context, opts: HandoverOptions) -> str:
    ctx.restic.env()
    ctx.prepare()
    found = ctx.retry(lambda: ctx.restic.snapshots(ctx.deadline), "snapshots")
    plan = restore.choose_restorable(ctx, found, restore.RestoreOptions(snapshot=opts.snapshot))
    if not snapshots.is_complete(plan.snapshot):
        raise JobFailed(f"snapshot {plan.short} is not marked complete: a hand-over is made from complete ones only")
    site = ctx.site
    opts.out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(opts.out, 0o700)
    called = names(site.id)
    manifest = opts.out / called["manifest"]
    manifest.unlink(missing_ok=True)  # from here until the end, no manifest: no whole hand-over
    written: dict[str, Any] = {}
    files_part = opts.out / (called["files"] + ".part")
    written[called["files"]] = _write_files(ctx, plan.id, site.root, files_part)
    dump_file = plan.parts.dump_file
    if dump_file is not None:
        db_part = opts.out / (called["database"] + ".part")
        written[called["database"]] = _write_database(ctx, plan.id, dump_file, db_part)
        _finish(db_part)
    else:
        (opts.out / called["database"]).unlink(missing_ok=True)
    _finish(files_part)
    record = {
        "site": site.id,
        "domain": site.domain,
        "kind": site.kind,
        "snapshot": plan.id,
        "snapshot_time": plan.snapshot.get("time"),
        "database": plan.parts.database,
        "files": written,
    }
    tmp = manifest.with_suffix(".json.part")
    with _private(tmp) as f:
        f.write((json.dumps(record, indent=2) + "\n").encode())
    _finish(tmp)
    total = sum(entry["bytes"] for entry in written.values())
    ctx.figures.update({"snapshot_id": plan.short, "snapshot_time": plan.snapshot.get("time"), "bytes": total})
    return f"hand-over of snapshot {plan.short} written to {opts.out} ({len(written)} file(s), {human_bytes(total)})"


def handover(
    config: Config, site_id: str, opts: HandoverOptions, *, wait: bool = False, settle: Settle | None = None
) -> JobResult:
    site = config.site(site_id)
    return run_job(
        config,
        site_id,
        "handover",
        lambda ctx: do_handover(ctx, opts),
        timeout=site.jobs.restore_timeout_seconds,
        wait=wait,
        settle=settle,
        push=False,  # no monitor watches a hand-over; the controller reads its result
    )
