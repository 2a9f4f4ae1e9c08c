"""Each finished job's result record, left in the client's bucket as evidence that outlives the server.

Shape and key are the controller's contract (`infra/evidence_record.py`, built here again with the
standard library: the agent never imports controller code):
`evidence/<site>/<job>/<YYYY>/<MM>/<ended>-<run_id>.json` with schema, client, site, job, run_id, host,
started, ended, result, exit_code, message and figures. Attachments (the scan's accepted baseline) go
beside them as `evidence/<site>/<name>/<YYYY>/<MM>/<ended>-<run_id>.json.gz`.

Nothing is sent straight away: the record is first written to the site's outbox
(<state_dir>/evidence/outbox/<site>/, 0700, files 0600, fsynced, renamed into place), then the outbox
is sent oldest first and each file removed once S3 has it. A crash or an S3 outage leaves the files
there for the next job of the site, which sends them before its own, in order. A key is unique per
run and a PUT of the same key is idempotent, so a file sent but not yet removed when the agent died
is sent again without making a second record. A failure never fails the job: the caller journals it.
Secrets: records are built from messages and figures that were made without them; the site's S3 keys
and restic password are replaced by *** all the same, should one ever slip into a message.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import Config, Site
from .s3 import S3Client, S3Error, bucket_of
from .secrets import SecretError, read_env_file

SCHEMA = 1
PREFIX = "evidence"
OUTBOX = Path("evidence") / "outbox"
SUFFIX = ".json"
# One evidence pass may take this long at most (per request: timeout x attempts), so a dead S3 delays
# the end of a job by seconds, never by the job's own deadline.
REQUEST_TIMEOUT = 5.0
ATTEMPTS = 2
BUDGET_SECONDS = 30.0
TOP_FINDINGS = 10


@dataclass(frozen=True)
class Sent:
    sent: int  # outbox entries delivered by this pass
    pending: int  # entries left for the next job
    error: str | None = None  # why the pass stopped early


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def key_of(site: str, name: str, ended: datetime, run_id: str, suffix: str = SUFFIX) -> str:
    ended = ended.astimezone(UTC)
    return f"{PREFIX}/{site}/{name}/{ended:%Y}/{ended:%m}/{stamp(ended)}-{run_id}{suffix}"


def client_of(site: Site) -> str:
    """The client the site belongs to: the plan's id (rendered by the controller), else the bucket's name."""
    if site.client:
        return site.client
    repo = site.repository.split("://", 1)[-1]
    parts = repo.split("/")
    return parts[1] if len(parts) > 1 and parts[1] else "unknown"


def record(
    config: Config, site: Site, job: str, run_id: str, started: datetime, ended: datetime, *,
    ok: bool, exit_code: int, message: str, figures: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    return {
        "schema": SCHEMA,
        "client": client_of(site),
        "site": site.id,
        "job": job,
        "run_id": run_id,
        "host": config.agent.host,
        "started": iso(started),
        "ended": iso(max(ended, started)),
        "result": "ok" if ok else "failed",
        "exit_code": exit_code,
        "message": message,
        "figures": figures,
    }


def scan_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """A scan's figures for the bucket: counts per severity and the top findings' plain lines; never a file's
    contents or a finding's details (the journal and last.json on the server have those)."""
    out = {k: v for k, v in figures.items() if k != "findings"}
    findings = figures.get("findings")
    if isinstance(findings, list):
        out["top_findings"] = [
            f"{f.get('severity')}: {f.get('message')}" for f in findings[:TOP_FINDINGS] if isinstance(f, dict)
        ]
    return out


def outbox_dir(config: Config, site: Site) -> Path:
    return config.agent.state_dir / OUTBOX / site.id


def _secrets_of(site: Site) -> list[str]:
    values: list[str] = []
    if site.credentials_file is not None:
        with contextlib.suppress(SecretError):
            values += [v for k, v in read_env_file(site.credentials_file).items() if k != "AWS_DEFAULT_REGION"]
    with contextlib.suppress(OSError, UnicodeDecodeError):
        values.append(site.password_file.read_text(encoding="utf-8").strip())
    return [v for v in values if len(v) >= 4]


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {_redact(str(k), secrets): _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, secrets) for v in value]
    return value


def enqueue(config: Config, site: Site, key: str, body: bytes, content_type: str = "application/json") -> Path:
    """Keep one object in the site's outbox until S3 has it (crash-safe: fsynced, then renamed into place)."""
    folder = outbox_dir(config, site)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    # Names sort in the order they were queued: nanoseconds, then the key (unique per run and name).
    name = f"{time.time_ns():020d}-{key.replace('/', '_')}"
    entry = json.dumps({"key": key, "content_type": content_type, "body": base64.b64encode(body).decode()})
    tmp = folder / f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(entry)
            f.flush()
            os.fsync(f.fileno())
        final = folder / name
        os.replace(tmp, final)
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


def pending(config: Config, site: Site) -> list[Path]:
    folder = outbox_dir(config, site)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def send(config: Config, site: Site, *, budget: float = BUDGET_SECONDS) -> Sent:
    """Send the site's outbox, oldest first; stop at the first failure (order is kept) or when out of time."""
    entries = pending(config, site)
    if not entries:
        return Sent(0, 0)
    if site.credentials_file is None:
        return Sent(0, len(entries), "the site has no S3 credentials file (its repository is not on S3)")
    try:
        client = S3Client(bucket_of(site.repository, read_env_file(site.credentials_file)), REQUEST_TIMEOUT, ATTEMPTS)
    except (SecretError, S3Error, KeyError) as e:
        reason = f"{site.credentials_file}: missing {e}" if isinstance(e, KeyError) else str(e)
        return Sent(0, len(entries), reason)
    until = time.monotonic() + budget
    sent, aside = 0, list[str]()
    for n, path in enumerate(entries):
        if time.monotonic() > until:
            return Sent(sent, len(entries) - n, _why(f"out of time after {budget:.0f} s", aside))
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            key, body = str(entry["key"]), base64.b64decode(entry["body"])
            content_type = str(entry.get("content_type") or "application/json")
        except (OSError, ValueError, KeyError, TypeError) as e:
            # An entry no one can send would block the outbox for good: set it aside for a human.
            aside.append(_set_aside(path, "unreadable", type(e).__name__))
            continue
        try:
            client.put(key, body, content_type)
        except S3Error as e:
            if e.status == 400:  # S3 refuses this very object (not the bucket or the keys): never sendable
                aside.append(_set_aside(path, "rejected", str(e)))
                continue
            return Sent(sent, len(entries) - n, _why(str(e), aside))
        path.unlink(missing_ok=True)
        sent += 1
    return Sent(sent, 0, _why(None, aside))


def _set_aside(path: Path, why: str, detail: str) -> str:
    with contextlib.suppress(OSError):
        path.rename(path.with_name(f".{why}-{path.name}"))
    return f"{path.name} {why} ({detail}), set aside"


def _why(error: str | None, aside: list[str]) -> str | None:
    parts = ([error] if error else []) + aside
    return "; ".join(parts) or None


def leave(
    config: Config, site: Site, job: str, run_id: str, started: datetime, ended: datetime, *,
    ok: bool, exit_code: int, message: str, figures: dict[str, Any], attachments: dict[str, bytes] | None = None,
) -> Sent:  # fmt: skip
    """Queue this job's record (and attachments), then send the site's outbox."""
    secrets = _secrets_of(site)
    shown = scan_figures(figures) if job == "scan" else figures
    data = record(config, site, job, run_id, started, ended, ok=ok, exit_code=exit_code, message=message,
                  figures=shown)  # fmt: skip
    data = _redact(json.loads(json.dumps(data, default=str)), secrets)
    for name, blob in (attachments or {}).items():
        enqueue(config, site, key_of(site.id, name, ended, run_id, ".json.gz"), blob, "application/gzip")
    body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    enqueue(config, site, key_of(site.id, job, ended, run_id), body)
    return send(config, site)


def compressed_json(data: Any) -> bytes:
    return gzip.compress(json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), mtime=0)
