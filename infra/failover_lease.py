"""The fencing lease: which server holds a site during a failover, as an object in the client's bucket.

`lease/<site>.json` = {schema, client, site, holder, primary, since, reason}.
The controller writes it before the standby's jobs start and deletes it when
the site is back on its own server; the agent on every server reads it before
each job (`carestack_agent.lease`) and refuses a site held elsewhere. Its
existence is also the record of an active failover: `since` gives its age
against the plan's `max_days`. The agent parses the same fields with the
standard library; a contract test ties the two.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
PREFIX = "lease/"


class LeaseError(ValueError):
    """A lease object that is not one: the message names the key and the field."""


@dataclass(frozen=True)
class Lease:
    client: str
    site: str
    holder: str  # the server that runs the site's jobs now
    primary: str  # the site's own server (plan.hosting.server)
    since: datetime
    reason: str  # "failover"
    warn_after: datetime | None = None  # the holder's heartbeats warn from then on (the plan's 80 % of max_days)
    ends: datetime | None = None  # the end of the plan's max_days

    def age_days(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.since).total_seconds() / 86400

    def to_json(self) -> str:
        data = {
            "schema": SCHEMA_VERSION,
            "client": self.client,
            "site": self.site,
            "holder": self.holder,
            "primary": self.primary,
            "since": _iso(self.since),
            "reason": self.reason,
        }
        for name, moment in (("warn_after", self.warn_after), ("ends", self.ends)):
            if moment is not None:
                data[name] = _iso(moment)
        return json.dumps(data, indent=2) + "\n"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease_key(site_id: str) -> str:
    return f"{PREFIX}{site_id}.json"


def parse_lease(key: str, body: bytes | str) -> Lease:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise LeaseError(f"{key}: not JSON ({e})") from None
    if not isinstance(data, dict):
        raise LeaseError(f"{key}: expected a JSON object")
    if data.get("schema") != SCHEMA_VERSION:
        raise LeaseError(f"{key}: field 'schema' is {data.get('schema')!r}; this carestack reads {SCHEMA_VERSION}")
    fields = {}
    for name in ("client", "site", "holder", "primary", "since", "reason"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise LeaseError(f"{key}: field {name!r} must be a non-empty string, got {value!r}")
        fields[name] = value
    since = _time(key, "since", fields["since"])
    limits = {
        name: _time(key, name, data[name]) if data.get(name) is not None else None for name in ("warn_after", "ends")
    }
    return Lease(
        fields["client"], fields["site"], fields["holder"], fields["primary"], since, fields["reason"],
        limits["warn_after"], limits["ends"],
    )  # fmt: skip


def _time(key: str, name: str, raw: object) -> datetime:
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise LeaseError(f"{key}: field {name!r} {raw!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise LeaseError(f"{key}: field {name!r} {raw!r} has no time zone")
    return moment


class LeaseStore:
    """The leases in one client's bucket, through a boto3 S3 client allowed to write there."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def get(self, site_id: str) -> Lease | None:
        key = lease_key(site_id)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return parse_lease(key, body)

    def active(self) -> list[Lease]:
        """Every lease in the bucket (one per site that runs away from its own server)."""
        leases = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=PREFIX):
            for item in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                leases.append(parse_lease(item["Key"], body))
        return sorted(leases, key=lambda lease: lease.site)

    def put(self, lease: Lease) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=lease_key(lease.site), Body=lease.to_json().encode(), ContentType="application/json"
        )

    def release(self, site_id: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=lease_key(site_id))
