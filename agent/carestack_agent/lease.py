"""Fencing: a site's jobs run only on the server that holds the site, never on two at once.

During a failover the controller writes `lease/<site>.json` into the client's
bucket, naming the server that now holds the site (the standby). Before every
job the agent reads it: held by another server, the job is refused with the
reason. Without a lease (the normal case) the site belongs to the server its
config is on. Site locks are per server, and one server's `forget` could drop
a snapshot the other needs, so a lease S3 will not give (403) or that does not
parse refuses the job too. An S3 that does not answer at all (no connection,
timeout, 5xx) or that rejects the keys themselves lets the job run: restic then
fails on its own with that reason, and jobs that do not touch the repository
(scan, perf, evidence in the outbox) cannot harm it.

`restore` and `init` are exempt: restore only reads the repository (failback
restores onto the returning server while the standby still holds the lease),
and init only creates a repository that does not exist yet (the converge of
the standby runs it while the lease still says "restoring").

The lease also carries the failover's limit (`warn_after`, `ends`: the plan's
80 % and 100 % of max_days). Past `warn_after`, the holder's jobs still run but
push their heartbeat down with the reason, so Kuma alerts the agency through
its usual channel that the sites must go back to their own server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from .config import Config, Site
from .s3 import S3Client, S3Error, bucket_of
from .secrets import SecretError, s3_environment

LEASE_PREFIX = "lease/"
UNFENCED_JOBS = frozenset({"restore", "init"})  # they never change an existing repository
TIMEOUT_SECONDS = 10.0  # one attempt: a silent S3 must not hold every job up


@dataclass(frozen=True)
class Lease:
    site: str
    holder: str  # the server that runs the site's jobs
    since: str  # ISO 8601, UTC
    reason: str  # "failover"
    warn_after: str | None = None  # ISO 8601: from then on the holder's heartbeats warn
    ends: str | None = None  # ISO 8601: the end of the plan's max_days


@dataclass(frozen=True)
class Verdict:
    refusal: str | None  # why this server must not run the job; None: it may
    warning: str | None = None  # the job runs, but its heartbeat goes down with this


def lease_key(site_id: str) -> str:
    return f"{LEASE_PREFIX}{site_id}.json"


def parse_lease(body: bytes, key: str) -> Lease:
    try:
        data = json.loads(body)
        return Lease(
            str(data["site"]), str(data["holder"]), str(data["since"]), str(data["reason"]),
            _optional(data.get("warn_after")), _optional(data.get("ends")),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{key}: not a lease (expected JSON with site, holder, since, reason): {e}") from None


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_lease(site: Site) -> Lease | None:
    """The site's lease from its bucket; None without one (or for a repository not on S3)."""
    if not site.repository.startswith("s3:") or site.credentials_file is None:
        return None
    key = lease_key(site.id)
    client = S3Client(bucket_of(site.repository, s3_environment(site.credentials_file)), TIMEOUT_SECONDS, attempts=1)
    body = client.get(key)
    return None if body is None else parse_lease(body, key)


def verdict(config: Config, site: Site, job: str, now: datetime | None = None) -> Verdict:
    """Whether this server may run `job` on `site` now, and what its heartbeat must warn of."""
    if job in UNFENCED_JOBS:
        return Verdict(None)
    try:
        lease = read_lease(site)
    except S3Error as e:
        # S3 unreachable, or the keys themselves rejected: restic cannot touch the repository either,
        # and fails with its own clear reason (repository unreachable, S3 credentials rejected).
        if e.transient or e.keys_rejected:
            return Verdict(None)
        return Verdict(
            f"cannot read the site's lease ({e}): the job does not run while it is unknown which server holds it"
        )
    except (SecretError, ValueError) as e:
        return Verdict(
            f"cannot read the site's lease ({e}): the job does not run while it is unknown which server holds it"
        )
    if lease is None:
        return Verdict(None)
    if lease.holder != config.agent.host:
        return Verdict(
            f"site {site.id} is held by {lease.holder} since {lease.since} ({lease.reason}): "
            "this server must not run its jobs"
        )
    try:
        due = lease.warn_after is not None and (now or datetime.now(UTC)) >= _time(lease.warn_after)
    except ValueError:
        due = False
    if not due:
        return Verdict(None)
    return Verdict(
        None,
        f"site {site.id} has run on {lease.holder} since {lease.since} ({lease.reason}); "
        f"the plan allows it until {lease.ends}: fail back before then",
    )
