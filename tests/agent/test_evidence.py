"""Every job's evidence record: the agent's writer against real S3 (moto, IAM enforced), read back by the
controller's reader (the contract), the outbox through an outage, secrets kept out, object lock applied."""

from __future__ import annotations

import gzip
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from carestack_agent import evidence, exitcodes
from carestack_agent.actions.backup import backup
from carestack_agent.actions.scan import scan
from carestack_agent.jobs import Context, JobFailed, run_job
from carestack_agent.journal import Journal
from carestack_agent.s3 import S3Client, S3Error, bucket_of

from infra.evidence import EvidenceAccess, read_records
from lab import s3 as lab_s3

from .conftest import S3, Site, TcpProxy

pytestmark = pytest.mark.agent

HOUR = timedelta(hours=1)


def access(site: Site) -> EvidenceAccess:
    return EvidenceAccess(site.bucket, lab_s3.REGION, site.creds.access_key_id, site.creds.secret_access_key,
                          site.s3.endpoint)  # fmt: skip


def around_now() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - HOUR, now + HOUR


def journal_events(site: Site, event: str) -> list[dict[str, Any]]:
    return [e for e in Journal(site.state_dir).entries() if e.get("event") == event]


def keys(s3: S3, bucket: str, prefix: str = "evidence/") -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def a_job(site: Site, job: str = "check", body: Any = None) -> Any:
    """A job through the real frame with a body that touches nothing but the frame (no restic)."""
    return run_job(site.config(), site.id, job, body or (lambda ctx: f"{job} done"), timeout=60)


def test_a_backup_leaves_its_record_and_the_controller_reads_every_field_back(make_site) -> None:
    site: Site = make_site(database=False)
    site.extra_site = {"client": "bakery"}
    result = backup(site.config(), site.id, "scheduled")
    assert result.ok, result.message
    end = journal_events(site, "end")[-1]
    found = read_records(access(site), site.id, *around_now())
    assert found.problems == [] and len(found) == 1
    record = found[0]
    assert (record.schema, record.client, record.site, record.job, record.run_id, record.host) == (
        1, "bakery", site.id, "backup", result.run_id, "test-host")  # fmt: skip
    assert (record.result, record.exit_code, record.message) == ("ok", 0, result.message)
    assert record.figures == json.loads(json.dumps(end["figures"]))  # the journal's figures, as JSON has them
    assert record.figures["snapshot_id"]
    started = datetime.fromisoformat(journal_events(site, "start")[-1]["ts"].replace("Z", "+00:00"))
    assert abs(record.started - started) < timedelta(seconds=1) and record.started <= record.ended
    assert record.ended - record.started >= timedelta(seconds=end["duration"]) - timedelta(seconds=0.01)
    assert not any((site.state_dir / "evidence" / "outbox" / site.id).iterdir())  # sent, nothing pending


def test_without_a_client_in_the_config_the_record_names_the_bucket(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    assert a_job(site).ok
    (record,) = read_records(access(site), site.id, *around_now())
    assert record.client == site.bucket and record.job == "check"


def test_a_failed_job_leaves_a_failed_record_with_its_exit_code(make_site) -> None:
    site: Site = make_site(database=False, init=False)

    def fails(ctx: Context) -> str:
        ctx.figures["tried"] = 2
        raise JobFailed("the repository answered nonsense", exitcodes.UNAVAILABLE)

    result = a_job(site, "prune", fails)
    assert not result.ok
    (record,) = read_records(access(site), site.id, *around_now())
    assert (record.result, record.exit_code, record.message) == ("failed", exitcodes.UNAVAILABLE, result.message)
    assert record.figures == {"tried": 2}


def test_no_secret_reaches_a_record(make_site) -> None:
    site: Site = make_site(database=False)
    assert backup(site.config(), site.id).ok

    def leaks(ctx: Context) -> str:  # a message that, through some bug, quotes every secret of the site
        ctx.figures["oops"] = {"key": site.creds.access_key_id, "nested": [site.password]}
        raise JobFailed(f"failed with {site.creds.secret_access_key} and {site.password}")

    a_job(site, "check", leaks)
    bodies = [site.s3.client().get_object(Bucket=site.bucket, Key=k)["Body"].read().decode() for k in
              keys(site.s3, site.bucket)]  # fmt: skip
    assert len(bodies) == 2
    for text in bodies:
        for secret in (site.password, site.creds.access_key_id, site.creds.secret_access_key):
            assert secret not in text
    assert "***" in bodies[0] + bodies[1]


def test_an_s3_outage_keeps_records_in_the_outbox_and_the_next_job_sends_them_in_order(make_site, s3: S3) -> None:
    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    proxy.start()
    site: Site = make_site(database=False, init=False, endpoint=f"http://127.0.0.1:{proxy.port}")
    try:
        proxy.stop()
        results = [a_job(site, job) for job in ("backup", "check", "prune")]
        assert all(r.ok for r in results)  # the jobs' own merits; the bucket being down is no failure
        outbox = site.state_dir / "evidence" / "outbox" / site.id
        queued = sorted(p.name for p in outbox.iterdir())
        assert len(queued) == 3 and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in outbox.iterdir())
        assert oct(outbox.stat().st_mode & 0o777) == "0o700"
        notes = journal_events(site, "evidence")
        assert [n["pending"] for n in notes] == [1, 2, 3]
        assert all(n["message"].startswith("evidence not written: ") and "127.0.0.1" in n["message"] for n in notes)
        assert keys(s3, site.bucket) == []
        proxy = TcpProxy(proxy.target_port)  # the same address again
        proxy.port = int(site.endpoint.rsplit(":", 1)[1])
        proxy.start()
        assert a_job(site, "update").ok
    finally:
        proxy.stop()
    assert list(outbox.iterdir()) == []
    found = read_records(access(site), site.id, *around_now())
    assert [r.job for r in found] == ["backup", "check", "prune", "update"]  # ended order = run order
    assert [r.run_id for r in found] == [r.run_id for r in results] + [found[-1].run_id]
    assert len(journal_events(site, "evidence")) == 3  # the send after the outage raised nothing


def test_the_outbox_survives_a_crash_and_a_resend_never_makes_a_second_key(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    cfg = site.config()
    s = cfg.site(site.id)
    # The state a crash leaves: the record queued (fsynced) but the agent gone before the PUT.
    now = datetime.now(UTC)
    body = evidence.record(cfg, s, "backup", "20260101T000000-aaaaaa", now - timedelta(seconds=5), now, ok=True,
                           exit_code=0, message="done", figures={})  # fmt: skip
    queued = evidence.enqueue(cfg, s, evidence.key_of(s.id, "backup", now, "20260101T000000-aaaaaa"),
                              json.dumps(body).encode())  # fmt: skip
    kept = queued.read_bytes()
    assert evidence.send(cfg, s) == evidence.Sent(1, 0)
    # ... and the state a crash after the PUT leaves: sent, but still queued. It is sent again, same key.
    queued.write_bytes(kept)
    assert a_job(site, "check").ok
    listed = keys(site.s3, site.bucket)
    assert len(listed) == 2 and sum("/backup/" in k for k in listed) == 1
    versions = site.s3.client().list_object_versions(Bucket=site.bucket, Prefix="evidence/")["Versions"]
    assert sum("/backup/" in v["Key"] for v in versions) == 2  # two PUTs of one key: one record
    assert [r.job for r in read_records(access(site), site.id, *around_now())] == ["backup", "check"]


def test_an_outbox_entry_nobody_can_send_is_set_aside_and_does_not_block_the_rest(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    cfg = site.config()
    s = cfg.site(site.id)
    folder = evidence.outbox_dir(cfg, s)
    folder.mkdir(parents=True)
    (folder / "00000000000000000001-torn").write_text('{"key": "evidence/x')  # a torn write from an old agent
    assert a_job(site).ok
    assert [p.name for p in folder.iterdir()] == [".unreadable-00000000000000000001-torn"]
    (note,) = journal_events(site, "evidence")
    assert "unreadable (JSONDecodeError), set aside" in note["message"]
    assert len(read_records(access(site), site.id, *around_now())) == 1


def test_a_bucket_that_never_answers_does_not_hang_the_job(make_site, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    site: Site = make_site(database=False, init=False, endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(evidence, "REQUEST_TIMEOUT", 0.5)
    try:
        result = a_job(site)
    finally:
        silent.close()
    assert result.ok and result.exit_code == 0
    (note,) = journal_events(site, "evidence")
    assert "TimeoutError" in note["message"] and note["pending"] == 1


def test_one_clients_keys_cannot_write_another_clients_evidence(make_site, s3: S3) -> None:
    site: Site = make_site(database=False, init=False)
    other, _ = s3.bucket("cs-victim")
    creds = {"AWS_ACCESS_KEY_ID": site.creds.access_key_id, "AWS_SECRET_ACCESS_KEY": site.creds.secret_access_key}
    client = S3Client(bucket_of(f"s3:{s3.endpoint}/{other}/www", creds), timeout=5, attempts=1)
    with pytest.raises(S3Error, match="answered 403") as caught:
        client.put(f"evidence/{site.id}/backup/2026/01/20260101T000000Z-forged.json", b"{}")
    assert not caught.value.transient
    assert keys(s3, other) == []
    own = S3Client(bucket_of(site.repository, creds), timeout=5, attempts=1)
    own.put("evidence/x/check/2026/01/20260101T000000Z-r.json", b"{}")
    assert own.get("evidence/x/check/2026/01/20260101T000000Z-r.json") == b"{}"
    assert own.get("evidence/x/none.json") is None
    assert list(own.list("evidence/x/")) == ["evidence/x/check/2026/01/20260101T000000Z-r.json"]


def test_records_in_a_locked_bucket_get_the_buckets_retention(make_site, s3: S3) -> None:
    site: Site = make_site(database=False, init=False)
    site.bucket = f"cs-locked-{site.id}"
    site.creds = lab_s3.provision_bucket(s3.endpoint, s3.admin, site.bucket, object_lock_days=3)
    assert a_job(site).ok
    (key,) = keys(s3, site.bucket)
    head = s3.client().head_object(Bucket=site.bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=2)
    version = head["VersionId"]
    with pytest.raises(Exception, match=r"AccessDenied|locked|WORM|retention"):
        s3.client().delete_object(Bucket=site.bucket, Key=key, VersionId=version)


def test_the_scan_leaves_counts_top_lines_and_its_baseline(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    site.extra_site = {"scan": {}}
    first = scan(site.config(), site.id)  # no baseline yet: takes one
    assert first.ok, first.message
    (site.root / "wp-content" / "uploads").mkdir(parents=True, exist_ok=True)
    (site.root / "wp-content" / "uploads" / "x.php").write_text("<?php echo 1;")
    second = scan(site.config(), site.id)
    found = read_records(access(site), site.id, *around_now(), jobs=["scan"])
    assert [r.run_id for r in found] == [first.run_id, second.run_id] and found.problems == []
    latest = found[-1].figures
    assert "findings" not in latest and latest["top_findings"]
    assert all(line.split(": ", 1)[0] in ("critical", "high", "medium", "info") for line in latest["top_findings"])
    assert sum(latest[s] for s in ("critical", "high", "medium", "info")) >= 1
    assert "<?php" not in json.dumps(latest)
    (baseline_key,) = keys(site.s3, site.bucket, f"evidence/{site.id}/scan-baseline/")
    assert baseline_key.endswith(f"-{first.run_id}.json.gz")
    blob = site.s3.client().get_object(Bucket=site.bucket, Key=baseline_key)["Body"].read()
    on_server = json.loads((site.state_dir / "scan" / site.id / "baseline.json").read_text())
    assert json.loads(gzip.decompress(blob)) == on_server


def test_an_interrupted_update_settled_later_leaves_its_own_record(make_site) -> None:
    site: Site = make_site(database=False)
    journal = Journal(site.state_dir)
    start = journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "start"})
    journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "step", "step": "check"})
    res = site.agent("settle", site.id)
    assert res.returncode == 0, res.stderr
    found = read_records(access(site), site.id, *around_now())
    by_job = {r.job: r for r in found}
    assert sorted(by_job) == ["settle", "update"] and found.problems == []
    update = by_job["update"]
    assert update.run_id == "u1" and update.result == "failed"  # it did not run: never counted as applied
    assert update.started == datetime.fromisoformat(start["ts"].replace("Z", "+00:00"))
    assert update.figures["recovered_by"] == f"settle {by_job['settle'].run_id}"
    assert "interrupted at step check" in update.message


def test_an_outbox_that_cannot_be_written_loses_the_record_but_never_the_job(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    blocked = site.state_dir / "evidence" / "outbox"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a directory")  # as a broken disk or a stray file would leave it
    result = a_job(site)
    assert result.ok and result.exit_code == 0
    (note,) = journal_events(site, "evidence")
    assert note["message"].startswith("evidence not written: the outbox could not take it (")
    assert read_records(access(site), site.id, *around_now()) == []
