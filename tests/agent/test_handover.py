"""The offboarding hand-over against real restic, S3 and MariaDB: what the client receives restores as backed up."""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from .conftest import MariaDB, Site, tree_digest

pytestmark = pytest.mark.agent

EXCLUDED = ("wp-content/cache",)


def rows(db: MariaDB, name: str) -> list[list[str]]:
    return db.sql("SELECT id, title, MD5(body) FROM posts ORDER BY id", name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_hand_over_holds_the_sites_files_and_dump_as_the_final_backup_took_them(
    make_site, mariadb: MariaDB, tmp_path: Path
) -> None:
    site: Site = make_site()
    assert site.db_name is not None
    files, table = tree_digest(site.root, EXCLUDED), rows(mariadb, site.db_name)
    final = site.agent("backup", site.id, "--reason", "offboard")
    assert final.returncode == 0, final.stderr
    # written after the final backup: not in the hand-over
    (site.root / "index.php").write_text("<?php echo 'after the final backup';\n")
    mariadb.sql("INSERT INTO posts (title, body) VALUES ('late', 'after')", site.db_name)

    out = tmp_path / "handover"
    made = site.agent("handover", site.id, "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "hand-over of snapshot" in made.stdout

    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{site.id}-database.sql.gz", f"{site.id}-files.tar.gz", f"{site.id}-manifest.json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.iterdir())
    manifest = json.loads((out / f"{site.id}-manifest.json").read_text())
    snaps = json.loads(site.restic("snapshots", "--json").stdout)
    assert manifest["snapshot"] == snaps[-1]["id"] and "reason:offboard" in snaps[-1]["tags"]
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256(out / name) and entry["bytes"] == (out / name).stat().st_size

    with tarfile.open(out / f"{site.id}-files.tar.gz") as archive:
        members = archive.getnames()
        assert members[0] == site.id and all(m == site.id or m.startswith(site.id + "/") for m in members)
        archive.extractall(tmp_path / "unpacked", filter="tar")
    assert tree_digest(tmp_path / "unpacked" / site.id, EXCLUDED) == files

    # the dump is byte for byte what the backup stored, and loads into an empty database as the rows were
    dump = gzip.decompress((out / f"{site.id}-database.sql.gz").read_bytes())
    stored = site.restic("dump", manifest["snapshot"], f"{site.state_dir}/dump/{site.id}/{site.db_name}.sql")
    assert dump == stored.stdout.encode()
    mariadb.sql(f"DROP DATABASE IF EXISTS {site.db_name}_elsewhere; CREATE DATABASE {site.db_name}_elsewhere")
    subprocess.run(
        ["mariadb", f"--socket={mariadb.socket}", "-uroot", f"{site.db_name}_elsewhere"], input=dump, check=True
    )
    assert rows(mariadb, f"{site.db_name}_elsewhere") == table


def test_a_static_site_hands_over_its_files_only_and_a_rerun_replaces_the_hand_over(make_site, tmp_path: Path) -> None:
    site: Site = make_site(database=False)
    site.retention = {"keep_last": 10}  # both snapshots kept (keep_daily would keep one of the day)
    assert site.agent("backup", site.id).returncode == 0
    first_snapshot = json.loads(site.restic("snapshots", "--json").stdout)[-1]["id"]
    (site.root / "added.txt").write_text("in the second snapshot only")
    assert site.agent("backup", site.id, "--reason", "offboard").returncode == 0
    out = tmp_path / "handover"
    assert site.agent("handover", site.id, "--out", str(out)).returncode == 0
    with tarfile.open(out / f"{site.id}-files.tar.gz") as archive:
        assert f"{site.id}/added.txt" in archive.getnames()

    # the older snapshot, asked for by id, replaces the whole hand-over (and leaves no .part behind)
    again = site.agent("handover", site.id, "--out", str(out), "--snapshot", first_snapshot[:8])
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{site.id}-files.tar.gz", f"{site.id}-manifest.json"]
    assert json.loads((out / f"{site.id}-manifest.json").read_text())["snapshot"] == first_snapshot
    with tarfile.open(out / f"{site.id}-files.tar.gz") as archive:
        assert f"{site.id}/added.txt" not in archive.getnames()


def test_without_a_complete_snapshot_there_is_no_hand_over(make_site, tmp_path: Path) -> None:
    site: Site = make_site()
    out = tmp_path / "handover"
    refused = site.agent("handover", site.id, "--out", str(out))
    assert refused.returncode == 1
    assert "no snapshots of this site" in refused.stderr
    assert not any(out.glob("*-manifest.json")) if out.exists() else True
