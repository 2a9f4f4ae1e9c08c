"""The restore drill on real restic, S3 (moto, IAM enforced) and two MariaDB servers (the site's and the
standby's): a drill that passes records RTO and RPO, one whose snapshot holds a broken dump fails with
the reason, one whose page check fails says which page; the scratch site is gone afterwards every time,
and the live site (files and tables) is exactly as before. The scratch vhost is served by PHP's built-in
server in front of the scratch directory (nginx reads the vhost file on the lab's standby)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from carestack_agent import config as agent_config
from carestack_agent import exitcodes
from carestack_agent.actions import drill as drill_action
from carestack_agent.actions.backup import backup
from carestack_agent.restic_commands import COMPLETE

from infra.agent_config import dumps

from .conftest import (
    PLAN_JOBS,
    PLAN_PERF,
    PLAN_RETENTION,
    PLAN_UPDATES,
    RESTIC,
    ROOT,
    MariaDB,
    PushRecorder,
    Site,
    free_port,
    tree_digest,
    write_secret,
)
from .test_restore_safety import table_sums

pytestmark = pytest.mark.agent

KEYWORD = "Welcome: hello"
INDEX = """<?php
require __DIR__ . '/wp-config.php';
$db = new mysqli('localhost', 'root', '', DB_NAME, 0, getenv('DRILL_DB_SOCKET'));
$row = $db->query('SELECT title FROM posts ORDER BY id LIMIT 1')->fetch_row();
echo 'Welcome: ' . $row[0];
"""
# PHP's built-in server as the scratch vhost: it serves whatever the drill restored under the scratch docroot.
ROUTER = """<?php
$root = getenv('DRILL_DOCROOT');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = $root . ($path === '/' ? '/index.php' : $path);
if (!is_file($file)) { http_response_code(404); echo 'not found'; return true; }
if (substr($file, -4) === '.php') { chdir(dirname($file)); include $file; return true; }
readfile($file);
return true;
"""


@dataclass
class Standby:
    """The standby's agent config of the site: same repository and keys, the standby's database server,
    the site's own root absent (it does not run there), the drill table."""

    dir: Path
    config_path: Path
    scratch_dir: Path
    vhost_dir: Path
    port: int
    db: MariaDB
    site: Site
    push: PushRecorder

    def config(self) -> agent_config.Config:
        return agent_config.load(self.config_path)

    def scratch_names(self) -> list[str]:
        """Everything of a scratch site that exists: files, vhost, databases (by the drill's names)."""
        found = [str(p) for p in self.scratch_dir.glob("*")] + [str(p) for p in self.vhost_dir.glob("*")]
        return found + [r[0] for r in self.db.sql("SHOW DATABASES LIKE 'drill\\_%'")]


def standby_for(site: Site, db: MariaDB, push: PushRecorder, base: Path) -> Standby:
    assert site.db_name is not None
    port = free_port()
    standby = Standby(base, base / "agent.toml", base / "scratch", base / "vhosts", port, db, site, push)
    write_secret(base / "secrets/push.env", "DRILL=tok-drill-808\n")
    agent = {"host": "standby-1", "state_dir": str(base / "state"), "restic": RESTIC, "nice": 0, "retries": 1,
             "retry_backoff_seconds": 0.5, "push_timeout_seconds": 2, "probe_attempts": 2,
             "probe_retry_seconds": 0.5, "probe_settle_seconds": 0}  # fmt: skip
    table = {
        "domain": f"{site.id}.example",
        "kind": "wordpress",
        "root": str(base / "live" / site.id),  # the site's own root on the standby: absent, it runs elsewhere
        "paths": [str(base / "live" / site.id)],
        "exclude": [],
        "repository": site.repository,
        "password_file": str(site.dir / "secrets/restic-password"),
        "credentials_file": str(site.dir / "secrets/s3.env"),
        "push_base_url": push.base_url,
        "push_tokens_file": str(base / "secrets/push.env"),
        "database": {"name": site.db_name, "socket": str(db.socket)},
        "retention": PLAN_RETENTION | {"keep_last": 10},
        "jobs": PLAN_JOBS,
        "updates": PLAN_UPDATES | {"providers": []},
        "perf": PLAN_PERF,
        "checks": [{"path": "/", "keyword": KEYWORD, "status": 200}],
        "drill": {"timeout_seconds": 600, "scratch_dir": str(standby.scratch_dir), "port": port,
                  "vhost_dir": str(standby.vhost_dir), "reload_command": ["/bin/true"]},
    }  # fmt: skip
    standby.config_path.write_text(dumps({"agent": agent, "sites": {site.id: table}}))
    return standby


@pytest.fixture
def drilled(make_site, mariadb: MariaDB, standby_mariadb: MariaDB, tmp_path: Path) -> Iterator[tuple[Site, Standby]]:
    """A site with a PHP page reading its database, backed up once, and its standby's scratch vhost served."""
    push = PushRecorder()
    site: Site = make_site()
    site.retention = {"keep_last": 10}
    (site.root / "wp-config.php").write_text(f"<?php\ndefine('DB_NAME', '{site.db_name}');\n")
    (site.root / "index.php").write_text(INDEX)
    first = backup(site.config(), site.id, "scheduled")
    assert first.ok, first.message
    standby = standby_for(site, standby_mariadb, push, tmp_path / "standby")
    docroot = standby.scratch_dir / site.id / site.root.relative_to("/")
    (tmp_path / "router.php").write_text(ROUTER)
    server = subprocess.Popen(
        ["php", "-S", f"127.0.0.1:{standby.port}", str(tmp_path / "router.php")],
        env={"PATH": "/usr/bin:/bin", "DRILL_DOCROOT": str(docroot), "DRILL_DB_SOCKET": str(standby_mariadb.socket)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield site, standby
    finally:
        server.terminate()
        server.wait(timeout=10)
        push.close()


def _heartbeats(site_push: PushRecorder) -> list[dict[str, list[str]]]:
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(r).query) for r in site_push.requests]


def test_a_drill_restores_verifies_measures_and_removes_its_scratch_site(
    drilled: tuple[Site, Standby], mariadb: MariaDB
) -> None:
    site, standby = drilled
    assert site.db_name is not None
    files_before, tables_before = tree_digest(site.root), table_sums(mariadb, site.db_name)

    result = drill_action.drill(standby.config(), site.id)

    assert result.ok, result.message
    figures = result.figures
    assert figures["rto_seconds"] == pytest.approx(figures["restore_seconds"] + figures["verify_seconds"], abs=0.2)
    assert 0 < figures["rto_seconds"] < figures["rto_target_seconds"] == 600
    assert 0 <= figures["rpo_seconds"] < 600  # the snapshot was taken a moment ago
    assert [p["page"] for p in figures["pages"]] == [f"{site.id}.example/"] and figures["pages"][0]["ok"]
    assert result.message.startswith(f"snapshot {figures['snapshot_id']} restored and 1 page(s) ok: RTO ")
    # the journal's end carries the figures; the scratch site is gone; the live site is as it was
    ends = [e for e in _journal(standby) if e.get("event") == "end"]
    assert ends[-1]["job"] == "drill" and ends[-1]["figures"]["rto_seconds"] == figures["rto_seconds"]
    assert standby.scratch_names() == []
    assert (tree_digest(site.root), table_sums(mariadb, site.db_name)) == (files_before, tables_before)
    [beat] = _heartbeats(standby.push)  # the DRILL push monitor hears the RTO and RPO
    assert standby.push.requests[0].startswith("/api/push/tok-drill-808?")
    assert beat["status"] == ["up"] and "RTO" in beat["msg"][0] and "RPO" in beat["msg"][0]


def _journal(standby: Standby) -> list[dict[str, object]]:
    lines = (standby.dir / "state" / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_a_snapshot_whose_dump_is_broken_fails_the_drill_with_the_reason(
    drilled: tuple[Site, Standby], mariadb: MariaDB
) -> None:
    """A complete-tagged snapshot whose dump file stops mid-statement (restic-backed-up under the dump's path)."""
    site, standby = drilled
    assert site.db_name is not None
    good = json.loads(site.restic("snapshots", "--json").stdout)[-1]
    dump_dir = Path(next(p for p in good["paths"] if Path(p).parent.name == "dump"))
    dump_dir.mkdir(parents=True, exist_ok=True)
    full = subprocess.run(
        ["mariadb-dump", f"--socket={mariadb.socket}", "--user=root", site.db_name],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    (dump_dir / f"{site.db_name}.sql").write_bytes(full[: full.index(b"INSERT INTO") + 40])
    tags = [t for t in good["tags"] if t != COMPLETE] + [COMPLETE]
    site.restic("backup", "--host", good["hostname"], *[a for t in tags for a in ("--tag", t)], *good["paths"])
    files_before, tables_before = tree_digest(site.root), table_sums(mariadb, site.db_name)

    result = drill_action.drill(standby.config(), site.id)

    assert (result.ok, result.exit_code) == (False, exitcodes.FAILED)
    assert result.message.startswith("mariadb import failed: "), result.message
    [beat] = _heartbeats(standby.push)
    assert beat["status"] == ["down"] and beat["msg"][0].startswith("drill failed: mariadb import failed: ")
    assert "rto_seconds" not in result.figures and result.figures["rpo_seconds"] >= 0
    assert standby.scratch_names() == []
    assert (tree_digest(site.root), table_sums(mariadb, site.db_name)) == (files_before, tables_before)


def test_a_page_that_fails_on_the_scratch_site_fails_the_drill_naming_it(
    drilled: tuple[Site, Standby], mariadb: MariaDB
) -> None:
    site, standby = drilled
    assert site.db_name is not None
    mariadb.sql("UPDATE posts SET title = 'renamed' WHERE id = 1", site.db_name)
    assert backup(site.config(), site.id, "manual").ok

    result = drill_action.drill(standby.config(), site.id)

    assert not result.ok
    assert result.message.endswith(
        f"restored, but the scratch site fails its checks: {site.id}.example/: HTTP 200 without {KEYWORD!r}"
    ), result.message
    assert standby.scratch_names() == []


def test_leftovers_of_a_killed_drill_are_removed_by_the_next_one(drilled: tuple[Site, Standby]) -> None:
    site, standby = drilled
    (standby.scratch_dir / site.id / "half").mkdir(parents=True)
    standby.vhost_dir.mkdir(parents=True)
    (standby.vhost_dir / f"carestack-drill-{site.id}.conf").write_text("# left by a killed drill\n")
    standby.db.sql(f"CREATE DATABASE drill_{site.db_name}__csrestore")

    result = drill_action.drill(standby.config(), site.id)

    assert result.ok, result.message
    assert len(result.figures["leftovers_removed"]) == 3
    assert standby.scratch_names() == []


def test_a_site_live_on_the_standby_is_refused_and_nothing_changes(drilled: tuple[Site, Standby]) -> None:
    site, standby = drilled
    standby.db.sql(f"CREATE DATABASE {site.db_name}")  # failed over: the site's own database runs here
    try:
        run = subprocess.run(  # the verb as the drill's systemd unit runs it
            [sys.executable, "-m", "carestack_agent", "--config", str(standby.config_path), "drill", site.id],
            env={**os.environ, "PYTHONPATH": str(ROOT / "agent")}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == exitcodes.REFUSED, run.stderr
        assert (
            f"drill {site.id}: FAILED: the site is live on this host (its database {site.db_name} exists" in run.stderr
        )
        assert run.stderr.rstrip().endswith("no drill while it serves from here, nothing was changed")
        assert standby.scratch_names() == []
    finally:
        standby.db.sql(f"DROP DATABASE {site.db_name}")
