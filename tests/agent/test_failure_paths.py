"""Failure paths the agent's claims rest on: cleanup during an outage, unreadable files, full disks.

Each test breaks one real part (S3 through a proxy that goes away, moto
stopped, a file whose read fails with EIO, a small tmpfs the test mounts) and
checks the job fails with a reason that names what broke, nothing is lost or
left half-written, and the next run succeeds.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from carestack_agent import lease
from carestack_agent.actions.backup import backup
from carestack_agent.actions.prune import prune
from carestack_agent.jobs import JobResult
from carestack_agent.journal import Journal
from carestack_agent.streamfs import StreamFile

from .conftest import S3, MariaDB, Site, TcpProxy
from .test_stall import stalled_s3

pytestmark = pytest.mark.agent


def snapshots(site: Site) -> list[dict[str, object]]:
    return list(json.loads(site.restic("snapshots", "--json").stdout))


def _descends_from_this_test(pid: str) -> bool:
    """True when `pid` is a child, grandchild, … of this process: restic runs of other workers, or
    inside the lab's servers (visible from the host's /proc), are not this test's."""
    me = str(os.getpid())
    for _ in range(8):
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = stat.rsplit(")", 1)[1].split()[1]  # ppid, after the parenthesised command name
        if pid == me:
            return True
        if pid in ("0", "1"):
            return False
    return False


def restic_running(verb: bytes) -> bool:
    """A restic `verb` started by this test is running."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError, IndexError):
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"restic") and verb in argv and _descends_from_this_test(pid):
                    return True
    return False


@contextlib.contextmanager
def small_fs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` for the test's duration."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(fs: Path) -> None:
    """Write a filler file until the file system refuses (ENOSPC)."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


# -- cleanup during an outage ---------------------------------------------------------


def test_forget_during_an_outage_fails_clearly_keeps_the_snapshot_and_the_next_run_forgets(make_site, s3: S3) -> None:
    proxy = TcpProxy(int(s3.endpoint.rsplit(":", 1)[1]))
    proxy.start()
    site: Site = make_site(database=False, endpoint=f"http://127.0.0.1:{proxy.port}")
    site.retention = {"keep_last": 1}
    cfg = site.config()
    assert backup(cfg, site.id).ok

    def cut_at_forget() -> None:
        end = time.monotonic() + 60
        while not restic_running(b"forget") and time.monotonic() < end:
            time.sleep(0.005)
        proxy.stop()  # S3 goes away as forget starts

    watcher = threading.Thread(target=cut_at_forget)
    watcher.start()
    failed = backup(cfg, site.id)
    watcher.join()
    assert not failed.ok
    snap = failed.figures["snapshot_id"]
    # (cut while forget reads, or while it takes its lock: then the stale-lock cleanup meets the outage)
    assert failed.message.startswith(f"snapshot {snap} saved, but forget failed: restic ")
    assert "repository unreachable or busy" in failed.message and "connection refused" in failed.message
    assert len(failed.figures["retries"]) == 2  # retried with backoff, then gave up

    proxy.start()
    kept = [s["short_id"] for s in snapshots(site)]
    assert len(kept) == 2 and snap in kept  # nothing lost: the new snapshot is there, the old one not yet forgotten
    again = backup(cfg, site.id)
    assert again.ok, again.message
    assert [s["short_id"] for s in snapshots(site)] == [again.figures["snapshot_id"]]  # keep_last 1 applied
    assert "no errors were found" in site.restic("check").stdout
    proxy.stop()


def test_prune_while_s3_stalls_fails_naming_the_endpoint_loses_nothing_and_the_next_prune_succeeds(
    make_site, s3: S3
) -> None:
    site: Site = make_site(database=False)
    site.retention = {"keep_last": 1}
    site.jobs = {"repository_stall_seconds": 6}
    cfg = site.config()
    for n in range(3):
        (site.root / f"page-{n}.html").write_text(f"version {n}\n" * 2000)
        assert backup(cfg, site.id).ok  # forget leaves unreferenced data: prune has work to do
    before = snapshots(site)
    endpoint = s3.endpoint.removeprefix("http://")

    with stalled_s3(s3):  # the site's last job succeeded: prune is the job's first restic command
        t = threading.Thread(target=lambda: results.append(prune(cfg, site.id)))
        results: list[JobResult] = []
        t.start()
        # The job first waits out its lease read (one attempt), then restic meets the stall: under the limit,
        # ridden out, and said.
        time.sleep(lease.TIMEOUT_SECONDS + 4)
    t.join(120)
    assert results[0].ok, results[0].message
    assert f"; S3 endpoint {endpoint} (bucket {site.bucket}) stalled 1x (longest " in results[0].message
    assert results[0].message.endswith("and recovered")

    with stalled_s3(s3):
        failed = prune(cfg, site.id)
    assert not failed.ok
    assert failed.exit_code == 69
    assert failed.message.startswith(f"restic prune: S3 endpoint {endpoint} "), failed.message
    assert "stalled: no progress for 6 s (limit 6 s), restic stopped" in failed.message

    assert snapshots(site) == before  # nothing lost
    again = prune(cfg, site.id)  # the stopped prune's lock is stale: removed first
    assert again.ok, again.message
    assert snapshots(site) == before
    assert "no errors were found" in site.restic("check", "--read-data").stdout


# -- files restic cannot read ---------------------------------------------------------


def test_an_unreadable_file_fails_the_backup_names_the_file_and_the_snapshot_does_not_count(make_site) -> None:
    site: Site = make_site(database=False)
    cfg = site.config()
    # A file whose read fails with EIO, as on a failing disk: a FUSE mount inside the site's tree whose one
    # file serves some bytes and then answers EIO (the kernel's error, restic's real reaction).
    broken = site.root / "wp-content/uploads/broken"
    read_end, write_end = os.pipe()
    os.write(write_end, b"%PDF-1.4 half a report")
    os.close(write_end)
    disk = StreamFile(broken, "report.pdf", read_end, lambda: "input/output error")
    disk.start()
    try:
        failed = backup(cfg, site.id)
    finally:
        disk.stop()
        os.close(read_end)
    assert not failed.ok
    assert failed.exit_code == 1
    assert f"1 file(s) could not be read, e.g. {broken / 'report.pdf'}" in failed.message
    incomplete = failed.figures["incomplete_snapshot"]
    assert failed.message.startswith(f"snapshot {incomplete} is incomplete")
    assert failed.figures["snapshot_id"] is None  # not reported as the run's good snapshot

    ok = backup(cfg, site.id)  # the disk is readable again
    assert ok.ok, ok.message


# -- full disks -----------------------------------------------------------------------


def test_a_full_dump_spool_fails_clearly_and_leaves_nothing_behind(make_site, mariadb: MariaDB) -> None:
    site: Site = make_site()
    site.extra_agent = {"dump_transport": "spool"}
    mariadb.sql(
        "CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, pad VARBINARY(1024)) ENGINE=InnoDB;"
        "INSERT INTO big (pad) SELECT RANDOM_BYTES(1024) FROM seq_1_to_3000;",
        site.db_name,
    )
    cfg = site.config()
    spool = site.state_dir / "dump"
    with small_fs(spool, "1m"):
        failed = backup(cfg, site.id)
        assert not failed.ok
        assert failed.message.startswith(f"database dump failed: no space left in the dump spool {spool / site.id}")
        assert "errno 28" in failed.message  # mariadb-dump's own words follow
        assert [p for p in spool.rglob("*") if p.is_file()] == []  # the partial dump is gone
    assert snapshots(site) == []
    ok = backup(cfg, site.id)
    assert ok.ok, ok.message


def test_a_full_restic_cache_does_not_break_the_backup_or_the_repository(make_site) -> None:
    site: Site = make_site()
    cfg = site.config()
    cache = site.state_dir / "cache"
    with small_fs(cache, "1m"):
        fill(cache)
        result = backup(cfg, site.id)
        # the cache only saves downloads: restic goes on without it
        assert result.ok, result.message
        assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and p.name != "filler") < 4096
    assert len(snapshots(site)) == 1
    assert "no errors were found" in site.restic("check", "--read-data").stdout
    assert backup(cfg, site.id).ok  # and with its cache back


def leave_room_in_the_journal(journal: Journal, room: int) -> None:
    """Pad the journal with one valid line so that its last page has `room` bytes left."""
    size = journal.path.stat().st_size
    overhead = len(json.dumps({"event": "pad", "pad": "", "ts": "2026-01-01T00:00:00.000Z"})) + 1
    journal.append({"event": "pad", "pad": "p" * ((4096 - room - size - overhead) % 4096)})
    assert journal.path.stat().st_size % 4096 == 4096 - room


def test_a_full_journal_refuses_the_job_clearly_and_leaves_no_torn_line(make_site) -> None:
    site: Site = make_site(database=False)
    site.state_dir.mkdir(parents=True, exist_ok=True)
    with small_fs(site.state_dir, "4m"):
        assert site.agent("backup", site.id).returncode == 0  # journal and restic's cache in place
        journal = Journal(site.state_dir)
        leave_room_in_the_journal(journal, 40)  # the next line fits only in part
        (site.state_dir / "locks" / f"{site.id}.lock").unlink()  # its holder note will not fit either
        fill(site.state_dir)
        lines_before = journal.path.read_bytes()

        refused = site.agent("backup", site.id)
        assert refused.returncode == 1, refused.stderr
        assert f"journal {journal.path}: cannot append a line (No space left on device); the job did not run" in (
            refused.stderr
        )
        assert journal.path.read_bytes() == lines_before  # no torn half line for the next writer to glue onto
        assert len(snapshots(site)) == 1  # nothing ran

        (site.state_dir / "filler").unlink()
        ok = site.agent("backup", site.id)
        assert ok.returncode == 0, ok.stderr
        records = [json.loads(line) for line in journal.path.read_text().splitlines()]  # every line parses
        assert [r["event"] for r in records][-2:] == ["start", "end"]


def test_a_job_whose_end_cannot_be_journaled_fails_and_leaves_the_site_unclean(make_site) -> None:
    site: Site = make_site(database=False)
    site.retention = {"keep_last": 10}
    site.state_dir.mkdir(parents=True, exist_ok=True)
    with small_fs(site.state_dir, "4m"):
        assert site.agent("backup", site.id).returncode == 0
        journal = Journal(site.state_dir)
        lines = journal.path.read_text().splitlines()
        start, end = len(lines[-2]) + 1, len(lines[-1]) + 1
        assert end > start + 200
        leave_room_in_the_journal(journal, start + 100)  # room for the next start, not for its end
        fill(site.state_dir)

        with small_fs(site.state_dir / "cache", "16m"):  # restic's cache apart: its clean-up frees no journal room
            res = site.agent("backup", site.id)
        assert res.returncode == 1, res.stderr
        assert "; journal " in res.stderr and "cannot append a line (No space left on device)" in res.stderr
        assert res.stderr.count("FAILED: snapshot ") == 1  # what the job did is still said
        assert not (site.state_dir / "clean" / site.id).exists()  # the next job treats the site as unclean
        assert json.loads(journal.path.read_text().splitlines()[-1])["event"] == "start"  # whole lines only
        (site.state_dir / "filler").unlink()
    assert len(snapshots(site)) == 2
