"""What operators and the agency see: usage errors, `status`'s verdict, the settle verb, plain-words heartbeats."""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path

import pytest
from carestack_agent import wording
from carestack_agent.actions.backup import backup
from carestack_agent.journal import Journal
from carestack_agent.providers.base import Change, Offer
from carestack_agent.providers.failed import FailedVersions

from .conftest import PushRecorder, Site, write_secret

pytestmark = pytest.mark.agent


def test_an_unknown_site_is_a_usage_error_that_lists_the_sites(make_site) -> None:
    site: Site = make_site(database=False, init=False)
    for verb in (["backup", "nosuch"], ["update", "nosuch"], ["settle", "nosuch"]):
        res = site.agent(*verb)
        assert res.returncode == 2, res.stderr
        assert res.stderr.strip() == f"nosuch: no such site in {site.config_path} (sites: {site.id})"


def test_status_judges_the_scheduled_jobs_and_shows_an_operators_failed_restore(make_site) -> None:
    site: Site = make_site(database=False)
    assert site.agent("backup", site.id).returncode == 0
    failed_restore = site.agent("restore", site.id, "--before", "2001-01-01T00:00:00Z", "--target", str(site.dir / "t"))
    assert failed_restore.returncode == 1, failed_restore.stderr
    res = site.agent("status", "--json")
    assert res.returncode == 0, res.stdout  # a mistyped restore does not keep status red
    jobs = json.loads(res.stdout)["sites"][site.id]["jobs"]
    assert jobs["restore"]["state"] == "failed" and not jobs["restore"]["scheduled"]
    assert jobs["backup"]["scheduled"]
    assert "failed (operator)" in site.agent("status").stdout

    site.password = "wrong"  # a scheduled job that fails still does
    assert site.agent("check", site.id).returncode == 3
    assert site.agent("status").returncode == 1


def test_an_open_rollback_is_listed_by_status_and_keeps_it_red_until_acknowledged(make_site) -> None:
    site: Site = make_site(database=False)
    failed = FailedVersions(site.state_dir, site.id)
    broke = f"{site.id}.example/: HTTP 500, expected 200"
    failed.add([Change("release", "release", site.id, "1.1", "1.2")], "u1", broke)
    res = site.agent("status")
    assert res.returncode == 1
    assert f"{site.id} broke the site, OPEN, not acknowledged: release 1.1→1.2 on " in res.stdout
    assert f"`carestack-agent update {site.id} --retry release` offers it again" in res.stdout

    unknown = site.agent("update", site.id, "--retry", "akismet")
    assert unknown.returncode == 2
    assert "--retry akismet: no version of it is remembered as broken" in unknown.stderr and "release" in unknown.stderr
    ack = site.agent("update", site.id, "--acknowledge")
    assert ack.returncode == 0, ack.stderr
    assert "acknowledged: release 1.1→1.2" in ack.stdout and "stay held" in ack.stdout
    after = site.agent("status")
    assert after.returncode == 0, after.stdout
    assert f"{site.id} broke the site, held: release 1.1→1.2" in after.stdout

    cleared = site.agent("update", site.id, "--retry", "release")  # no providers here: it only forgets
    assert cleared.returncode == 0, cleared.stderr
    assert failed.entries() == []
    retry = [e for e in Journal(site.state_dir).entries() if e.get("event") == "retry"]
    assert retry[-1]["component"] == f"release:release:{site.id}" and retry[-1]["versions"] == ["1.2"]


def test_settle_finishes_an_interrupted_update_and_status_shows_its_own_start(make_site) -> None:
    site: Site = make_site(database=False)
    journal = Journal(site.state_dir)
    start = journal.append({"site": site.id, "job": "update", "run_id": "u0", "event": "start"})
    journal.append({"site": site.id, "job": "update", "run_id": "u0", "event": "end", "result": "ok",
                    "message": "no updates", "figures": {}})  # fmt: skip
    start = journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "start"})
    journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": "step", "step": "check"})

    shown = json.loads(site.agent("status", "--json").stdout)["sites"][site.id]["jobs"]["update"]
    assert shown["state"] == "interrupted" and shown["started"] == start["ts"]
    assert shown["ended"] is None and shown["message"] == "stopped at step check"  # not the previous run's

    res = site.agent("settle", site.id)
    assert res.returncode == 0, res.stderr
    first = f"settle {site.id}: first settled update run u1 (started {start['ts']}): interrupted at step check"
    assert first in res.stdout
    assert "before anything changed: nothing to roll back" in res.stdout
    shown = json.loads(site.agent("status", "--json").stdout)["sites"][site.id]["jobs"]
    assert shown["update"]["state"] == "failed" and shown["update"]["started"] == start["ts"]  # it did not run
    assert shown["update"]["recovered_by"] == f"settle {shown['settle']['run_id']}"
    assert "[finished by settle " in site.agent("status").stdout

    again = site.agent("settle", site.id)
    assert again.returncode == 0 and again.stdout.strip() == f"settle {site.id}: ok: nothing to settle"


def test_a_settled_update_that_stays_resolves_its_component_but_not_another_open_rollback(
    make_site, push: PushRecorder
) -> None:
    site: Site = make_site(database=False, push=push)
    release = Change("release", "release", site.id, "1.1", "1.3")
    failed = FailedVersions(site.state_dir, site.id)
    failed.add([Change("release", "release", site.id, "1.1", "1.2")], "u0", "release broke /")
    failed.add([Change("apt", "package", "nginx", "1.0", "2.0")], "u0", "apt broke /")
    journal = Journal(site.state_dir)
    for event, fields in (
        ("start", {}),
        ("snapshot", {"snapshot_id": "abc"}),
        ("apply", {"offer": Offer("release", [release]).to_json()}),
        ("verified", {}),
    ):
        journal.append({"site": site.id, "job": "update", "run_id": "u1", "event": event, **fields})  # fmt: skip

    res = site.agent("settle", site.id)  # killed after its probes passed: the update stays
    assert res.returncode == 0, res.stderr
    assert "after its probes passed: the update stays" in res.stdout
    assert [(f.label, f.version) for f in failed.open_rollbacks()] == [("apt nginx", "2.0")]
    pushed = [r for r in push.requests if r.startswith("/api/push/tok-update-012?")]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(pushed[-1]).query)
    assert query["status"] == ["down"]  # not "up": the nginx rollback still waits for an operator
    assert query["msg"][0].startswith("still rolled back: apt nginx 1.0→2.0 on "), query


def test_a_killed_database_dump_reaches_kuma_in_plain_words(make_site, push: PushRecorder, tmp_path: Path) -> None:
    site: Site = make_site(push=push)
    script = '#!/bin/sh\n/usr/bin/mariadb-dump "$@" | head -c 2000\nkill -9 $$\n'  # a dump killed half-way
    killed = write_secret(tmp_path / "dump-killed.sh", script)
    os.chmod(killed, 0o700)
    site.extra_agent = {"mariadb_dump": str(killed)}
    result = backup(site.config(), site.id)
    assert not result.ok and "mariadb-dump exited with status -9" in result.message  # the journal keeps the detail
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(push.requests[-1]).query)
    assert query["status"] == ["down"]
    msg = query["msg"][0]
    assert "the database dump (mariadb-dump) was killed (SIGKILL)" in msg, msg
    assert "status -9" not in msg


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("database dump failed: mariadb-dump exited with status -9: x",
         "database dump failed: the database dump (mariadb-dump) was killed (SIGKILL): x"),
        ("restic backup failed (exit -15): interrupted", "restic backup failed (stopped by SIGTERM): interrupted"),
        ("apt-get update failed: exit status -9", "apt-get update failed: the program was killed (SIGKILL)"),
        ("wordpress upgrade failed: php exited with status 255", "wordpress upgrade failed: WordPress's updater (php) "
         "failed (exit status 255)"),
        ("OSError: [Errno 28] No space left on device: '/var/lib/carestack'",
         "No space left on device: '/var/lib/carestack'"),
        ("internal error: KeyError", "the agent met an internal error (KeyError); the details are in the server's log"),
        ("restic check failed (exit 1): the repository contains errors",
         "restic check failed (exit 1): the repository contains errors"),
    ],
)  # fmt: skip
def test_heartbeat_wording_says_what_happened(raw: str, plain: str) -> None:
    assert wording.plain(raw) == plain


def test_settle_on_a_new_server_before_init_has_nothing_to_settle(make_site) -> None:
    """At boot a new server settles its sites before the first converge ran `init`: no repository, no failure."""
    site: Site = make_site(database=False, init=False)
    res = site.agent("settle", site.id)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"settle {site.id}: ok: nothing to settle: the site has no repository yet"
    assert site.agent("init", site.id).returncode == 0
    backup = site.agent("backup", site.id)
    assert backup.returncode == 0, backup.stderr
