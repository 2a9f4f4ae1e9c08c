"""An S3 endpoint that stalls (accepts connections, answers nothing): noticed, named, and cleaned up after.

moto is stopped with SIGSTOP while restic uploads: connections are still
accepted by the kernel, requests are never answered, the way a hung S3 or a
black-holed route looks to restic 0.14 (which waits for ever). The sites use a
small stall limit (the plan derives the real one from the backup period).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from carestack_agent import evidence, lease
from carestack_agent.actions.backup import backup
from carestack_agent.jobs import JobResult
from carestack_agent.restic import STALL_NOTICE_SHARE, ProgressWatch, endpoint_name

from .conftest import S3, MariaDB, PushRecorder, Site
from .test_robustness import big_files

pytestmark = pytest.mark.agent

STALL_LIMIT = 12  # seconds without progress before the job fails (notice at a quarter of it: 3 s)


def moto_pid(s3: S3) -> int:
    return int(json.loads((s3.state_dir / "moto.pid").read_text())["pid"])


def io_counter(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_named(name: bytes) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and argv0.endswith(name):
                out.append(int(pid))
    return out


@contextlib.contextmanager
def stalled_s3(s3: S3) -> Iterator[Callable[[], None]]:
    """SIGSTOP moto; the yielded function (and leaving the block, always) resumes it."""
    pid = moto_pid(s3)
    os.kill(pid, signal.SIGSTOP)
    resumed = False

    def resume() -> None:
        nonlocal resumed
        if not resumed:
            os.kill(pid, signal.SIGCONT)
            resumed = True

    try:
        yield resume
    finally:
        resume()


def backup_in_thread(site: Site) -> tuple[threading.Thread, list[JobResult]]:
    out: list[JobResult] = []
    cfg = site.config()
    t = threading.Thread(target=lambda: out.append(backup(cfg, site.id)))
    t.start()
    return t, out


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stall_site(make_site: Callable[..., Site], push: PushRecorder | None = None) -> Site:
    """A site whose last job succeeded: the next backup's first restic command is the backup itself."""
    site: Site = make_site(push=push)
    site.jobs = {"repository_stall_seconds": STALL_LIMIT}
    site.retention = {"keep_last": 10}  # every snapshot stays: the tests count them
    assert backup(site.config(), site.id).ok
    big_files(site, 5)
    return site


def test_a_stall_shorter_than_the_limit_is_ridden_out_and_mentioned(make_site, s3: S3) -> None:
    site = stall_site(make_site)
    with stalled_s3(s3):  # restic starts while S3 does not answer
        t, out = backup_in_thread(site)
        # The job first waits out its lease read (one attempt, then it runs: restic meets the stall itself).
        time.sleep(lease.TIMEOUT_SECONDS + 7)
    t.join(120)
    result = out[0]
    assert result.ok, result.message
    endpoint = site.endpoint.removeprefix("http://")
    assert f"S3 endpoint {endpoint} (bucket {site.bucket}) stalled 1x (longest " in result.message
    assert result.message.endswith("and recovered")
    assert result.figures["stalls"] == 1
    assert 3 <= result.figures["longest_stall_seconds"] < STALL_LIMIT
    assert len(json.loads(site.restic("snapshots", "--json").stdout)) == 2


def test_a_stall_longer_than_the_limit_fails_naming_the_endpoint_and_the_next_run_is_clean(
    make_site, s3: S3, push: PushRecorder
) -> None:
    site = stall_site(make_site, push)
    with stalled_s3(s3) as resume:
        t, out = backup_in_thread(site)
        # The job ends while S3 is still stalled: its lease read (one attempt), restic meeting the stall
        # (a pause may be ridden out before the fatal one), then its evidence pass against the silent S3,
        # each bounded; the rest is room for a loaded machine. Far below the job's own deadline (hours).
        t.join(lease.TIMEOUT_SECONDS + 2 * STALL_LIMIT + evidence.BUDGET_SECONDS + 30)
        hung = t.is_alive()
        resume()
    t.join(120)
    assert not hung, "the job hung on the stalled S3"
    failed = out[0]
    assert not failed.ok
    assert failed.exit_code == 69
    endpoint = site.endpoint.removeprefix("http://")
    assert failed.message.startswith(
        f"restic backup: S3 endpoint {endpoint} (bucket {site.bucket}) stalled: no progress for "
    ), failed.message
    assert f"(limit {STALL_LIMIT} s), restic stopped" in failed.message
    assert "database" not in failed.message  # the cut dump is a consequence, not the cause
    assert site.creds.secret_access_key not in failed.message
    assert "status=down" in push.requests[-1] and "stalled" in push.requests[-1]
    assert len(json.loads(site.restic("snapshots", "--json").stdout)) == 1  # the first run's only

    again = backup(site.config(), site.id)  # the stopped restic's lock is stale: the next run removes it
    assert again.ok, again.message
    assert site.restic("list", "locks", "--no-lock").stdout.strip() == ""
    assert "no errors were found" in site.restic("check", "--read-data").stdout
    assert len(json.loads(site.restic("snapshots", "--json").stdout)) == 2


def dump_connections(mariadb: MariaDB, database: str) -> int:
    """Connections to the database other than this query's own (the dump's, while the server keeps it)."""
    rows = mariadb.sql(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
        f"WHERE DB = '{database}' AND ID <> CONNECTION_ID() AND COMMAND <> 'Killed'"
    )
    return int(rows[0][0])


def test_a_dump_cut_off_while_s3_stalled_is_reported_as_the_stall(make_site, s3: S3, mariadb: MariaDB) -> None:
    site: Site = make_site()
    site.jobs = {"repository_stall_seconds": 20}  # the database gives up first (its net_write_timeout)
    assert backup(site.config(), site.id).ok  # a clean site: the next job's first restic command is the backup
    mariadb.sql(
        "CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, pad VARBINARY(1024)) ENGINE=InnoDB;"
        "INSERT INTO big (pad) SELECT RANDOM_BYTES(1024) FROM seq_1_to_20000;",
        site.db_name,
    )
    # The dump starts, restic waits on the stalled S3 before it reads a byte, the dump's pipe fills and the
    # server drops the idle dump: MariaDB does so after its net_write_timeout (60 s by default, 2 s here).
    mariadb.sql("SET GLOBAL net_write_timeout = 2")
    try:
        with stalled_s3(s3):
            t, out = backup_in_thread(site)
            # The lease read gives up first, then the dump and restic start; S3 stays silent until the
            # server has dropped the dump's connection, and a while longer: restic's pause is then one
            # worth reporting. (mariadb-dump itself notices only once restic reads its pipe again.)
            wait_until(lambda: dump_connections(mariadb, site.db_name) > 0, lease.TIMEOUT_SECONDS + 30,
                       "the dump to start")  # fmt: skip
            wait_until(lambda: dump_connections(mariadb, site.db_name) == 0, 30, "the server to drop the dump")
            time.sleep(20 * STALL_NOTICE_SHARE + 1)
        t.join(120)
    finally:
        mariadb.sql("SET GLOBAL net_write_timeout = 60")
    failed = out[0]
    assert not failed.ok
    endpoint = site.endpoint.removeprefix("http://")
    assert failed.message.startswith(f"S3 endpoint {endpoint} (bucket {site.bucket}) stalled for "), failed.message
    assert "while the database dump was read, and the dump was cut off (mariadb-dump exited" in failed.message
    assert "Lost connection" in failed.message  # the database's own words stay, as the consequence
    assert failed.exit_code == 69
    assert failed.figures["dump_cut_by_stall"] is True
    assert "discarded" in failed.message
    assert len(json.loads(site.restic("snapshots", "--json").stdout)) == 1  # the first run's only


def test_the_endpoint_is_named_without_credentials_or_the_sites_prefix() -> None:
    assert endpoint_name("s3:https://key:secret@s3.example:8443/bucket/site-www") == (
        "S3 endpoint s3.example:8443 (bucket bucket)"
    )
    assert endpoint_name("s3:https://s3.eu-central-1.amazonaws.com/acme-backups/acme-www") == (
        "S3 endpoint s3.eu-central-1.amazonaws.com (bucket acme-backups)"
    )
    assert endpoint_name("/srv/restic/site") == "repository /srv/restic/site"


def test_a_pause_still_under_way_when_restic_ends_is_recorded() -> None:
    # restic often finishes within one tick of S3 answering again: the pause it rode out must not be lost.
    quiet = subprocess.Popen(["sleep", "30"])
    busy = subprocess.Popen(["sh", "-c", "exec cat /dev/zero > /dev/null"])
    try:
        with ProgressWatch(quiet, limit=4.0) as quiet_watch, ProgressWatch(busy, limit=4.0) as busy_watch:
            time.sleep(2.5)  # the pause is noticed from a quarter of the limit: 1 s
    finally:
        for proc in (quiet, busy):
            proc.kill()
            proc.wait()
    assert len(quiet_watch.pauses) == 1 and 1.0 <= quiet_watch.pauses[0].seconds <= 2.6, quiet_watch.pauses
    assert not quiet_watch.fired
    assert busy_watch.pauses == []
