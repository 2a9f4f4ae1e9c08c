"""Fast tests of the agent's pieces (no restic, S3 or database needed)."""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import socket
import subprocess
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from carestack_agent import snapshots
from carestack_agent.actions.restore import RestoreOptions, candidates, choose_snapshot, parse_time, split_paths
from carestack_agent.config import parse
from carestack_agent.hooks import kuma
from carestack_agent.jobs import JobFailed
from carestack_agent.journal import Journal
from carestack_agent.lock import LockBusy, SiteLock
from carestack_agent.proc import Deadline
from carestack_agent.restic import Restic, ResticError, ResticResult, with_retries
from carestack_agent.secrets import SecretError, read_env_file, s3_environment
from carestack_agent.streamfs import StreamFile, is_mountpoint

from .conftest import PushRecorder, free_port, write_secret
from .test_config import EXAMPLE

# -- journal and lock ---------------------------------------------------------------


def test_journal_survives_a_torn_line_and_reports_last_results(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append({"site": "a", "job": "backup", "event": "start", "run_id": "1"})
    j.append({"site": "a", "job": "backup", "event": "end", "run_id": "1", "result": "ok"})
    j.append({"site": "a", "job": "backup", "event": "start", "run_id": "2"})
    with open(j.path, "a") as f:
        f.write('{"site": "a", "job": "bac')  # a crash mid-write
    last = j.last_results()[("a", "backup")]
    assert last["last_start"]["run_id"] == "2" and last["last_end"]["run_id"] == "1"
    assert oct(j.path.stat().st_mode & 0o777) == "0o600"


def test_site_lock_is_exclusive_and_can_be_waited_for(tmp_path: Path) -> None:
    first = SiteLock(tmp_path, "shop", "backup")
    first.acquire()
    assert first.is_held()
    with pytest.raises(LockBusy, match=r"site shop: backup \(PID \d+, since .*\) is running; .*--wait"):
        SiteLock(tmp_path, "shop", "check").acquire()
    threading.Timer(0.5, first.release).start()
    t0 = time.monotonic()
    second = SiteLock(tmp_path, "shop", "check")
    second.acquire(wait=True, timeout=10)
    assert time.monotonic() - t0 >= 0.4
    second.release()
    assert not second.is_held()


# -- secrets ------------------------------------------------------------------------


def test_secret_files_must_be_private_and_errors_never_show_content(tmp_path: Path) -> None:
    f = write_secret(
        tmp_path / "s3.env", "AWS_ACCESS_KEY_ID=AKIAXYZ\nexport AWS_SECRET_ACCESS_KEY='s3cr3t-value'\n# c\n"
    )
    assert s3_environment(f) == {"AWS_ACCESS_KEY_ID": "AKIAXYZ", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    os.chmod(f, 0o644)
    with pytest.raises(SecretError, match="must not be accessible by group or others"):
        read_env_file(f)
    bad = write_secret(tmp_path / "bad.env", "this line holds hunter2 and no equals sign\n")
    with pytest.raises(SecretError) as e:
        read_env_file(bad)
    assert "hunter2" not in str(e.value) and "line 1" in str(e.value)
    with pytest.raises(SecretError, match="missing AWS_SECRET_ACCESS_KEY"):
        s3_environment(write_secret(tmp_path / "half.env", "AWS_ACCESS_KEY_ID=x\n"))
    with pytest.raises(SecretError, match="secret file missing"):
        read_env_file(tmp_path / "nope")


# -- heartbeats ---------------------------------------------------------------------


def test_push_up_and_down_and_jobs_without_a_token(tmp_path: Path, push: PushRecorder) -> None:
    tokens = write_secret(tmp_path / "push.env", "BACKUP=tok/1 2\nCHECK=tok-c\n")
    assert kuma.push(push.base_url, tokens, "backup", up=True, msg="snapshot ab12: 3 files\nsecond line", ping_ms=1234)
    assert kuma.push(push.base_url, tokens, "check", up=False, msg="check failed: x")
    assert not kuma.push(push.base_url, tokens, "prune", up=True, msg="no token, no push")
    assert push.requests == [
        "/api/push/tok%2F1%202?status=up&msg=snapshot+ab12%3A+3+files+second+line&ping=1234",
        "/api/push/tok-c?status=down&msg=check+failed%3A+x",
    ]


def test_push_failure_is_logged_without_url_or_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tokens = write_secret(tmp_path / "push.env", "BACKUP=very-secret-token\n")
    caplog.set_level(logging.WARNING)
    assert not kuma.push("http://127.0.0.1:9/api/push", tokens, "backup", up=True, msg="x", timeout=1)
    assert "push for backup failed" in caplog.text
    assert "very-secret-token" not in caplog.text and "127.0.0.1:9" not in caplog.text


# -- restic error classes and retries -------------------------------------------------


def _restic(tmp_path: Path) -> Restic:
    cfg = parse(tomllib.loads(EXAMPLE))
    return Restic(cfg.agent, cfg.site("bakery-www"))


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("Fatal: wrong password or no key found", "auth"),
        ("Fatal: unable to open config file: Stat: Access Denied.\nIs there a repository at the following", "auth"),
        ("Fatal: unable to open config file: Stat: The request signature we calculated does not match", "auth"),
        ('Fatal: unable to open config file: Stat: Get "http://x/b/": dial tcp: connection refused', "transient"),
        ("Fatal: unable to create lock in backend: repository is already locked by PID 1 on h", "locked"),
        ("Fatal: unable to open config file: Stat: The specified key does not exist.\nIs there a", "not_initialized"),
        ("Fatal: something else entirely", "failed"),
    ],
)  # fmt: skip
def test_restic_errors_are_classified(tmp_path: Path, stderr: str, kind: str) -> None:
    err = _restic(tmp_path).classify(ResticResult(returncode=1, stderr=stderr.splitlines()), "backup")
    assert err.kind == kind
    assert "Fatal:" not in err.message


def test_timeout_names_the_last_backend_error(tmp_path: Path) -> None:
    line = (
        "Save(<data/1>) returned error, retrying after 552ms: client.PutObject: "
        'Put "http://10.0.0.1:9000/b/data/1": dial tcp 10.0.0.1:9000: connect: connection refused'
    )
    restic = _restic(tmp_path)
    restic.site = dataclasses.replace(restic.site, repository=f"s3:http://127.0.0.1:{free_port()}/b/p")
    err = restic.classify(ResticResult(returncode=-9, timed_out=True, last_backend_error=line), "backup")
    assert err.kind == "timeout"
    port = restic.site.repository.split(":")[3].split("/")[0]
    assert err.message == (
        f"restic backup killed by the watchdog at the job's deadline; S3 endpoint 127.0.0.1:{port} unreachable "
        "(connection refused)"
    )
    with socket.create_server(("127.0.0.1", 0)) as listening:  # endpoint answers: name restic's last error instead
        restic.site = dataclasses.replace(restic.site, repository=f"s3:http://127.0.0.1:{listening.getsockname()[1]}/b")
        err = restic.classify(ResticResult(returncode=-9, timed_out=True, last_backend_error=line), "backup")
    assert err.message.endswith("last backend error: dial tcp 10.0.0.1:9000: connect: connection refused")


def test_retries_only_transient_errors_with_backoff(tmp_path: Path) -> None:
    settings = parse(tomllib.loads(EXAMPLE)).agent
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ResticError("transient", "unreachable")
        return "done"

    assert with_retries(flaky, settings=settings, deadline=Deadline(600), what="x", sleep=sleeps.append) == "done"
    assert sleeps == [10.0, 20.0]

    def auth() -> str:
        raise ResticError("auth", "wrong password")

    with pytest.raises(ResticError, match="wrong password"):
        with_retries(auth, settings=settings, deadline=Deadline(600), what="x", sleep=sleeps.append)
    assert len(sleeps) == 2  # no retry for auth errors


# -- snapshot choice --------------------------------------------------------------------


def _snap(sid: str, t: str) -> dict[str, Any]:
    return {"id": sid * 8, "short_id": sid * 8, "time": t, "tags": ["site:shop", "db:shop"], "paths": []}


def test_choose_snapshot_by_id_before_time_or_latest() -> None:
    snaps = [
        _snap("a", "2024-01-01T10:00:00.5Z"),
        _snap("c", "2024-01-03T10:00:00Z"),
        _snap("b", "2024-01-02T10:00:00Z"),
    ]
    assert choose_snapshot(snaps, RestoreOptions())["id"].startswith("c")
    assert choose_snapshot(snaps, RestoreOptions(snapshot="bbbb"))["id"].startswith("b")
    assert choose_snapshot(snaps, RestoreOptions(before=parse_time("2024-01-02T12:00:00+00:00")))["id"].startswith("b")
    with pytest.raises(JobFailed, match="no complete snapshot of this site taken before"):
        choose_snapshot(snaps, RestoreOptions(before=parse_time("2023-12-31T00:00:00+00:00")))
    with pytest.raises(JobFailed, match="not found"):
        choose_snapshot(snaps, RestoreOptions(snapshot="dddd"))


def test_only_complete_or_pre_tag_snapshots_are_candidates_and_a_named_incomplete_one_is_refused() -> None:
    done, failed = _snap("a", "2024-01-01T10:00:00Z"), _snap("c", "2024-01-03T10:00:00Z")
    old = _snap("b", "2024-01-02T10:00:00Z")
    done["tags"] += ["complete"]
    failed["tags"] += ["incomplete"]
    assert [s["id"][0] for s in candidates([done, failed, old], RestoreOptions())] == ["b", "a"]
    with pytest.raises(JobFailed, match=r"snapshot cccccccc is incomplete .*: not restored; nothing was changed"):
        candidates([done, failed], RestoreOptions(snapshot="ccc"))
    with pytest.raises(JobFailed, match=r"no complete snapshot of this site in the repository \(1 incomplete\)"):
        candidates([failed], RestoreOptions())


def test_a_snapshots_parts_and_what_its_listing_lacks() -> None:
    snap = {"tags": ["site:shop", "db:shop_db"], "paths": ["/srv/www/shop", "/var/lib/carestack/dump/shop"]}
    parts = snapshots.parts_of(snap)
    assert parts.dump_file == Path("/var/lib/carestack/dump/shop/shop_db.sql")
    listed = {Path("/srv/www/shop"), Path("/var/lib/carestack/dump/shop")}
    assert snapshots.missing_parts(parts, listed) == ["the database dump /var/lib/carestack/dump/shop/shop_db.sql"]
    assert snapshots.missing_parts(parts, listed, database=False) == []
    assert snapshots.missing_parts(parts, {Path("/var/lib/carestack/dump/shop/shop_db.sql")}) == ["files /srv/www/shop"]
    rewritten = {"id": "f" * 64, "short_id": "ffffffff", "original": "1" * 64, "tags": ["complete"]}
    assert snapshots.find_rewritten([snap, rewritten], "11111111") is rewritten
    assert snapshots.is_legacy(snap) and snapshots.is_complete(rewritten) and not snapshots.is_legacy(rewritten)


def test_split_paths_finds_the_dump_mount() -> None:
    snap = {"tags": ["site:shop", "db:shop_db"], "paths": ["/srv/www/shop", "/var/lib/carestack/dump/shop"]}
    assert split_paths(snap) == ([Path("/srv/www/shop")], Path("/var/lib/carestack/dump/shop"))
    assert split_paths({"tags": ["site:shop"], "paths": ["/srv/www/shop"]}) == ([Path("/srv/www/shop")], None)


# -- the streamed dump file -------------------------------------------------------------


def test_streamfs_serves_a_pipe_as_a_regular_file_and_fails_with_eio(tmp_path: Path) -> None:
    producer = subprocess.Popen(["sh", "-c", "seq 1 200000"], stdout=subprocess.PIPE)
    assert producer.stdout is not None
    mnt = tmp_path / "mnt"
    with StreamFile(mnt, "db.sql", producer.stdout.fileno(), lambda: None if producer.wait() == 0 else "exit") as sf:
        st = os.stat(mnt / "db.sql")
        assert st.st_mode & 0o170000 == 0o100000  # S_IFREG: restic reads it as a file
        assert os.listdir(mnt) == ["db.sql"]
        data = (mnt / "db.sql").read_bytes()
    assert data == subprocess.run(["seq", "1", "200000"], capture_output=True).stdout
    assert sf.bytes_served == len(data) and sf.failure is None
    assert not is_mountpoint(mnt)

    failing = subprocess.Popen(["sh", "-c", "seq 1 1000; exit 3"], stdout=subprocess.PIPE)
    assert failing.stdout is not None
    with StreamFile(mnt, "db.sql", failing.stdout.fileno(), lambda: f"exit {failing.wait()}") as sf:
        with pytest.raises(OSError) as e:
            (mnt / "db.sql").read_bytes()
        assert e.value.errno == errno.EIO
    assert sf.failure == "exit 3"
