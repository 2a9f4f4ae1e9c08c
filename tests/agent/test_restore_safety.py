"""Restores that only take complete snapshots, stage everything first, and are all or nothing in place.

Real restic, moto S3 and MariaDB. The failures are real ones: S3 cut by a
proxy, a pack damaged in the bucket, an import the server rejects, a swap the
server refuses under a held lock, and the agent killed with SIGKILL while the
files are swapped in and the database swap waits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from carestack_agent.actions.backup import backup
from carestack_agent.actions.restore import RestoreOptions, do_restore, newest_complete_in_one_call, restore
from carestack_agent.jobs import Context
from carestack_agent.journal import Journal

from .conftest import ROOT, S3, MariaDB, Site, TcpProxy
from .test_robustness import restic_children

pytestmark = pytest.mark.agent


def manifest_in_motion(root: Path) -> dict[str, tuple[str, int, str]] | None:
    """The manifest of a tree another process may be moving right now; None if an entry vanished while
    it was read (then it is not yet the tree looked for)."""
    try:
        return manifest(root)
    except FileNotFoundError:
        return None


def manifest(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under root: (mode, size, sha256 of a file's content or a link's target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            digest = hashlib.sha256(os.readlink(p).encode()).hexdigest()
        else:
            digest = ""
        out[str(p.relative_to(root))] = (oct(st.st_mode), st.st_size if not stat.S_ISDIR(st.st_mode) else 0, digest)
    return out


def table_sums(db: MariaDB, name: str) -> dict[str, str]:
    tables = [r[0] for r in db.sql(f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{name}'")]
    return {t: db.sql(f"CHECKSUM TABLE `{t}` EXTENDED", name)[0][1] for t in sorted(tables)}


def leftovers(site: Site, db: MariaDB) -> list[str]:
    dirs = [p.name for p in site.root.parent.iterdir() if p.name.startswith(".cs-")]
    dbs = [r[0] for r in db.sql(f"SHOW DATABASES LIKE '{site.db_name}\\_\\_cs%'")] if site.db_name else []
    return dirs + dbs


def pending_renames(db: MariaDB) -> list[str]:
    return [r[0] for r in db.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'RENAME TABLE%'")]


def break_the_site(site: Site, db: MariaDB) -> None:
    """What a broken version does: new files, a new subdirectory, removed files, changed rows and a new table."""
    (site.root / "index.php").write_text("<?php fatal();\n")
    (site.root / "broken-extra.php").write_text("<?php // only the broken version ships this\n")
    (site.root / "wp-content/plugins/broken/sub").mkdir(parents=True)
    (site.root / "wp-content/plugins/broken/sub/readme.txt").write_text("new readme")
    (site.root / "wp-content/uploads/1/file-1.bin").unlink()
    (site.root / "wp-content/uploads/2").rename(site.root / "wp-content/uploads/2-moved")
    assert site.db_name
    db.sql("UPDATE posts SET title='broken' WHERE id=1; CREATE TABLE broken_log (id INT)", site.db_name)


@contextlib.contextmanager
def table_locked(site: Site, db: MariaDB) -> Iterator[None]:
    """A session holding a read lock on the site's `posts` table: a RENAME TABLE waits while it lasts."""
    holder = subprocess.Popen(
        ["mariadb", f"--socket={db.socket}", "--user=root", f"--database={site.db_name}", "-e",
         "LOCK TABLES posts READ; SELECT SLEEP(120)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def site_without_excludes(make_site) -> Iterator[Site]:
    site: Site = make_site()
    site.extra_site = {"exclude": []}  # the whole tree is in the snapshot: manifests compare all of it
    site.retention = {"keep_last": 10}
    yield site


def snapshot_state(site: Site, db: MariaDB) -> tuple[str, dict[str, tuple[str, int, str]], dict[str, str]]:
    result = backup(site.config(), site.id, "pre-update")
    assert result.ok, result.message
    assert site.db_name
    return str(result.figures["snapshot_id"]), manifest(site.root), table_sums(db, site.db_name)


def test_a_restore_into_a_staging_dir_left_by_the_same_run_gives_exactly_the_snapshot(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    """Recovery redoes a rollback under the interrupted run's id: the staging dir it left must not be merged in."""
    site = site_without_excludes
    snap, files, tables = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    cfg = site.config()
    ctx = Context.create(cfg, cfg.site(site.id), "update", 600)
    ctx.run_id = "20260101T000000-abcdef"
    # an interrupted rollback of this run: its staging dir holds the broken tree (parked by the exchange)
    parked_root = site.root.parent / f".cs-restore-{site.root.name}-{ctx.run_id}"
    parked = parked_root / site.root.relative_to("/")
    parked.parent.mkdir(parents=True)
    shutil.copytree(site.root, parked, symlinks=True)
    # and another run's leftover, and a directory of another path that only looks alike
    other = site.root.parent / f".cs-restore-{site.root.name}-20251231T235959-0a0b0c"
    (other / "junk").mkdir(parents=True)
    alike = site.root.parent / ".cs-restore-www-2-20251231T235959-0a0b0c"
    alike.mkdir()

    summary = do_restore(ctx, RestoreOptions(snapshot=snap))
    assert summary.startswith(f"restored snapshot {snap}")
    assert manifest(site.root) == files
    assert table_sums(mariadb, site.db_name or "") == tables
    assert leftovers(site, mariadb) == [alike.name]  # only the other path's directory stays
    assert sorted(ctx.figures["leftovers_removed"]) == sorted([str(parked_root), str(other)])
    assert ctx.figures["mixed_window_ms"] >= 0  # journaled: files back, database not yet (figures in bench/)


def test_kill_9_between_the_file_swap_and_the_database_swap_then_the_next_restore_makes_the_site_whole(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    site = site_without_excludes
    snap, files, tables = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    # a session reading the live table makes the RENAME TABLE wait: the agent sits inside the swap window
    with table_locked(site, mariadb):
        site.write_config()
        env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.config_path), "PYTHONPATH": str(ROOT / "agent")}
        agent = subprocess.Popen(
            [sys.executable, "-m", "carestack_agent", "restore", site.id, "--snapshot", snap], env=env,
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and agent.poll() is None and manifest_in_motion(site.root) != files:
            time.sleep(0.05)
        assert agent.poll() is None, "the restore ended before its database swap"
        while time.monotonic() < deadline and not pending_renames(mariadb):
            time.sleep(0.05)
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        for thread in pending_renames(mariadb):  # the statement dies with the agent, as if it was never sent
            mariadb.sql(f"KILL {thread}")
    # the mixed state the kill left: the snapshot's files, the broken database, the old tree parked beside
    assert manifest(site.root) == files
    assert table_sums(mariadb, site.db_name or "") == broken_tables
    parked = [p for p in site.root.parent.iterdir() if p.name.startswith(f".cs-restore-{site.root.name}-")]
    assert len(parked) == 1 and manifest(parked[0] / site.root.relative_to("/")) == broken_files

    # the next job, whatever its verb (here the scheduled backup), finishes the restore before its own work
    nxt = site.agent("backup", site.id, "--reason", "scheduled")
    assert nxt.returncode == 0, nxt.stderr
    assert manifest(site.root) == files
    assert table_sums(mariadb, site.db_name or "") == tables
    assert leftovers(site, mariadb) == []
    end = [e for e in Journal(site.state_dir).entries() if e["event"] == "end"][-1]
    assert end["job"] == "backup" and end["figures"]["finished_restore"]["message"].startswith(
        f"restored snapshot {snap}"
    )


def test_kill_9_while_staging_changes_nothing_and_the_next_job_removes_what_it_left(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    site = site_without_excludes
    for i in range(30):
        (site.root / f"wp-content/uploads/big-{i}.bin").write_bytes(os.urandom(1024 * 1024))
    snap, _, _ = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    site.write_config()
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.config_path), "PYTHONPATH": str(ROOT / "agent")}
    agent = subprocess.Popen(
        [sys.executable, "-m", "carestack_agent", "restore", site.id, "--snapshot", snap], env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    staged = site.root.parent / f".cs-restore-{site.root.name}-x"
    while time.monotonic() < deadline and agent.poll() is None:
        found = [p for p in site.root.parent.iterdir() if p.name.startswith(".cs-restore-")]
        if found and any(found[0].rglob("big-*.bin")):
            staged = found[0]
            break
        time.sleep(0.02)
    assert agent.poll() is None, "the restore ended before it could be killed while staging"
    children = restic_children(agent.pid)
    # The dump (a file beside its mount point, then a database) stages beside the files: it may have begun.
    dumps = site.state_dir / "dump"
    staging_dump = [str(p) for p in dumps.iterdir() if p.name.startswith(".cs-restore-")] if dumps.is_dir() else []
    staging_db = [name for name in leftovers(site, mariadb) if not name.startswith(".cs-")]
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait()
    for _ in range(100):  # restic is gone too (its lock is stale now, and the next job removes it)
        if not any(Path(f"/proc/{p}").exists() for p in children):
            break
        time.sleep(0.05)
    assert staged.exists()  # a half-restored tree beside the site; the site itself untouched
    assert manifest(site.root) == broken_files and table_sums(mariadb, site.db_name or "") == broken_tables

    nxt = site.agent("check", site.id)
    assert nxt.returncode == 0, nxt.stderr
    # The staging database stays (never live) until the next restore recreates it: an import that died
    # after its swap keeps the previous site's tables under that name for its own undo.
    assert leftovers(site, mariadb) == staging_db
    assert manifest(site.root) == broken_files and table_sums(mariadb, site.db_name or "") == broken_tables
    end = [e for e in Journal(site.state_dir).entries() if e["event"] == "end"][-1]
    assert end["figures"]["leftovers_removed"] == [str(staged), *staging_dump]
    done = site.agent("restore", site.id, "--snapshot", snap)
    assert done.returncode == 0, done.stderr
    assert leftovers(site, mariadb) == []


def test_a_database_swap_that_fails_after_the_files_were_swapped_swaps_them_back(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    site = site_without_excludes
    snap, _, _ = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    with table_locked(site, mariadb):
        mariadb.sql("SET GLOBAL lock_wait_timeout = 2")  # the agent's RENAME TABLE gives up instead of waiting
        try:
            result = restore(site.config(), site.id, RestoreOptions(snapshot=snap))
        finally:
            mariadb.sql("SET GLOBAL lock_wait_timeout = DEFAULT")
    assert not result.ok
    assert f"database {site.db_name} failed (" in result.message and "Lock wait timeout" in result.message
    assert result.message.endswith(
        "the files were swapped back: the site has its previous files and its previous database (as before the restore)"
    )
    assert manifest(site.root) == broken_files
    assert table_sums(mariadb, site.db_name or "") == broken_tables
    assert leftovers(site, mariadb) == []


def test_a_failed_database_import_changes_nothing(site_without_excludes: Site, mariadb: MariaDB) -> None:
    site = site_without_excludes
    mariadb.sql("INSERT INTO posts (title, body) VALUES ('long', REPEAT('y', 60000))", site.db_name)
    snap, _, _ = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    mariadb.sql("SET GLOBAL max_allowed_packet = 1024")  # the dump's 60 kB statement is refused by the server
    try:
        result = restore(site.config(), site.id, RestoreOptions(snapshot=snap))
    finally:
        mariadb.sql("SET GLOBAL max_allowed_packet = DEFAULT")
    assert not result.ok
    assert result.message.startswith("mariadb import failed:"), result.message
    assert manifest(site.root) == broken_files
    assert table_sums(mariadb, site.db_name or "") == broken_tables
    assert leftovers(site, mariadb) == []


def test_s3_cut_mid_restore_changes_nothing_and_the_next_restore_succeeds(make_site, s3: S3, mariadb: MariaDB) -> None:
    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    proxy.start()
    site: Site = make_site(endpoint=f"http://127.0.0.1:{proxy.port}")
    site.extra_site = {"exclude": []}
    site.extra_agent = {"retries": 1, "retry_backoff_seconds": 0.2}
    for i in range(40):
        (site.root / f"wp-content/uploads/big-{i}.bin").write_bytes(os.urandom(1024 * 1024))
    snap, files, tables = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")

    def cut_when_restoring() -> None:
        for _ in range(1000):
            if any(p.name.startswith(".cs-restore-") for p in site.root.parent.iterdir()):
                break
            time.sleep(0.01)
        proxy.stop()  # S3 goes away while restic restores into the staging directory

    cutter = threading.Thread(target=cut_when_restoring)
    cutter.start()
    failed = restore(site.config(), site.id, RestoreOptions(snapshot=snap))
    cutter.join()
    assert not failed.ok
    assert failed.message.startswith("restic restore"), failed.message
    assert manifest(site.root) == broken_files
    assert table_sums(mariadb, site.db_name or "") == broken_tables
    assert leftovers(site, mariadb) == []

    proxy.start()
    ok = restore(site.config(), site.id, RestoreOptions(snapshot=snap))
    assert ok.ok, ok.message
    assert manifest(site.root) == files and table_sums(mariadb, site.db_name or "") == tables
    proxy.stop()


def test_a_damaged_pack_fails_the_restore_before_anything_changes(
    site_without_excludes: Site, s3: S3, mariadb: MariaDB
) -> None:
    site = site_without_excludes
    snap, _, _ = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    client = s3.client()
    packs = client.list_objects_v2(Bucket=site.bucket, Prefix=f"{site.id}/data/")["Contents"]
    biggest = max(packs, key=lambda o: o["Size"])  # file contents, not the small tree pack
    body = bytearray(client.get_object(Bucket=site.bucket, Key=biggest["Key"])["Body"].read())
    for i in range(100, len(body) - 100, 997):
        body[i] ^= 0xFF
    client.put_object(Bucket=site.bucket, Key=biggest["Key"], Body=bytes(body))

    result = restore(site.config(), site.id, RestoreOptions(snapshot=snap))
    assert not result.ok
    assert result.message.startswith(("restic restore failed", "restic dump failed")), result.message
    assert manifest(site.root) == broken_files
    assert table_sums(mariadb, site.db_name or "") == broken_tables
    assert leftovers(site, mariadb) == []


# -- which snapshots count ----------------------------------------------------------------


def _snapshots(site: Site) -> list[dict]:
    return sorted(json.loads(site.restic("snapshots", "--json").stdout), key=lambda s: s["time"])


def _restic_backup(site: Site, *tags: str, with_dump: bool) -> str:
    """A snapshot as the agent's backup writes it (same paths and tags), made by restic itself."""
    dump_dir = site.state_dir / "dump" / site.id
    dump_dir.mkdir(parents=True, exist_ok=True)
    for old in dump_dir.iterdir():
        old.unlink()
    if with_dump:
        assert site.mariadb is not None and site.db_name is not None
        dump = subprocess.run(
            ["mariadb-dump", f"--socket={site.mariadb.socket}", "--user=root", site.db_name],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        (dump_dir / f"{site.db_name}.sql").write_bytes(dump)
    args = ["backup", "--host", "test-host"]
    for tag in (f"site:{site.id}", f"db:{site.db_name}", *tags):
        args += ["--tag", tag]
    out = site.restic(*args, str(site.root), str(dump_dir), json_out=True).stdout
    for old in dump_dir.iterdir():
        old.unlink()
    return str(json.loads(out.strip().splitlines()[-1])["snapshot_id"])


def test_only_complete_snapshots_are_restored_counted_and_an_incomplete_one_is_forgotten_next_run(
    site_without_excludes: Site, mariadb: MariaDB, tmp_path: Path
) -> None:
    site = site_without_excludes
    site.retention = {"keep_last": 1}
    good, files, tables = snapshot_state(site, mariadb)
    snaps = _snapshots(site)
    assert len(snaps) == 1 and "complete" in snaps[0]["tags"] and "incomplete" not in snaps[0]["tags"]
    assert snaps[0]["short_id"] == good  # the backup reports the id the complete tag gave it

    # a failed backup whose cleanup could not reach S3: newer, tagged incomplete, without its dump
    break_the_site(site, mariadb)
    bad = _restic_backup(site, "reason:scheduled", "owner:0:0", "incomplete", with_dump=False)
    assert restore(site.config(), site.id).figures["snapshot_id"] == good
    assert manifest(site.root) == files and table_sums(mariadb, site.db_name or "") == tables

    refused = restore(site.config(), site.id, RestoreOptions(snapshot=bad))
    assert not refused.ok and refused.message == (
        f"snapshot {bad} is incomplete (its backup failed: files, database dump or restic did not finish): "
        "not restored; nothing was changed"
    )

    target = restore(site.config(), site.id, RestoreOptions(target=tmp_path / "t"))
    dump = tmp_path / "t" / str(site.state_dir / "dump" / site.id / f"{site.db_name}.sql").lstrip("/")
    assert target.ok and target.figures["snapshot_id"] == good
    assert target.message.endswith(f"database dump left as a file: {dump}") and dump.stat().st_size > 1000

    # the next backup: one complete snapshot kept by keep_last 1, the incomplete one forgotten (not counted)
    nxt = backup(site.config(), site.id, "scheduled")
    assert nxt.ok, nxt.message
    assert nxt.figures["incomplete_forgotten"] == [bad]
    after = _snapshots(site)
    assert [s["short_id"] for s in after] == [nxt.figures["snapshot_id"]]
    assert "complete" in after[0]["tags"]


def test_a_restore_to_a_target_of_a_site_without_database_names_no_dump(make_site, tmp_path: Path) -> None:
    site: Site = make_site(database=False)
    assert backup(site.config(), site.id).ok
    result = restore(site.config(), site.id, RestoreOptions(target=tmp_path / "t"))
    assert result.ok, result.message
    assert "dump" not in result.message and result.message.endswith(f"files under {tmp_path / 't'}")


def test_snapshots_from_before_the_complete_tag_count_when_they_hold_their_dump(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    site = site_without_excludes
    files, tables = manifest(site.root), table_sums(mariadb, site.db_name or "")
    with_dump = _restic_backup(site, "reason:scheduled", "owner:0:0", with_dump=True)
    break_the_site(site, mariadb)
    without = _restic_backup(site, "reason:scheduled", "owner:0:0", with_dump=False)  # a dump that failed

    result = restore(site.config(), site.id)
    assert result.ok, result.message
    assert result.figures["snapshot_id"] == with_dump
    assert result.figures["snapshots_passed_over"] == [
        f"snapshot {without} lacks the database dump {site.state_dir}/dump/{site.id}/{site.db_name}.sql "
        "(made before snapshots were marked complete)"
    ]
    assert manifest(site.root) == files and table_sums(mariadb, site.db_name or "") == tables

    nxt = backup(site.config(), site.id, "scheduled")  # tags them once: the one without its dump is forgotten
    assert nxt.ok, nxt.message
    assert nxt.figures["pre_tag_snapshots"] == {"complete": [with_dump], "incomplete": [without]}
    left = _snapshots(site)
    assert len(left) == 2 and all("complete" in s["tags"] for s in left)
    assert without not in [s["short_id"] for s in left]


def test_the_usual_restore_chooses_and_checks_its_snapshot_in_one_restic_call(
    site_without_excludes: Site, mariadb: MariaDB
) -> None:
    """The newest complete snapshot comes from one `restic ls` (one repository open); anything unusual (a
    time or id asked for, a complete snapshot lacking a part) is chosen from the full list as before."""
    site = site_without_excludes
    assert backup(site.config(), site.id).ok
    newest = _snapshots(site)[-1]["short_id"]
    cfg = site.config()
    ctx = Context.create(cfg, cfg.site(site.id), "restore", 600)
    ctx.restic.env()
    plan = newest_complete_in_one_call(ctx, RestoreOptions())
    assert plan is not None and plan.short == newest and plan.database and plan.files
    assert newest_complete_in_one_call(ctx, RestoreOptions(snapshot=newest)) is None

    lacking = _restic_backup(site, "reason:scheduled", "owner:0:0", "complete", with_dump=False)
    assert newest_complete_in_one_call(ctx, RestoreOptions()) is None  # it lacks the dump: the full path decides
    result = restore(site.config(), site.id)
    assert not result.ok
    assert result.message.endswith(
        f"snapshot {lacking} lacks the database dump {site.state_dir}/dump/{site.id}/{site.db_name}.sql: "
        "not restored; nothing was changed"
    )


def test_files_that_fail_to_stage_leave_no_staged_database_or_dump_behind(
    site_without_excludes: Site, mariadb: MariaDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stages beside the files: when the files fail, what the database staged meanwhile goes."""
    from carestack_agent.actions import restore as restore_action
    from carestack_agent.jobs import JobFailed

    site = site_without_excludes
    snap, _, _ = snapshot_state(site, mariadb)
    break_the_site(site, mariadb)
    broken_files, broken_tables = manifest(site.root), table_sums(mariadb, site.db_name or "")

    def files_fail_after_the_database(ctx: Context, plan: object, staged: list[object]) -> None:
        deadline = time.monotonic() + 60
        while not (ctx.figures.get("stage_database_s") or time.monotonic() > deadline):
            time.sleep(0.05)  # the database has staged (its time is in the figures) ...
        raise JobFailed("the files could not be staged (injected)")  # ... and then the files fail

    monkeypatch.setattr(restore_action, "_stage_files", files_fail_after_the_database)
    cfg = site.config()
    ctx = Context.create(cfg, cfg.site(site.id), "restore", 600)
    with pytest.raises(JobFailed, match="injected"):
        do_restore(ctx, RestoreOptions(snapshot=snap))
    assert ctx.figures["stage_database_s"] > 0
    assert leftovers(site, mariadb) == []
    dumps = site.state_dir / "dump"
    assert not dumps.is_dir() or [p.name for p in dumps.iterdir() if p.name.startswith(".cs-")] == []
    assert manifest(site.root) == broken_files and table_sums(mariadb, site.db_name or "") == broken_tables
