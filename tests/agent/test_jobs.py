"""Retention, integrity checks, prune, init and status against the real repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from carestack_agent.actions.backup import backup
from carestack_agent.actions.check import check
from carestack_agent.actions.init import init
from carestack_agent.actions.prune import prune
from carestack_agent.journal import Journal
from carestack_agent.restic import Restic

from .conftest import PushRecorder, Site

pytestmark = pytest.mark.agent


def snapshot_times(site: Site, tag: str) -> list[str]:
    snaps = json.loads(site.restic("snapshots", "--json", "--tag", tag).stdout)
    return sorted(s["time"][:16] for s in snaps)


def test_retention_keeps_exactly_what_keep_star_says_over_a_fabricated_history(make_site, tmp_path: Path) -> None:
    site: Site = make_site(database=False)
    site.retention = {"keep_daily": 2, "keep_weekly": 3, "keep_monthly": 3}
    src = tmp_path / "old"
    src.mkdir()
    (src / "f").write_text("old")
    history = ["2024-01-05 10:00", "2024-01-20 10:00", "2024-02-10 10:00", "2024-02-11 09:00", "2024-02-11 18:00",
               "2024-02-12 10:00"]  # fmt: skip
    env_tags = ["--host", "test-host", "--tag", f"site:{site.id}", "--tag", "reason:scheduled"]
    for t in history:
        site.restic("backup", "--time", f"{t}:00", *env_tags, str(src))
    site.restic("backup", "--time", "2024-01-01 00:00:00", "--host", "test-host", "--tag", "site:other", str(src))

    result = backup(site.config(), site.id, "scheduled")  # forget runs after every backup
    assert result.ok, result.message
    kept = snapshot_times(site, f"site:{site.id}")
    # daily 2: today's run, 02-12; weekly 3: + the last of ISO week 6 (02-11 18:00); monthly 3: + 01-20
    assert kept[:-1] == ["2024-01-20T10:00", "2024-02-11T18:00", "2024-02-12T10:00"]
    assert kept[-1] > "2025"  # the run itself
    assert snapshot_times(site, "site:other") == ["2024-01-01T00:00"]  # another site's snapshots are not ours


def test_check_rotates_the_read_data_subset_and_pushes(make_site, push: PushRecorder) -> None:
    site: Site = make_site(push=push, database=False)
    site.jobs = {"check_read_data_subsets": 3}
    cfg = site.config()
    assert backup(cfg, site.id).ok
    subsets = []
    for _ in range(4):
        r = check(cfg, site.id)
        assert r.ok, r.message
        subsets.append(r.figures["subset"])
    assert subsets == ["1/3", "2/3", "3/3", "1/3"]
    checks = [r for r in push.requests if r.startswith("/api/push/tok-check-456?")]
    assert len(checks) == 4 and all("status=up" in r and "data+subset" in r for r in checks)

    # prune has its own verb and token
    p = prune(cfg, site.id)
    assert p.ok, p.message
    assert push.requests[-1].startswith("/api/push/tok-prune-789?status=up")


def test_check_reports_a_damaged_pack_and_pushes_down(make_site, push: PushRecorder) -> None:
    site: Site = make_site(push=push, database=False)
    cfg = site.config()
    assert backup(cfg, site.id).ok
    client = site.s3.client()
    packs = [o["Key"] for o in client.list_objects_v2(Bucket=site.bucket, Prefix=f"{site.id}/data/")["Contents"]]
    body = bytearray(client.get_object(Bucket=site.bucket, Key=packs[0])["Body"].read())
    body[len(body) // 2] ^= 0xFF  # bit rot: same size, one byte flipped
    client.put_object(Bucket=site.bucket, Key=packs[0], Body=bytes(body))
    r = check(cfg, site.id)
    assert not r.ok and r.exit_code == 1
    assert r.message.startswith("restic check failed: the repository contains errors")
    assert r.figures["subset"] == "1/1"
    assert push.requests[-1].startswith("/api/push/tok-check-456?status=down&msg=check+failed")


def test_init_is_idempotent(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    cfg = site.config()
    first = init(cfg, site.id)
    assert first.ok and first.figures["created"] is True, first.message
    again = init(cfg, site.id)
    assert again.ok and again.figures["created"] is False
    assert again.message.endswith("already initialized")


def test_backup_without_a_repository_says_to_run_init(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    res = site.agent("backup", site.id)
    assert res.returncode == 4
    assert f"run `carestack-agent init {site.id}`" in res.stderr


def test_status_shows_the_last_result_of_each_job(make_site) -> None:
    site: Site = make_site(database=False)
    assert site.agent("backup", site.id, "--reason", "scheduled").returncode == 0
    assert site.agent("check", site.id).returncode == 0
    res = site.agent("status", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    jobs = data["sites"][site.id]["jobs"]
    assert jobs["backup"]["state"] == "ok" and jobs["check"]["state"] == "ok"
    assert jobs["backup"]["figures"]["snapshot_id"] in jobs["backup"]["message"]
    assert jobs["backup"]["figures"]["reason"] == "scheduled"
    text = site.agent("status")
    assert text.returncode == 0 and f"{site.id}  backup" in text.stdout

    # a failed job turns status non-zero
    site.password = "wrong"
    assert site.agent("check", site.id).returncode == 3
    bad = site.agent("status", "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["sites"][site.id]["jobs"]["check"]["state"] == "failed"
    journal = [json.loads(x) for x in (site.state_dir / "journal.jsonl").read_text().splitlines()]
    assert {e["event"] for e in journal} == {"start", "end"}
    assert all("run_id" in e and "ts" in e for e in journal)


def test_every_cli_job_first_settles_an_update_an_earlier_run_left_unfinished(make_site) -> None:
    """The job frame knows no action: the CLI hands it the recovery step; a bare action call does not settle."""
    site: Site = make_site(database=False)
    journal = Journal(site.state_dir)
    journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "start"})
    journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "step", "step": "health"})

    direct = backup(site.config(), site.id)
    assert direct.ok, direct.message
    assert not [e for e in journal.entries() if e.get("run_id") == "u1" and e["event"] == "end"]

    (site.state_dir / "clean" / site.id).unlink()  # as after a crash: the next job looks for unfinished runs
    res = site.agent("backup", site.id)
    assert res.returncode == 0, res.stderr
    ends = [e for e in journal.entries() if e.get("run_id") == "u1" and e["event"] == "end"]
    assert len(ends) == 1
    backup_run = [e for e in journal.entries() if e.get("job") == "backup" and e["event"] == "end"][-1]
    assert ends[0]["figures"]["recovered_by"] == f"backup {backup_run['run_id']}"
    assert ends[0]["figures"]["outcome"] == "interrupted"
    assert "before anything changed: nothing to roll back" in ends[0]["message"]
    assert backup_run["figures"]["finished_update"]["run_id"] == "u1"


def test_restic_runs_on_half_of_the_cpus_unless_the_config_says_how_many(make_site) -> None:
    """GOMAXPROCS keeps restic's Go runtime off some CPUs, so a site's requests find one free (bench/README.md)."""
    site: Site = make_site(database=False)
    cfg = site.config()
    env = Restic(cfg.agent, cfg.site(site.id)).env()
    assert env["GOMAXPROCS"] == str(max(1, len(os.sched_getaffinity(0)) // 2))
    site.extra_agent["restic_cpus"] = 3
    cfg = site.config()
    assert Restic(cfg.agent, cfg.site(site.id)).env()["GOMAXPROCS"] == "3"
