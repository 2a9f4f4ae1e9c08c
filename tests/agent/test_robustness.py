"""What the agent owes when things go wrong: crashes, outages, bad secrets, concurrent writes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from carestack_agent.actions.backup import backup
from carestack_agent.actions.restore import RestoreOptions, restore
from carestack_agent.actions.status import collect
from carestack_agent.journal import Journal

from .conftest import ROOT, S3, MariaDB, PushRecorder, Site, TcpProxy, write_secret

pytestmark = pytest.mark.agent


def big_files(site: Site, megabytes: int) -> None:
    rnd = random.Random(7)
    for i in range(megabytes):
        (site.root / f"wp-content/uploads/big-{i}.bin").write_bytes(rnd.randbytes(1024 * 1024))


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def restic_backups(parent: int) -> list[int]:
    return [p for p in restic_children(parent) if b"backup" in cmdline(p)]


def restic_children(parent: int) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and cmd and cmd[0].endswith(b"restic"):
            out.append(int(pid))
    return out


def test_writes_during_a_backup_give_a_dump_consistent_at_one_instant(make_site, mariadb: MariaDB) -> None:
    site: Site = make_site()
    name = site.db_name
    mariadb.sql(
        "CREATE TABLE ledger (id INT PRIMARY KEY AUTO_INCREMENT, account INT, amount INT, pad TEXT) ENGINE=InnoDB;"
        "CREATE TABLE totals (account INT PRIMARY KEY, balance INT) ENGINE=InnoDB;"
        "INSERT INTO totals VALUES (1, 0), (2, 0);"
        "INSERT INTO ledger (account, amount, pad) SELECT 1, 0, REPEAT('p', 2000) FROM seq_1_to_20000;",
        name,
    )
    stop = threading.Event()
    writes = {"n": 0}

    def writer() -> None:
        # every transaction moves money between the two tables: the invariant holds at every instant
        proc = subprocess.Popen(
            ["mariadb", f"--socket={mariadb.socket}", "--user=root", f"--database={name}"],
            stdin=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        while not stop.is_set():
            proc.stdin.write(
                "START TRANSACTION; INSERT INTO ledger (account, amount, pad) VALUES (1, 5, 'w');"
                "UPDATE totals SET balance = balance + 5 WHERE account = 1; COMMIT;\n"
            )
            proc.stdin.flush()
            writes["n"] += 1
            time.sleep(0.002)
        proc.stdin.close()
        proc.wait()

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        result = backup(site.config(), site.id)
    finally:
        stop.set()
        t.join()
    assert result.ok, result.message
    assert writes["n"] > 50
    r = restore(site.config(), site.id, RestoreOptions(target=site.dir / "r", database_name=f"{name}_r"))
    assert r.ok, r.message
    ledger = int(mariadb.sql("SELECT SUM(amount) FROM ledger", f"{name}_r")[0][0])
    total = int(mariadb.sql("SELECT balance FROM totals WHERE account = 1", f"{name}_r")[0][0])
    assert ledger == total > 0  # rows written during the dump are either all in or all out


def test_kill_9_during_a_backup_then_the_next_backup_succeeds_and_check_passes(make_site) -> None:
    site: Site = make_site()
    big_files(site, 40)
    site.write_config()
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.config_path), "PYTHONPATH": str(ROOT / "agent")}
    agent = subprocess.Popen(
        [sys.executable, "-m", "carestack_agent", "backup", site.id], env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    children: list[int] = []
    while time.monotonic() < deadline and agent.poll() is None:
        children = restic_backups(agent.pid)
        if children:
            break
        time.sleep(0.05)
    assert children, "restic backup never started"
    # Killed once restic holds its repository lock: on a busy machine opening the repository takes seconds.
    while time.monotonic() < deadline and agent.poll() is None and not site.restic("list", "locks").stdout.strip():
        time.sleep(0.1)
    assert agent.poll() is None, "the backup ended before it could be killed"
    os.killpg(agent.pid, signal.SIGKILL)  # the agent crashes hard
    agent.wait()
    for _ in range(100):  # restic dies with its parent (pdeathsig): no orphan keeps writing
        if not any(Path(f"/proc/{p}").exists() for p in children):
            break
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}").exists() for p in children)
    assert site.restic("list", "locks").stdout.strip(), "the crash should leave a stale restic lock"

    status = collect(site.config())
    assert status["sites"][site.id]["jobs"]["backup"]["state"] == "interrupted"

    nxt = site.agent("backup", site.id, "--reason", "scheduled")
    assert nxt.returncode == 0, nxt.stderr
    assert site.restic("list", "locks").stdout.strip() == ""
    check = site.restic("check", "--read-data")
    assert "no errors were found" in check.stdout
    snaps = json.loads(site.restic("snapshots", "--json").stdout)
    assert len(snaps) == 1 and "reason:scheduled" in snaps[0]["tags"]


def test_s3_down_mid_run_fails_clearly_pushes_down_and_next_run_succeeds(make_site, s3: S3, push: PushRecorder) -> None:
    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    proxy.start()
    site: Site = make_site(push=push, endpoint=f"http://127.0.0.1:{proxy.port}")
    big_files(site, 60)
    site.jobs = {"backup_timeout_seconds": 5}
    cfg = site.config()

    def cut_when_uploading() -> None:
        for _ in range(400):
            if restic_backups(os.getpid()):
                time.sleep(0.4)
                break
            time.sleep(0.02)
        proxy.stop()  # S3 goes away while restic uploads

    threading.Thread(target=cut_when_uploading).start()
    failed = backup(cfg, site.id)
    assert not failed.ok
    assert failed.exit_code == 5
    assert "killed by the watchdog at the job's deadline" in failed.message
    assert f"S3 endpoint 127.0.0.1:{proxy.port} unreachable (connection refused)" in failed.message
    assert push.requests[-1].startswith("/api/push/tok-backup-123?status=down&msg=backup+failed")

    proxy.start()  # S3 is back
    site.jobs = {}  # the plan's deadline: the short one was there to cut the first run
    ok = backup(site.config(), site.id)
    assert ok.ok, ok.message
    assert push.requests[-1].startswith("/api/push/tok-backup-123?status=up")
    assert "no errors were found" in site.restic("check").stdout
    proxy.stop()


def test_s3_unreachable_at_start_is_retried_with_backoff(make_site, s3: S3) -> None:
    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    site: Site = make_site(endpoint=f"http://127.0.0.1:{proxy.port}", database=False)
    site.extra_agent = {"retries": 5, "retry_backoff_seconds": 0.5}
    cfg = site.config()
    threading.Timer(1.5, proxy.start).start()  # down when the job starts, back 1.5 s later
    result = backup(cfg, site.id)
    assert result.ok, result.message
    proxy.stop()
    retries = result.figures["retries"]
    # the job's first restic command (unlock: the site has no successful job yet) met the outage
    assert [r["what"] for r in retries] == ["unlock"] * len(retries)
    assert 2 <= len(retries) <= 3  # 0.5 s, 1 s (1.5 s so far), maybe 2 s more on a slow start
    assert [r["wait_seconds"] for r in retries] == [0.5 * 2**i for i in range(len(retries))]  # doubling backoff
    assert all("repository unreachable or busy" in r["error"] and "connection refused" in r["error"] for r in retries)
    end = [e for e in Journal(site.state_dir).entries() if e.get("event") == "end"][-1]
    assert end["figures"]["retries"] == retries  # the journal keeps the attempts with the result


def test_wrong_password_or_keys_fail_fast_with_a_clear_error_and_no_secret(make_site) -> None:
    site: Site = make_site(database=False)
    site.password = "not the password"
    res = site.agent("backup", site.id)
    assert res.returncode == 3
    assert "backup " + site.id + ": FAILED: restic unlock: wrong repository password" in res.stderr
    assert "not the password" not in res.stdout + res.stderr

    site.password = "correct horse battery staple"
    good_secret = site.creds.secret_access_key
    site.creds = type(site.creds)(site.creds.access_key_id, "x" * 40)
    res = site.agent("backup", site.id)
    assert res.returncode == 3
    assert "S3 credentials rejected" in res.stderr
    site.creds = type(site.creds)("AKIAUNKNOWN000000000", good_secret)
    res = site.agent("backup", site.id)
    assert res.returncode == 3 and "S3 credentials rejected" in res.stderr
    journal = Journal(site.state_dir).path.read_text()
    for secret in (good_secret, "x" * 40, "not the password", "correct horse"):
        assert secret not in res.stdout + res.stderr + journal


def test_failed_dump_never_counts_as_a_good_snapshot(make_site, push: PushRecorder, tmp_path: Path) -> None:
    site: Site = make_site(push=push)
    # mariadb-dump that dies half-way (real dump, cut short, non-zero exit)
    wrapper = write_secret(
        tmp_path / "dump-then-fail.sh", '#!/bin/sh\n/usr/bin/mariadb-dump "$@" | head -c 2000\nexit 2\n'
    )
    os.chmod(wrapper, 0o700)
    site.extra_agent = {"mariadb_dump": str(wrapper)}
    result = backup(site.config(), site.id)
    assert not result.ok
    assert result.message.startswith("database dump failed: mariadb-dump exited with status 2")
    assert "discarded" in result.message
    assert json.loads(site.restic("snapshots", "--json").stdout) == []
    assert "status=down" in push.requests[-1] and "database+dump+failed" in push.requests[-1]

    site.extra_site = {}
    site.extra_agent = {}
    site.db_name, real = "no_such_db", site.db_name
    result = backup(site.config(), site.id)
    assert not result.ok and "Unknown database" in result.message
    assert json.loads(site.restic("snapshots", "--json").stdout) == []
    site.db_name = real


def test_one_job_per_site_second_run_exits_busy_or_waits(make_site) -> None:
    site: Site = make_site(database=False)
    big_files(site, 20)
    site.write_config()
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.config_path), "PYTHONPATH": str(ROOT / "agent")}
    first = subprocess.Popen([sys.executable, "-m", "carestack_agent", "backup", site.id], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    lock = site.state_dir / "locks" / f"{site.id}.lock"
    for _ in range(200):
        if lock.exists() and lock.read_text():
            break
        time.sleep(0.02)
    busy = site.agent("check", site.id)
    assert busy.returncode == 75
    assert f"site {site.id}: backup (PID {first.pid}" in busy.stderr and "--wait" in busy.stderr
    waited = site.agent("check", site.id, "--wait")
    assert waited.returncode == 0, waited.stderr
    assert first.wait() == 0


def test_secrets_never_appear_in_argv(make_site) -> None:
    site: Site = make_site()
    big_files(site, 10)
    cfg = site.config()
    seen: list[bytes] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    seen.append(cmdline(int(pid)))
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        assert backup(cfg, site.id).ok
    finally:
        stop.set()
        t.join()
    argv = b"\n".join(seen)
    assert b"restic" in argv  # sampled while restic ran (the dump may be too quick to catch; it gets no secret)
    for secret in (site.creds.secret_access_key, site.creds.access_key_id, site.password):
        assert secret.encode() not in argv


def test_stale_lock_from_a_crashed_restic_is_removed_and_a_live_lock_respected(make_site, tmp_path: Path) -> None:
    site: Site = make_site(database=False)
    cfg = site.config()
    assert backup(cfg, site.id).ok  # the site's last job ended well: no unlock before the next job
    env = {**os.environ}
    stale = subprocess.Popen(
        ["restic", "backup", "--stdin"],  # a restic run outside the agent, waiting on a pipe, then killed hard
        env={**env, **restic_env(site)}, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if site.restic("list", "locks", "--no-lock").stdout.strip():
            break
        time.sleep(0.1)
    stale.kill()
    stale.wait()
    assert stale.stdin is not None
    stale.stdin.close()
    assert site.restic("list", "locks").stdout.strip()
    from carestack_agent.actions.check import check

    r = check(cfg, site.id)  # check needs an exclusive lock: conflict -> unlock (stale only) -> retry
    assert r.ok, r.message
    assert site.restic("list", "locks").stdout.strip() == ""

    # a lock held by a live process is never removed: the job gives up at its retries, clearly
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    live = subprocess.Popen(
        ["restic", "mount", str(mnt)], env={**env, **restic_env(site)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            if site.restic("list", "locks", "--no-lock").stdout.strip():
                break
            time.sleep(0.1)
        r = check(cfg, site.id)
        assert not r.ok and r.exit_code == 69
        assert "repository locked by another process" in r.message
        assert site.restic("list", "locks", "--no-lock").stdout.strip()  # still there
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=20)


def restic_env(site: Site) -> dict[str, str]:
    return {
        "RESTIC_REPOSITORY": site.repository,
        "RESTIC_PASSWORD_FILE": str(site.dir / "secrets/restic-password"),
        "RESTIC_CACHE_DIR": str(site.dir / "restic-cache"),
        "AWS_ACCESS_KEY_ID": site.creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": site.creds.secret_access_key,
    }
