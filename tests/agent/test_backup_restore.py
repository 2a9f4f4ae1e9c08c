"""Backup and restore against real restic, S3 (moto, IAM enforced) and MariaDB."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

import pytest
from carestack_agent.actions.backup import backup
from carestack_agent.actions.restore import RestoreOptions, restore
from carestack_agent.journal import Journal

from .conftest import MariaDB, PushRecorder, Site, tree_digest

pytestmark = pytest.mark.agent

EXCLUDED = ("wp-content/cache",)


def rows(db: MariaDB, name: str) -> list[list[str]]:
    return db.sql("SELECT id, title, MD5(body) FROM posts ORDER BY id", name)


def test_two_snapshots_restore_files_and_rows_as_they_were(
    make_site, mariadb: MariaDB, push: PushRecorder, tmp_path: Path
) -> None:
    site: Site = make_site(push=push)
    site.retention = {"keep_last": 10}
    cfg = site.config()
    files_1, rows_1 = tree_digest(site.root, EXCLUDED), rows(mariadb, site.db_name)

    first = backup(cfg, site.id, "scheduled")
    assert first.ok, first.message
    snap_1 = first.figures["snapshot_id"]
    assert first.figures["dump_bytes"] > 5000

    # change files (new, modified, deleted) and rows
    (site.root / "index.php").write_text("<?php echo 'changed';\n")
    (site.root / "wp-content/uploads/new.txt").write_text("new file")
    (site.root / "wp-content/uploads/0/file-0.bin").unlink()
    mariadb.sql(
        "UPDATE posts SET title='edited' WHERE id=1; INSERT INTO posts (title, body) VALUES ('third', 'b')",
        site.db_name,
    )
    files_2, rows_2 = tree_digest(site.root, EXCLUDED), rows(mariadb, site.db_name)
    assert files_2 != files_1 and rows_2 != rows_1

    second = backup(cfg, site.id, "manual")
    assert second.ok, second.message
    snap_2 = second.figures["snapshot_id"]
    assert snap_2 != snap_1
    assert second.figures["files_new"] >= 1 and second.figures["files_changed"] >= 1

    # one snapshot per run, files + dump together, tagged
    snaps = json.loads(site.restic("snapshots", "--json").stdout)
    assert len(snaps) == 2
    for s, reason in zip(sorted(snaps, key=lambda s: s["time"]), ("scheduled", "manual"), strict=True):
        assert set(s["tags"]) == {f"site:{site.id}", f"reason:{reason}", f"db:{site.db_name}", "owner:0:0", "complete"}
        assert s["hostname"] == "test-host"
        assert str(site.root) in s["paths"] and len(s["paths"]) == 2
    listing = site.restic("ls", snap_1).stdout
    assert f"/dump/{site.id}/{site.db_name}.sql" in listing

    # restore snapshot 1 onto another path and into another database: both as at snapshot 1
    r1 = restore(
        cfg, site.id, RestoreOptions(snapshot=snap_1, target=tmp_path / "r1", database_name=f"{site.db_name}_r1")
    )
    assert r1.ok, r1.message
    assert tree_digest(tmp_path / "r1" / site.root.relative_to("/"), EXCLUDED) == files_1
    assert rows(mariadb, f"{site.db_name}_r1") == rows_1

    # restore snapshot 1 in place: the live site goes back to snapshot 1
    back = restore(cfg, site.id, RestoreOptions(snapshot=snap_1))
    assert back.ok, back.message
    assert tree_digest(site.root, EXCLUDED) == files_1
    assert rows(mariadb, site.db_name) == rows_1
    assert not list(site.root.parent.glob(".cs-restore-*"))
    assert mariadb.sql(f"SHOW DATABASES LIKE '{site.db_name}\\_\\_cs%'") == []

    # and forward again to snapshot 2 (the latest by default)
    fwd = restore(cfg, site.id)
    assert fwd.ok, fwd.message
    assert tree_digest(site.root, EXCLUDED) == files_2
    assert rows(mariadb, site.db_name) == rows_2

    # journal and heartbeats
    ends = [e for e in Journal(site.state_dir).entries() if e["event"] == "end"]
    assert [e["job"] for e in ends] == ["backup", "backup", "restore", "restore", "restore"]
    assert ends[0]["figures"]["snapshot_id"] == snap_1
    assert len(push.requests) == 2  # restores push nothing (no token for them)
    assert all(r.startswith("/api/push/tok-backup-123?status=up") for r in push.requests)
    assert snap_2 in push.requests[1]


def test_restore_before_time_and_onto_standby(
    make_site, mariadb: MariaDB, standby_mariadb: MariaDB, tmp_path: Path
) -> None:
    site: Site = make_site()
    site.retention = {"keep_last": 10}
    cfg = site.config()
    first = backup(cfg, site.id)
    assert first.ok, first.message
    snaps = json.loads(site.restic("snapshots", "--json").stdout)
    t1 = snaps[0]["time"]
    mariadb.sql("DELETE FROM posts", site.db_name)
    (site.root / "index.php").unlink()
    assert backup(cfg, site.id).ok

    from carestack_agent.actions.restore import parse_time

    opts = RestoreOptions(
        before=parse_time(t1), target=tmp_path / "standby-www", database_socket=standby_mariadb.socket
    )
    result = restore(cfg, site.id, opts)
    assert result.ok, result.message
    assert result.figures["snapshot_id"] == first.figures["snapshot_id"]
    restored = tmp_path / "standby-www" / site.root.relative_to("/")
    assert (restored / "index.php").exists()
    assert len(standby_mariadb.sql("SELECT id FROM posts", site.db_name)) == 2


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, gid)


def test_a_restore_where_the_sites_user_has_other_ids_gives_the_files_to_that_user(make_site) -> None:
    """Like the standby, which creates the sites' users in its own order: restic restores numeric owners."""
    site: Site = make_site()
    there, here = pwd.getpwnam("daemon"), pwd.getpwnam("nobody")
    _chown_tree(site.root, there.pw_uid, there.pw_gid)  # the site's user on the server it was backed up on
    foreign = site.root / "wp-content/uploads/by-the-web-server.txt"
    foreign.write_text("written by PHP as www-data")
    os.chown(foreign, 0, 33)
    cfg = site.config()
    first = backup(cfg, site.id)
    assert first.ok, first.message
    [snap] = json.loads(site.restic("snapshots", "--json").stdout)
    assert f"owner:{there.pw_uid}:{there.pw_gid}" in snap["tags"]

    shutil.rmtree(site.root)  # the other server: the same site root, owned by the site's user there
    site.root.mkdir()
    os.chown(site.root, here.pw_uid, here.pw_gid)
    result = restore(cfg, site.id)

    assert result.ok, result.message
    owned = {p: (p.lstat().st_uid, p.lstat().st_gid) for p in [site.root, *site.root.rglob("*")]}
    assert owned.pop(foreign) == (0, 33)  # an entry of another owner keeps it
    assert set(owned.values()) == {(here.pw_uid, here.pw_gid)}
    assert result.figures["owner_mapped"] == f"{there.pw_uid}:{there.pw_gid} -> {here.pw_uid}:{here.pw_gid}"
    assert result.figures["owner_mapped_entries"] == len(owned)


def test_spool_transport_for_hosts_without_fuse(make_site, mariadb: MariaDB, tmp_path: Path) -> None:
    site: Site = make_site()
    site.extra_agent = {"dump_transport": "spool"}
    cfg = site.config()
    rows_1 = rows(mariadb, site.db_name)
    result = backup(cfg, site.id)
    assert result.ok, result.message
    assert result.figures["dump_bytes"] > 5000
    assert list((site.state_dir / "dump" / site.id).iterdir()) == []  # the spooled dump is gone
    # same layout in the snapshot: the usual restore finds the dump
    mariadb.sql("DELETE FROM posts", site.db_name)
    back = restore(cfg, site.id, RestoreOptions(files=False))
    assert back.ok, back.message
    assert rows(mariadb, site.db_name) == rows_1
