"""The controller's evidence reader against a real S3 server (moto, IAM enforced), with the client's own keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.evidence import EvidenceAccess, EvidenceUnavailable, months, read_records
from infra.evidence_record import record_key
from lab import s3 as lab_s3

from .conftest import S3, free_port

pytestmark = pytest.mark.agent

T0 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)


def body(site: str, job: str, run_id: str, ended: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "schema": 1,
        "client": "bakery",
        "site": site,
        "job": job,
        "run_id": run_id,
        "host": "shared-1",
        "started": (ended - timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
        "ended": ended.isoformat().replace("+00:00", "Z"),
        "result": "ok",
        "exit_code": 0,
        "message": "done",
        "figures": {"files": 3},
        **extra,
    }


def put(client: Any, bucket: str, record: dict[str, Any]) -> str:
    ended = datetime.fromisoformat(record["ended"].replace("Z", "+00:00"))
    key = record_key(record["site"], record["job"], ended, record["run_id"])
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())
    return key


@pytest.fixture
def bucket(s3: S3) -> tuple[str, EvidenceAccess, Any]:
    name, creds = s3.bucket("cs-evidence")
    access = EvidenceAccess(name, lab_s3.REGION, creds.access_key_id, creds.secret_access_key, s3.endpoint)
    return name, access, access.client()


def test_records_of_a_period_across_a_month_boundary_oldest_first(bucket) -> None:
    name, access, client = bucket
    put(client, name, body("www", "backup", "r2", T0 + timedelta(hours=2)))  # April
    put(client, name, body("www", "backup", "r1", T0))  # March
    put(client, name, body("www", "check", "r3", T0 + timedelta(minutes=30)))
    put(client, name, body("www", "backup", "r0", T0 - timedelta(days=40)))  # before the period
    put(client, name, body("www", "backup", "r9", T0 + timedelta(days=3)))  # at the end: excluded
    put(client, name, body("shop", "backup", "s1", T0))  # another site
    found = read_records(access, "www", T0 - timedelta(days=1), T0 + timedelta(days=3))
    assert [(r.job, r.run_id) for r in found] == [("backup", "r1"), ("check", "r3"), ("backup", "r2")]
    assert found.problems == []
    assert found[0].figures == {"files": 3} and found[0].client == "bakery" and found[0].ok
    only = read_records(access, "www", T0 - timedelta(days=1), T0 + timedelta(days=3), jobs=["check"])
    assert [r.run_id for r in only] == ["r3"]


def test_a_record_that_breaks_the_contract_comes_back_as_a_problem_naming_its_key(bucket) -> None:
    name, access, client = bucket
    good = put(client, name, body("www", "backup", "g1", T0))
    bad = put(client, name, body("www", "backup", "b1", T0 + timedelta(minutes=1), result="maybe"))
    stray = "evidence/www/backup/2026/03/notes.txt"
    client.put_object(Bucket=name, Key=stray, Body=b"hello")
    client.put_object(Bucket=name, Key=f"evidence/www/backup/2026/03/{T0:%Y%m%dT%H%M%SZ}-x1.json", Body=b"{not json")
    found = read_records(access, "www", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [r.run_id for r in found] == ["g1"] and good
    problems = {p.key: p.reason for p in found.problems}
    assert "'result' is 'maybe'" in problems[bad]
    assert "not an evidence key" in problems[stray]
    assert "not JSON" in problems[f"evidence/www/backup/2026/03/{T0:%Y%m%dT%H%M%SZ}-x1.json"]


def test_the_scan_baseline_beside_the_records_is_not_read_as_a_job(bucket) -> None:
    name, access, client = bucket
    put(client, name, body("www", "scan", "s1", T0))
    client.put_object(Bucket=name, Key="evidence/www/scan-baseline/2026/03/20260331T230000Z-s1.json.gz", Body=b"x")
    found = read_records(access, "www", T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [r.job for r in found] == ["scan"] and found.problems == []


def test_another_clients_keys_cannot_read_the_evidence(s3: S3, bucket) -> None:
    name, _access, client = bucket
    put(client, name, body("www", "backup", "r1", T0))
    _, other = s3.bucket("cs-other")
    stranger = EvidenceAccess(name, lab_s3.REGION, other.access_key_id, other.secret_access_key, s3.endpoint)
    with pytest.raises(EvidenceUnavailable, match=f"bucket {name}: evidence of www could not be listed"):
        read_records(stranger, "www", T0 - timedelta(hours=1), T0 + timedelta(hours=1))


def test_an_unreachable_endpoint_raises_a_named_error() -> None:
    access = EvidenceAccess("cs-gone", "us-east-1", "AKIA", "secret", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EvidenceUnavailable, match="cs-gone"):
        read_records(access, "www", T0, T0 + timedelta(hours=1))


def test_period_and_stack_output_inputs_are_checked() -> None:
    assert list(months(T0, T0 + timedelta(days=1))) == [(2026, 3), (2026, 4)]
    assert list(months(T0, datetime(2026, 4, 1, tzinfo=UTC))) == [(2026, 3)]
    access = EvidenceAccess("cs-x", "us-east-1", "A", "S")
    with pytest.raises(ValueError, match="no time zone"):
        read_records(access, "www", datetime(2026, 3, 1), T0)
    with pytest.raises(ValueError, match="is not after start"):
        read_records(access, "www", T0, T0)
    outputs = {"bucket": "cs-x", "s3_endpoint": "https://s3.eu-west-1.amazonaws.com", "s3_access_key_id": "AK",
               "s3_secret_access_key": "SK"}  # fmt: skip
    built = EvidenceAccess.from_stack_outputs(outputs)
    assert (built.bucket, built.region, built.endpoint) == ("cs-x", "eu-west-1", "https://s3.eu-west-1.amazonaws.com")
    assert "SK" not in repr(built) and "AK" not in repr(built)
    with pytest.raises(ValueError, match="missing s3_secret_access_key"):
        EvidenceAccess.from_stack_outputs({**outputs, "s3_secret_access_key": ""})
