"""Evidence on real servers: a job on a lab server leaves its record in the client's bucket (the lab's S3,
IAM enforced), readable by the controller's reader; with S3 gone the job stands on its own merits and its
record lands with the site's next job."""

from __future__ import annotations

import io
import json
import shlex
from datetime import UTC, datetime, timedelta

import pytest

from infra.agent_config import credentials_file
from infra.evidence import read_records
from infra.plan import SitePlan
from lab import storage
from lab.config import load_config
from lab.evidence import evidence_access
from lab.state import LabClient, LabState
from lab.up import lab_up

pytestmark = pytest.mark.lab

OUTBOX = "/var/lib/carestack/evidence/outbox"


def first_site(lab: LabState) -> tuple[LabClient, SitePlan]:
    client = lab.clients[0]
    return client, lab.plan(client.id).sites[0]


def agent(lab: LabState, client: LabClient, *args: str) -> tuple[int, str]:
    run = lab.ssh(client.server, "carestack-agent " + " ".join(shlex.quote(a) for a in args), timeout=900)
    return run.returncode, run.stdout + run.stderr


def test_a_backup_on_a_lab_server_leaves_its_record_for_the_controller(lab: LabState) -> None:
    client, site = first_site(lab)
    since = datetime.now(UTC) - timedelta(seconds=5)
    code, out = agent(lab, client, "backup", site.id, "--reason", "manual", "--wait")
    assert code == 0, out
    found = read_records(evidence_access(lab, client.id), site.id, since, datetime.now(UTC), jobs=["backup"])
    assert found.problems == [] and len(found) == 1, found.problems
    record = found[0]
    assert (record.client, record.site, record.job, record.host, record.result) == (
        client.id, site.id, "backup", client.server, "ok")  # fmt: skip
    assert record.figures["snapshot_id"] and record.message in out
    assert lab.ssh(client.server, f"ls -A {OUTBOX}/{site.id}").stdout.strip() == ""


def test_with_s3_down_the_backup_fails_on_its_own_and_its_record_lands_with_the_next_job(lab: LabState) -> None:
    client, site = first_site(lab)
    config = load_config(lab.state_dir)
    since = datetime.now(UTC)  # the servers share this machine's clock
    before = set(lab.ssh(client.server, f"ls -A {OUTBOX}/{site.id}").stdout.split())
    assert storage.stop_gateway(config)  # the servers' only way to S3
    try:
        backup_code, out = agent(lab, client, "backup", site.id, "--reason", "manual", "--wait")
        queued = set(lab.ssh(client.server, f"ls -A {OUTBOX}/{site.id}").stdout.split()) - before
        journal = lab.ssh(client.server, "tail -n 50 /var/lib/carestack/journal.jsonl").stdout
    finally:
        lab_up(config, out=io.StringIO())  # starts the gateway again
    assert backup_code != 0, out  # restic could not reach the repository: the backup's own failure
    assert len(queued) == 1 and "_backup_" in queued.pop(), queued
    notes = [json.loads(line) for line in journal.splitlines() if '"event": "evidence"' in line]
    assert notes and notes[-1]["site"] == site.id and notes[-1]["message"].startswith("evidence not written: ")
    assert read_records(evidence_access(lab, client.id), site.id, since, datetime.now(UTC), jobs=["backup"]) == []

    code, out = agent(lab, client, "check", site.id, "--wait")
    assert code == 0, out
    found = read_records(evidence_access(lab, client.id), site.id, since, datetime.now(UTC), jobs=["backup", "check"])
    assert [(r.job, r.result) for r in found] == [("backup", "failed"), ("check", "ok")], found.problems
    assert found[0].exit_code == backup_code  # the record says what the job said
    assert lab.ssh(client.server, f"ls -A {OUTBOX}/{site.id}").stdout.strip() == ""


PROBE = """
import sys
from carestack_agent.s3 import S3Client, S3Error, bucket_of
from carestack_agent.secrets import read_env_file
creds = read_env_file(__import__("pathlib").Path(sys.argv[1]))
bucket = bucket_of(sys.argv[2], creds)
try:
    S3Client(bucket, timeout=5, attempts=1).put(sys.argv[3], b"{}")
except S3Error as e:
    print("refused", e.status)
else:
    print("written")
"""


def test_on_a_server_one_clients_keys_cannot_write_another_clients_evidence(lab: LabState) -> None:
    own, other = lab.clients[0], next(c for c in lab.clients if c.server != lab.clients[0].server)
    site = lab.plan(other.id).sites[0]
    python = "/opt/carestack-agent/bin/python3"
    forged = f"evidence/{site.id}/backup/2026/01/20260101T000000Z-forged.json"
    for bucket, expected in ((other.bucket, "refused 403"), (own.bucket, "written")):
        argv = [python, "-c", PROBE, credentials_file(own.id), f"s3:{lab.s3_endpoint}/{bucket}/x", forged]
        run = lab.ssh(own.server, " ".join(shlex.quote(a) for a in argv))
        assert run.stdout.strip() == expected, run.stdout + run.stderr
    access = evidence_access(lab, own.id)
    access.client().delete_object(Bucket=own.bucket, Key=forged)  # on a locked bucket: a delete marker
