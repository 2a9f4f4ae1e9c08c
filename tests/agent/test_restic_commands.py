"""restic's command lines as the agent builds them: pure functions, checked without running restic."""

from __future__ import annotations

from pathlib import Path

import pytest
from carestack_agent import restic_commands as rc
from carestack_agent.config import Retention


def test_a_backup_tags_site_reason_database_and_owner_and_lists_excludes_before_the_paths() -> None:
    args = rc.backup(
        host="shared-1",
        site_id="bakery-www",
        reason="pre-update",
        paths=[Path("/srv/www/bakery-www"), Path("/var/lib/carestack/dump/bakery-www")],
        database="bakery_www",
        owner_tag="owner:1001:1001",
        exclude=["*.log", "cache/"],
    )
    assert args == [
        "backup", "--host", "shared-1",
        "--tag", "site:bakery-www", "--tag", "reason:pre-update", "--tag", "incomplete",
        "--tag", "db:bakery_www", "--tag", "owner:1001:1001",
        "--exclude", "*.log", "--exclude", "cache/",
        "/srv/www/bakery-www", "/var/lib/carestack/dump/bakery-www",
    ]  # fmt: skip


def test_a_backup_without_database_or_owner_has_no_such_tags() -> None:
    args = rc.backup(host="h", site_id="s", reason="scheduled", paths=[Path("/srv/s")])
    assert args == [
        "backup", "--host", "h", "--tag", "site:s", "--tag", "reason:scheduled", "--tag", "incomplete", "/srv/s",
    ]  # fmt: skip


def test_forget_keeps_only_the_kinds_the_retention_keeps_in_restics_order() -> None:
    # no agent-side defaults
    plan = {f"keep_{k}": 0 for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")}
    keep = Retention(**plan | {"keep_yearly": 2, "keep_daily": 7, "keep_hourly": 24, "keep_last": 3})
    assert rc.keep_flags(keep) == [
        "--keep-last", "3", "--keep-hourly", "24", "--keep-daily", "7", "--keep-yearly", "2",
    ]  # fmt: skip
    assert rc.forget_by_retention("bakery-www", Retention(**plan | {"keep_weekly": 4})) == [
        "forget", "--tag", "site:bakery-www,complete", "--group-by", "", "--keep-weekly", "4",
    ]  # fmt: skip
    # incomplete snapshots: all of them (none carries the tag kept), never counted by the keep rules above
    assert rc.forget_incomplete("s") == [
        "forget", "--tag", "site:s,incomplete", "--group-by", "", "--keep-tag", "complete",
    ]  # fmt: skip
    assert rc.mark_complete("ab12") == ["tag", "--remove", "incomplete", "--add", "complete", "ab12"]
    assert rc.mark(["a", "b"], complete=False) == ["tag", "--add", "incomplete", "a", "b"]
    assert rc.forget_snapshot("ab12cd34") == ["forget", "ab12cd34"]


def test_check_reads_all_data_with_one_subset_else_the_given_subset() -> None:
    assert rc.check(1, 1) == ["check", "--read-data"]
    assert rc.check(3, 7) == ["check", "--read-data-subset=3/7"]
    for bad in ((0, 7), (8, 7)):
        with pytest.raises(ValueError, match=f"data subset {bad[0]}/7"):
            rc.check(*bad)


def test_restore_snapshots_and_dump_select_what_they_name() -> None:
    assert rc.restore("ab12", Path("/srv/.cs-restore-x-1"), include=Path("/srv/x")) == [
        "restore", "ab12", "--target", "/srv/.cs-restore-x-1", "--include", "/srv/x",
    ]  # fmt: skip
    assert rc.restore("ab12", Path("/tmp/t"), exclude=[Path("/var/lib/carestack/dump/s")]) == [
        "restore", "ab12", "--target", "/tmp/t", "--exclude", "/var/lib/carestack/dump/s",
    ]  # fmt: skip
    assert rc.restore("ab12", Path("/tmp/t")) == ["restore", "ab12", "--target", "/tmp/t"]
    assert rc.snapshots("bakery-www") == ["snapshots", "--tag", "site:bakery-www"]
    assert rc.ls("ab12", [Path("/srv/x"), Path("/d/x")]) == ["ls", "ab12", "/srv/x", "/d/x"]
    assert rc.dump("ab12", "/var/lib/carestack/dump/s/db.sql") == ["dump", "ab12", "/var/lib/carestack/dump/s/db.sql"]


def test_repository_housekeeping_commands() -> None:
    assert rc.init() == ["init"]
    assert rc.cat_config() == ["cat", "config"]
    assert rc.unlock() == ["unlock"]  # never --remove-all
    assert rc.prune() == ["prune"]


def test_restic_flags_are_written_only_in_the_command_module() -> None:
    source = Path(rc.__file__).parent
    offenders = [
        str(p.relative_to(source))
        for p in source.rglob("*.py")
        if p.name != "restic_commands.py" and any(f in p.read_text() for f in ('"--keep-', '"--tag"', '"--read-data'))
    ]
    assert offenders == []
