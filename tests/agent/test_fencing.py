"""Fencing: the agent reads the site's lease (written by the controller) before every job.

Real parts only: the controller's `LeaseStore` writes with boto3 into moto S3
(IAM enforced), the agent reads it with its stdlib SigV4 client and the site's
scoped keys, restic and the journal are real.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from carestack_agent import exitcodes, lease
from carestack_agent.actions.backup import backup
from carestack_agent.actions.init import init
from carestack_agent.actions.restore import restore
from carestack_agent.jobs import run_job
from carestack_agent.journal import Journal
from carestack_agent.s3 import S3Client, S3Error, bucket_of

from infra.failover_lease import Lease, LeaseStore

from .conftest import PushRecorder, Site, free_port

pytestmark = pytest.mark.agent

SINCE = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def put_lease(site: Site, holder: str, **limits: datetime) -> None:
    LeaseStore(site.s3.client(), site.bucket).put(Lease("c", site.id, holder, "test-host", SINCE, "failover", **limits))


def snapshots(site: Site) -> list[object]:
    return list(json.loads(site.restic("snapshots", "--json").stdout or "[]"))


def test_a_site_held_by_another_server_refuses_its_jobs_with_the_reason(make_site, push: PushRecorder) -> None:
    site: Site = make_site(push=push, database=False)
    put_lease(site, "standby-1")
    result = backup(site.config(), site.id)
    reason = f"site {site.id} is held by standby-1 since 2026-12-01T05:00:00Z (failover): this server must not run"
    assert not result.ok and result.exit_code == exitcodes.FENCED and reason in result.message
    assert snapshots(site) == []  # nothing ran
    fenced = [e for e in Journal(site.state_dir).entries() if e.get("event") == "fenced"]
    assert len(fenced) == 1 and reason in fenced[0]["message"]
    downs = [r for r in push.requests if r.startswith("/api/push/tok-backup-123?")]
    assert len(downs) == 1 and "status=down" in downs[0] and "held+by+standby-1" in downs[0]

    cli = site.agent("backup", site.id)  # as the timer runs it
    assert cli.returncode == exitcodes.FENCED and reason in cli.stderr


def test_the_holder_runs_the_jobs_and_restore_runs_anywhere(make_site) -> None:
    site: Site = make_site(database=False)
    put_lease(site, "test-host")  # this server holds the site (it is the standby now)
    assert backup(site.config(), site.id).ok
    put_lease(site, "standby-1")
    restored = restore(site.config(), site.id, wait=True)  # failback restores while the standby still holds it
    assert restored.ok, restored.message
    LeaseStore(site.s3.client(), site.bucket).release(site.id)
    again = backup(site.config(), site.id)  # released: the own server runs its jobs again
    assert again.ok and again.figures.get("snapshot_id") not in (None, "")


def test_init_runs_under_a_foreign_lease_since_it_only_creates_a_missing_repository(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    put_lease(site, "carestack failover")  # the standby's converge runs init while the lease says "restoring"
    done = init(site.config(), site.id)
    assert done.ok, done.message
    assert backup(site.config(), site.id).exit_code == exitcodes.FENCED


def test_past_the_plans_warning_the_holders_heartbeat_goes_down_with_the_reason(make_site, push: PushRecorder) -> None:
    site: Site = make_site(push=push, database=False)
    put_lease(site, "test-host", warn_after=SINCE + timedelta(days=24), ends=SINCE + timedelta(days=30))
    assert lease.verdict(site.config(), site.config().site(site.id), "backup", now=SINCE).warning is None
    put_lease(site, "test-host", warn_after=SINCE - timedelta(days=1), ends=SINCE + timedelta(days=5))
    result = backup(site.config(), site.id)
    assert result.ok and "fail back before then" in result.message and "2026-12-06T05:00:00Z" in result.message
    last = [r for r in push.requests if r.startswith("/api/push/tok-backup-123?")][-1]
    assert "status=down" in last and "fail+back+before+then" in last


def test_an_unreadable_lease_refuses_the_job(make_site) -> None:
    site: Site = make_site(database=False)
    site.s3.client().put_object(Bucket=site.bucket, Key=f"lease/{site.id}.json", Body=b"{not json")
    result = backup(site.config(), site.id)
    assert result.exit_code == exitcodes.FENCED
    assert result.message.startswith(f"cannot read the site's lease (lease/{site.id}.json: not a lease")


def test_the_sites_own_keys_read_its_lease_and_no_other_clients(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    put_lease(site, "standby-1")
    found = lease.read_lease(site.config().site(site.id))
    assert found is not None and (found.site, found.holder, found.reason) == (site.id, "standby-1", "failover")
    keys = {"AWS_ACCESS_KEY_ID": site.creds.access_key_id, "AWS_SECRET_ACCESS_KEY": site.creds.secret_access_key}
    other, _ = site.s3.bucket()  # another client's bucket: the site's keys (its restic policy) do not reach it
    LeaseStore(site.s3.client(), other).put(Lease("c", site.id, "standby-1", "x", SINCE, "failover"))
    theirs = site.repository.replace(f"/{site.bucket}/", f"/{other}/")
    with pytest.raises(S3Error, match=r"403") as refused:
        S3Client(bucket_of(theirs, keys)).get(f"lease/{site.id}.json")
    assert site.creds.secret_access_key not in str(refused.value)
    site.creds = dataclasses.replace(site.creds, secret_access_key="wrong")
    # Keys S3 rejects cannot read the lease, nor touch the repository: restic fails at once with the reason
    # (an operator needs "credentials rejected", not a fencing message about a lease nobody could read).
    result = backup(site.config(), site.id)
    assert result.exit_code == exitcodes.AUTH and "S3 credentials rejected" in result.message


def test_an_s3_that_does_not_answer_lets_a_job_run_since_nothing_then_reaches_the_repository(make_site) -> None:
    site: Site = make_site(database=False, init=False, endpoint=f"http://127.0.0.1:{free_port()}")  # nobody listens
    done = run_job(site.config(), site.id, "scan", lambda ctx: "scanned", timeout=60)
    assert done.ok and done.message == "scanned"
