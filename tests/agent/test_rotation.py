"""Rotating a client's restic password: the repositories learn the new one before the file names it,
and the old one opens nothing afterwards. Real restic against moto S3 (IAM enforced), the real CLI.

A rotation killed part-way leaves one of two states on disk (the new key added with the old file in
place; or the file replaced with the old key still there, `.new` beside it); each is set up exactly
and the next run must finish from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from carestack_agent import exitcodes
from carestack_agent.actions.rotate import pending_file

from .conftest import ROOT, Site, write_secret

pytestmark = pytest.mark.agent

NEW = "a new password for the new year"


def rotate(site: Site, wanted: dict[str, str] | str) -> subprocess.CompletedProcess[str]:
    """`carestack-agent rotate-passwords` as the converge runs it: the files' contents on stdin."""
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.config_path), "PYTHONPATH": str(ROOT / "agent")}
    stdin = wanted if isinstance(wanted, str) else json.dumps(wanted)
    return subprocess.run(
        [sys.executable, "-m", "carestack_agent", "rotate-passwords"],
        input=stdin, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def password_file(site: Site) -> Path:
    return site.dir / "secrets/restic-password"


def opens(site: Site, password: str) -> bool:
    other = site.dir / "secrets/probe-password"
    write_secret(other, password + "\n")
    done = site.restic("-p", str(other), "cat", "config", check=False)
    other.unlink()
    return done.returncode == 0


def keys(site: Site) -> list[dict[str, object]]:
    return list(json.loads(site.restic("key", "list", json_out=True).stdout))


def test_the_new_password_opens_the_repository_and_the_old_one_nothing(make_site) -> None:
    site = make_site(database=False)
    assert site.agent("backup", site.id).returncode == 0
    old = site.password

    done = rotate(site, {str(password_file(site)): NEW + "\n"})

    assert done.returncode == 0, done.stderr
    changed = json.loads(done.stdout)["changed"]
    assert changed == [
        f"{site.id}: new restic password added as a key",
        f"{password_file(site)}: replaced",
        f"{site.id}: 1 old restic key(s) removed",
    ]
    assert password_file(site).read_text() == NEW + "\n"
    assert password_file(site).stat().st_mode & 0o777 == 0o600
    assert not pending_file(password_file(site)).exists()
    assert NEW not in done.stdout + done.stderr and old not in done.stdout + done.stderr
    site.password = NEW  # what the converge's secrets step writes next (the same content)
    assert opens(site, NEW) and not opens(site, old)
    assert [k["current"] for k in keys(site)] == [True]
    before = {s["id"] for s in json.loads(site.restic("snapshots", "--json").stdout)}
    assert site.agent("backup", site.id).returncode == 0  # the jobs go on with the new password
    assert {s["id"] for s in json.loads(site.restic("snapshots", "--json").stdout)} - before

    again = rotate(site, {str(password_file(site)): NEW + "\n"})
    assert again.returncode == 0 and json.loads(again.stdout) == {"changed": []}


def test_killed_after_the_new_key_was_added_the_next_run_finishes(make_site) -> None:
    site = make_site(database=False)
    old = site.password
    pending = pending_file(password_file(site))
    write_secret(pending, NEW + "\n")
    site.restic("key", "add", "--new-password-file", str(pending))  # then the kill: the file still old
    assert len(keys(site)) == 2

    done = rotate(site, {str(password_file(site)): NEW + "\n"})

    assert done.returncode == 0, done.stderr
    changed = json.loads(done.stdout)["changed"]
    assert f"{site.id}: new restic password added as a key" not in changed  # not added twice
    assert changed[-1] == f"{site.id}: 1 old restic key(s) removed"
    site.password = NEW
    assert opens(site, NEW) and not opens(site, old)
    assert len(keys(site)) == 1 and not pending.exists()


def test_killed_after_the_file_was_replaced_the_next_run_removes_the_old_key(make_site) -> None:
    site = make_site(database=False)
    old = site.password
    pending = pending_file(password_file(site))
    write_secret(pending, NEW + "\n")
    site.restic("key", "add", "--new-password-file", str(pending))
    site.password = NEW
    site.write_config()  # the file replaced, then the kill: the old key still opens the repository
    assert opens(site, old)

    done = rotate(site, {str(password_file(site)): NEW + "\n"})

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed"] == [f"{site.id}: 1 old restic key(s) removed"]
    assert not opens(site, old) and opens(site, NEW)
    assert not pending.exists()


def test_a_repository_not_initialized_yet_takes_the_new_password_at_its_init(make_site) -> None:
    site = make_site(database=False, init=False)

    done = rotate(site, {str(password_file(site)): NEW + "\n"})

    assert done.returncode == 0, done.stderr
    assert password_file(site).read_text() == NEW + "\n"
    site.password = NEW
    assert site.agent("init", site.id).returncode == 0
    assert opens(site, NEW)


def test_without_a_configuration_yet_there_is_nothing_to_rotate(tmp_path: Path) -> None:
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(tmp_path / "agent.toml"), "PYTHONPATH": str(ROOT / "agent")}
    done = subprocess.run(
        [sys.executable, "-m", "carestack_agent", "rotate-passwords"],
        input=json.dumps({str(tmp_path / "x.restic-password"): "p\n"}), env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout) == {"changed": []}


def test_bad_input_is_refused_by_name_before_anything_changes(make_site) -> None:
    site = make_site(database=False)
    before = password_file(site).read_text()
    for stdin, said in (
        ("{not json", "stdin: not JSON"),
        (json.dumps([1, 2]), "expected a JSON object"),
        (json.dumps({"relative/path": "x"}), "must be absolute: relative/path"),
    ):
        done = rotate(site, stdin)
        assert done.returncode == exitcodes.USAGE
        assert said in done.stderr
    assert password_file(site).read_text() == before
    assert len(keys(site)) == 1
