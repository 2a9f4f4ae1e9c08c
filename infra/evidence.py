"""The controller's reader of the evidence records the agents leave in a client's bucket.

`read_records(access, site, start, end)` lists `evidence/<site>/<job>/<YYYY>/<MM>/` for every job
(or the ones asked for) and every UTC month the period touches, fetches the records that ended in
[start, end) and parses them with `infra.evidence_record`. A record that breaks the contract is not
dropped: it comes back in the result's `problems`, with its key and what is wrong, so the report can
say that evidence exists but is unreadable. An unreachable bucket raises `EvidenceUnavailable`.

`EvidenceAccess` is where the bucket is and the keys that may read it. Production builds it from
the client stack's outputs (`bucket`, `s3_endpoint`, `s3_access_key_id`, `s3_secret_access_key`:
`pulumi stack output --json --show-secrets`); the lab from its state (`lab.evidence`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from infra.evidence_record import PREFIX, EvidenceError, EvidenceRecord, month_prefix, parse_record

# Not a job: the scan's accepted baseline (compressed), kept beside the records for the report and
# a rebuilt server; see docs/evidence.md.
BASELINE_DIR = "scan-baseline"
# A record is a few kilobytes; anything far larger is not one of ours and is not read into memory.
MAX_RECORD_BYTES = 1024 * 1024
FETCH_THREADS = 16
_CLIENTS_LOCK = threading.Lock()
_AWS_ENDPOINT = re.compile(r"^https://s3[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com/?$")
_STAMP = re.compile(r"/(?P<stamp>\d{8}T\d{6}Z)-[A-Za-z0-9-]+\.json$")


class EvidenceUnavailable(RuntimeError):
    """The bucket could not be listed or read (network, credentials, no such bucket)."""


@dataclass(frozen=True)
class EvidenceAccess:
    """One client's bucket and keys that may list and read it."""

    bucket: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    endpoint: str | None = None  # None: AWS's own endpoint for the region

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, Any]) -> EvidenceAccess:
        """From a client stack's outputs (`pulumi stack output --json --show-secrets`)."""
        missing = [
            k for k in ("bucket", "s3_endpoint", "s3_access_key_id", "s3_secret_access_key") if not outputs.get(k)
        ]
        if missing:
            raise ValueError(f"stack outputs: missing {', '.join(missing)} (a client stack after `pulumi up`)")
        endpoint = str(outputs["s3_endpoint"])
        match = _AWS_ENDPOINT.match(endpoint)
        if match is None:
            raise ValueError(f"stack outputs: s3_endpoint {endpoint!r} is not https://s3.<region>.amazonaws.com")
        return cls(
            bucket=str(outputs["bucket"]),
            region=match["region"],
            access_key_id=str(outputs["s3_access_key_id"]),
            secret_access_key=str(outputs["s3_secret_access_key"]),
            endpoint=endpoint,
        )

    def client(self) -> Any:
        with _CLIENTS_LOCK:  # boto3's default session is not safe to make clients from in several threads
            return self._client()

    def _client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=20,
                s3={"addressing_style": "path"},
                max_pool_connections=FETCH_THREADS,
            ),
        )


@dataclass(frozen=True)
class EvidenceProblem:
    """An object under the evidence prefix that is not a readable record."""

    key: str
    reason: str


class EvidenceRecords(list[EvidenceRecord]):
    """The records found, oldest first, and the problems met on the way (each names its key)."""

    def __init__(self, records: Iterable[EvidenceRecord] = (), problems: Iterable[EvidenceProblem] = ()) -> None:
        super().__init__(records)
        self.problems: list[EvidenceProblem] = list(problems)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name}: {moment.isoformat()} has no time zone (give an aware time)")
    return moment.astimezone(UTC)


def months(start: datetime, end: datetime) -> Iterator[tuple[int, int]]:
    """(year, month) of every UTC month that [start, end) touches."""
    last = end - timedelta(microseconds=1)
    year, month = start.year, start.month
    while (year, month) <= (last.year, last.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _list(s3: Any, bucket: str, prefix: str, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    yield from s3.get_paginator("list_objects_v2").paginate(**kwargs)


def _jobs(s3: Any, bucket: str, site: str) -> list[str]:
    names = []
    for page in _list(s3, bucket, f"{PREFIX}/{site}/", "/"):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"].rstrip("/").rsplit("/", 1)[-1]
            if name != BASELINE_DIR:
                names.append(name)
    return sorted(names)


def _fetch(s3: Any, bucket: str, key: str) -> EvidenceRecord | EvidenceProblem:
    try:
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{MAX_RECORD_BYTES}")
        body = response["Body"].read()
    except (ClientError, BotoCoreError) as e:
        return EvidenceProblem(key, f"could not be read ({e})")
    if len(body) > MAX_RECORD_BYTES:
        return EvidenceProblem(key, f"larger than {MAX_RECORD_BYTES} bytes: not an evidence record")
    try:
        return parse_record(key, body)
    except EvidenceError as e:
        return EvidenceProblem(key, str(e))


def read_records(
    access: EvidenceAccess,
    site: str,
    start: datetime,
    end: datetime,
    jobs: Iterable[str] | None = None,
) -> EvidenceRecords:
    """Every record of `site` (of `jobs`, or of every job) that ended in [start, end), oldest first."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise ValueError(f"end {end.isoformat()} is not after start {start.isoformat()}")
    s3 = access.client()
    keys: list[str] = []
    problems: list[EvidenceProblem] = []
    # Keys carry the end to the second; a record that ended within a second of `start` is kept by
    # the listing and decided by its own `ended` below.
    earliest = start.replace(microsecond=0)
    try:
        names = sorted(set(jobs)) if jobs is not None else _jobs(s3, access.bucket, site)
        for job in names:
            for year, month in months(start, end):
                for page in _list(s3, access.bucket, month_prefix(site, job, year, month)):
                    for item in page.get("Contents", []):
                        key = item["Key"]
                        stamp = _STAMP.search(key)
                        if stamp is None:
                            problems.append(EvidenceProblem(key, "not an evidence key (<ended>-<run_id>.json)"))
                            continue
                        ended = datetime.strptime(stamp["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                        if earliest <= ended < end:
                            keys.append(key)
    except (ClientError, BotoCoreError) as e:
        raise EvidenceUnavailable(f"bucket {access.bucket}: evidence of {site} could not be listed ({e})") from e
    with ThreadPoolExecutor(max_workers=FETCH_THREADS) as pool:
        fetched = list(pool.map(lambda key: _fetch(s3, access.bucket, key), keys))
    records = []
    for item in fetched:
        if isinstance(item, EvidenceProblem):
            problems.append(item)
        elif start <= item.ended.astimezone(UTC) < end:
            records.append(item)
    records.sort(key=lambda r: (r.ended, r.job, r.run_id))
    return EvidenceRecords(records, problems)
