"""One job's result record as the agent leaves it in the client's bucket, read back by the controller.

The agent writes one JSON object per finished job (backup, check, prune, update, rollback, scan, perf,
drill, failover...) under `evidence/<site>/<job>/<YYYY>/<MM>/<ended>-<run_id>.json`, next to the
site's restic repository (`<bucket>/<site>`), so the SLA report needs S3 and Kuma only and the evidence
outlives the server. This module is the controller's side of that contract: the key scheme and the
record's fields, validated with errors that name the key and the field. The agent builds the same
shape with the standard library only (it never imports controller code); a contract test ties the two.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 1
PREFIX = "evidence"
RESULTS = ("ok", "failed")
_KEY = re.compile(
    r"^evidence/(?P<site>[a-z0-9][a-z0-9-]*)/(?P<job>[a-z][a-z0-9-]*)/(?P<year>\d{4})/(?P<month>\d{2})/"
    r"(?P<ended>\d{8}T\d{6}Z)-(?P<run_id>[A-Za-z0-9-]+)\.json$"
)


class EvidenceError(ValueError):
    """A record that does not keep the contract: the message names the object key and the field."""


@dataclass(frozen=True)
class EvidenceRecord:
    schema: int
    client: str
    site: str
    job: str
    run_id: str
    host: str
    started: datetime
    ended: datetime
    result: str  # "ok" | "failed"
    exit_code: int
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result == "ok"


def stamp(moment: datetime) -> str:
    """The compact UTC time used in keys (sorts as text in time order)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def record_key(site: str, job: str, ended: datetime, run_id: str) -> str:
    ended = ended.astimezone(UTC)
    return f"{PREFIX}/{site}/{job}/{ended:%Y}/{ended:%m}/{stamp(ended)}-{run_id}.json"


def month_prefix(site: str, job: str, year: int, month: int) -> str:
    """The listing prefix of one site's records of one job in one (UTC) month."""
    return f"{PREFIX}/{site}/{job}/{year:04d}/{month:02d}/"


def _time(raw: Any, where: str) -> datetime:
    if not isinstance(raw, str):
        raise EvidenceError(f"{where}: expected an ISO 8601 time with a zone, got {raw!r}")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as e:
        raise EvidenceError(f"{where}: {raw!r} is not an ISO 8601 time ({e})") from e
    if value.tzinfo is None:
        raise EvidenceError(f"{where}: {raw!r} has no time zone (records are written in UTC, ending in Z)")
    return value


def parse_record(key: str, body: bytes | str) -> EvidenceRecord:
    """The record stored at `key`, checked field by field (and against its key)."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise EvidenceError(f"{key}: not JSON ({e})") from e
    if not isinstance(data, dict):
        raise EvidenceError(f"{key}: expected a JSON object, got {type(data).__name__}")

    def text(name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise EvidenceError(f"{key}: field {name!r} must be a non-empty string, got {value!r}")
        return value

    schema = data.get("schema")
    if schema != SCHEMA_VERSION:
        raise EvidenceError(f"{key}: field 'schema' is {schema!r}; this carestack reads schema {SCHEMA_VERSION}")
    result = text("result")
    if result not in RESULTS:
        raise EvidenceError(f"{key}: field 'result' is {result!r}; valid: {', '.join(RESULTS)}")
    exit_code = data.get("exit_code")
    if not isinstance(exit_code, int) or isinstance(exit_code, bool):
        raise EvidenceError(f"{key}: field 'exit_code' must be an integer, got {exit_code!r}")
    message = data.get("message", "")
    if not isinstance(message, str):
        raise EvidenceError(f"{key}: field 'message' must be a string, got {message!r}")
    figures = data.get("figures", {})
    if not isinstance(figures, dict):
        raise EvidenceError(f"{key}: field 'figures' must be an object, got {figures!r}")
    record = EvidenceRecord(
        schema=schema,
        client=text("client"),
        site=text("site"),
        job=text("job"),
        run_id=text("run_id"),
        host=text("host"),
        started=_time(data.get("started"), f"{key}: field 'started'"),
        ended=_time(data.get("ended"), f"{key}: field 'ended'"),
        result=result,
        exit_code=exit_code,
        message=message,
        figures=figures,
    )
    if record.ended < record.started:
        raise EvidenceError(f"{key}: 'ended' {data['ended']} is before 'started' {data['started']}")
    match = _KEY.match(key)
    if match is None:
        expected = "evidence/<site>/<job>/<YYYY>/<MM>/<ended>-<run_id>.json"
        raise EvidenceError(f"{key}: not an evidence key (expected {expected})")
    if (match["site"], match["job"], match["run_id"]) != (record.site, record.job, record.run_id):
        raise EvidenceError(f"{key}: the key names {match['site']}/{match['job']}/{match['run_id']}, "
                            f"the record {record.site}/{record.job}/{record.run_id}")  # fmt: skip
    return record
