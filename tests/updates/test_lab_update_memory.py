"""The update flow's memory and what it tells people, on the lab's studio server (marked `lab`).

Every version that broke the site stays held until an operator clears it;
each rollback reaches Kuma's UPDATE monitor with what broke and stays there
until the component updates or an operator acknowledges it; a run killed under
systemd is settled by the units' OnFailure= within a minute; a rollback that
fails stays pending until a later verb settles it; a pre-update snapshot that
fails changes nothing.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from infra import agent_config
from tests.updates.conftest import KILL_STEPS, TEST_CONFIG, TEST_ROOT, UpdatesLab
from tests.updates.test_lab_updates import ROLLED_BACK, kuma_update_beat, steps_of, wait_for

pytestmark = pytest.mark.lab

AUTH = 3  # carestack-agent's exit code for a wrong repository password (README)
PASSWORD_COPY = f"{TEST_ROOT}/restic-password"


def status(updates: UpdatesLab) -> dict[str, Any]:
    out = updates.server.run(f"carestack-agent --config {TEST_CONFIG} status --json")
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def held(updates: UpdatesLab) -> list[tuple[str, bool]]:
    """The PHP site's remembered broken versions: (version, still open)."""
    return [(f["version"], f["open"]) for f in status(updates)["sites"][updates.plans.id]["failed_versions"]]


@pytest.fixture
def units_use_the_test_config(updates: UpdatesLab) -> Iterator[None]:
    """The real job and settle units, reading the tests' config (a runtime drop-in, gone at reboot)."""
    server = updates.server
    dropins = [f"/run/systemd/system/carestack-{unit}@.service.d" for unit in ("update", "settle")]
    for directory in dropins:
        server.sh(f"mkdir -p {directory} && printf '[Service]\\nEnvironment=CARESTACK_AGENT_CONFIG={TEST_CONFIG}\\n'"
                  f" > {directory}/update-tests.conf")  # fmt: skip
    server.sh("systemctl daemon-reload")
    try:
        yield
    finally:
        server.sh(f"rm -rf {' '.join(dropins)} && systemctl daemon-reload && systemctl reset-failed 'carestack-*'",
                  check=False)  # fmt: skip


def test_an_update_killed_under_systemd_is_settled_within_a_minute(
    updates: UpdatesLab, units_use_the_test_config: None
) -> None:
    server, plans = updates.server, updates.plans
    updates.forget_failed()
    updates.offer_release(f"1.3.{KILL_STEPS.index('probe')}")  # broken: the site fails while it is in place
    updates.configure({plans.id: ["release"]})
    before = updates.state(plans)

    killed = json.loads(server.sh(f"python3 {TEST_ROOT}/kill_at_step.py - {plans.id} probe --systemd"))
    assert killed["killed"], killed

    def settled() -> bool:
        return any(r.get("event") == "end" for r in server.journal(killed["run_id"]))

    assert wait_for(settled, seconds=60), "nothing settled the killed update within a minute"
    end = next(r for r in server.journal(killed["run_id"]) if r.get("event") == "end")
    assert end["figures"]["recovered_by"].startswith("settle "), end
    assert end["figures"]["outcome"] == "rolled back"
    assert updates.state(plans) == before
    assert updates.healthy(plans)
    shown = status(updates)["sites"][plans.id]["jobs"]["update"]
    assert shown["run_id"] == killed["run_id"] and shown["recovered_by"] == end["figures"]["recovered_by"]
    assert "interrupted at step probe" in shown["message"] and "rolled back" in shown["message"]
    updates.offer_release()


def _config_with_password_copy(updates: UpdatesLab) -> None:
    """TEST_CONFIG with the PHP site's restic password read from a copy the test can spoil."""
    server, plans = updates.server, updates.plans
    doc = tomllib.loads(server.sh(f"cat {TEST_CONFIG}"))
    site = doc["sites"][plans.id]
    server.sh(f"install -m 0600 {shlex.quote(site['password_file'])} {PASSWORD_COPY}")
    site["password_file"] = PASSWORD_COPY
    server.sh(f"cat > {TEST_CONFIG}", stdin=agent_config.dumps(doc))


def _spoil_password() -> str:
    return f"cp {PASSWORD_COPY} {PASSWORD_COPY}.good && printf 'not the password\\n' > {PASSWORD_COPY}"


def test_a_rollback_that_fails_stays_pending_until_a_later_verb_settles_it(updates: UpdatesLab) -> None:
    server, plans = updates.server, updates.plans
    updates.forget_failed()
    updates.offer_release("1.2")  # broken
    updates.configure({plans.id: ["release"]})
    _config_with_password_copy(updates)
    before = updates.state(plans)

    # The snapshot is taken; while the broken release is probed, the repository password goes bad.
    spoil = shlex.quote(_spoil_password())
    run = json.loads(server.sh(f"python3 {TEST_ROOT}/kill_at_step.py {TEST_CONFIG} {plans.id} probe --instead {spoil}"))
    assert not run["killed"] and run["returncode"] == 1, run
    first = [r for r in server.journal(run["run_id"]) if r.get("event") == "end"][-1]
    assert first["figures"]["pending_rollback"] and "ROLLBACK FAILED" in first["message"], first
    assert not updates.healthy(plans)  # the broken release is still in place
    beat = kuma_update_beat(updates, plans)
    assert beat["status"].name == "DOWN" and "ROLLBACK FAILED" in beat["msg"], beat

    again = server.agent("check", plans.id)  # the next verb tries again, and fails again: it says so
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"an interrupted update (run {run['run_id']}) could not be rolled back" in again.stderr
    ends = [r for r in server.journal(run["run_id"]) if r.get("event") == "end"]
    assert len(ends) == 2 and "the rollback failed again" in ends[-1]["message"]
    assert ends[-1]["figures"]["pending_rollback"]

    server.sh(f"mv {PASSWORD_COPY}.good {PASSWORD_COPY}")
    settled = server.agent("backup", plans.id)
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert f"first settled update run {run['run_id']}" in settled.stdout and "rolled back" in settled.stdout
    last = [r for r in server.journal(run["run_id"]) if r.get("event") == "end"][-1]
    assert last["figures"]["recovered_by"].startswith("backup ") and last["figures"]["outcome"] == "rolled back"
    assert updates.state(plans) == before
    assert updates.healthy(plans)
    updates.offer_release()


def test_a_failed_pre_update_snapshot_changes_nothing_and_says_so(updates: UpdatesLab) -> None:
    server, plans = updates.server, updates.plans
    updates.forget_failed()
    updates.offer_release("1.4")  # a good version: only the snapshot stands in its way
    updates.configure({plans.id: ["release"]})
    _config_with_password_copy(updates)
    server.sh(_spoil_password())
    before = updates.state(plans)
    try:
        done = server.agent("update", plans.id)
    finally:
        server.sh(f"mv {PASSWORD_COPY}.good {PASSWORD_COPY}")
    assert done.returncode == AUTH, done.stdout + done.stderr
    run = server.last_update(plans)
    assert run["message"].startswith("nothing updated: the pre-update backup failed: "), run["message"]
    assert "password" in run["message"]
    assert steps_of(run) == ["health", "check", "snapshot"]
    assert not [e for e in run["events"] if e.get("event") == "apply"]
    assert updates.state(plans) == before
    beat = kuma_update_beat(updates, plans)
    assert beat["status"].name == "DOWN" and "nothing updated" in beat["msg"], beat
    updates.offer_release()


def test_every_broken_version_stays_held_and_each_rollback_reaches_kuma_until_resolved(updates: UpdatesLab) -> None:
    """Last in this module: it leaves the PHP site on release 1.4, newer than every broken release."""
    server, plans = updates.server, updates.plans
    updates.forget_failed()
    updates.configure({plans.id: ["release"]})
    first_broken, second_broken = "1.2", f"1.3.{KILL_STEPS.index('health')}"

    updates.offer_release(first_broken)
    first = server.agent("update", plans.id)
    assert first.returncode == ROLLED_BACK, first.stdout + first.stderr
    beat = kuma_update_beat(updates, plans)
    assert beat["status"].name == "DOWN" and beat["msg"].startswith("update failed: rolled back: release "), beat
    assert f"→{first_broken}; it broke {plans.domain}/" in beat["msg"], beat  # the component, versions and page

    updates.offer_release(first_broken, second_broken)  # a newer broken version: tried, rolled back again
    second = server.agent("update", plans.id)
    assert second.returncode == ROLLED_BACK, second.stdout + second.stderr
    run = server.last_update(plans)
    assert f"→{second_broken} (still rolled back: release " in run["message"]
    assert f"→{first_broken} on " in run["message"] and f"it broke {plans.domain}/" in run["message"]
    beat = kuma_update_beat(updates, plans)  # Kuma does not notify down→down: its message carries both
    assert beat["status"].name == "DOWN" and f"→{second_broken}" in beat["msg"] and f"→{first_broken}" in beat["msg"]

    updates.offer_release(first_broken)  # the older broken version again: skipped, with a line that says so
    skipped = server.agent("update", plans.id)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert f"release {first_broken} skipped: it broke the site and was rolled back on " in skipped.stdout
    assert "snapshot" not in steps_of(server.last_update(plans))
    beat = kuma_update_beat(updates, plans)  # "no updates" does not clear the rollbacks
    assert beat["status"].name == "DOWN" and beat["msg"].startswith("still rolled back: release"), beat
    assert held(updates) == [(first_broken, True), (second_broken, True)]
    listed = server.run(f"carestack-agent --config {TEST_CONFIG} status")
    assert listed.returncode == 1 and f"{plans.id} broke the site, OPEN, not acknowledged" in listed.stdout

    updates.offer_release(first_broken, second_broken, "1.4")  # a newer good version is applied
    good = server.agent("update", plans.id)
    assert good.returncode == 0 and "release" in good.stdout and "→1.4" in good.stdout, good.stdout + good.stderr
    assert updates.healthy(plans)
    beat = kuma_update_beat(updates, plans)
    assert beat["status"].name == "UP" and beat["msg"].startswith("updated: release"), beat
    assert held(updates) == [(first_broken, False), (second_broken, False)]  # resolved, still held

    cleared = server.agent("update", plans.id, "--retry", "release")
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    assert held(updates) == []
    updates.offer_release()
