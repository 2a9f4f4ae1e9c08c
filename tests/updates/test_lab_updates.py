"""Updates with automatic rollback on the lab's real sites.

On the studio client's server: its WordPress site (apt and wordpress
providers) and its PHP site (apt and release providers). Good updates apply
and stay; a broken update of each provider is detected by the probes and
rolled back with files and database identical to before; a kill at each step
of the flow is finished by the next agent run, whatever its verb; a site that
is already down gets no update; Kuma's push monitor carries each outcome.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.kuma_client import connect
from infra.plan import SitePlan
from tests.updates import artifacts
from tests.updates.conftest import KILL_STEPS, TEST_CONFIG, TEST_ROOT, UpdatesLab

pytestmark = pytest.mark.lab

ROLLED_BACK, REFUSED = 6, 7  # carestack-agent's exit codes (README)
TOOLS_1_1 = f"{artifacts.TOOLS}_1.1"


def kuma_update_beat(updates: UpdatesLab, site: SitePlan) -> dict[str, Any]:
    """The newest heartbeat of the site's update push monitor, read back from the lab's Kuma."""
    lab = updates.server.lab
    with connect(lab.kuma_login()) as session:
        monitor = next(m for m in session.monitors() if m["name"] == f"{site.id} · update job")
        beats = session.api.get_monitor_beats(int(monitor["id"]), 1)
    beat: dict[str, Any] = beats[-1]
    return beat


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def steps_of(run: dict[str, Any]) -> list[str]:
    return [e["step"] for e in run["events"] if e.get("event") == "step"]


def test_good_updates_apply_and_stay_and_a_second_run_changes_nothing(updates: UpdatesLab) -> None:
    server, web, plans = updates.server, updates.web, updates.plans
    updates.forget_failed()
    updates.publish_apt({"security": [f"{artifacts.TOOLS}_1.0", TOOLS_1_1, f"{artifacts.HELD}_1.0",
                                      f"{artifacts.HELD}_1.1", f"{artifacts.NGINX}_1.0"],
                         "updates": [f"{artifacts.EXTRAS}_1.0", f"{artifacts.EXTRAS}_1.1"]})  # fmt: skip
    updates.offer_plugin("1.1")
    updates.offer_release("1.1")
    updates.configure({web.id: ["apt", "wordpress"], plans.id: ["apt", "release"]})

    done = server.agent("update", web.id)
    assert done.returncode == 0, done.stdout + done.stderr
    run = server.last_update(web)
    assert run["figures"]["outcome"] == "updated"
    assert sorted((c["provider"], c["name"], c["from"], c["to"]) for c in run["figures"]["changes"]) == [
        ("apt", artifacts.TOOLS, "1.0", "1.1"),
        ("wordpress", artifacts.PLUGIN_FILE, "1.0", "1.1"),
    ]
    held = " ".join(run["figures"]["held"])
    assert f"{artifacts.HELD} held at 1.0" in held and "non-security" in held  # the plan's policy and the hold
    installed = updates.installed()
    assert installed[artifacts.TOOLS].startswith("1.1 ii") and installed[artifacts.EXTRAS].startswith("1.0")
    assert installed[artifacts.HELD].startswith("1.0 hi")
    apply = next(e for e in run["events"] if e.get("event") == "apply" and e["provider"] == "apt")
    rollback_dir = apply["offer"]["data"]["rollback_dir"]
    assert server.sh(f"dpkg-deb --field {rollback_dir}/{artifacts.TOOLS}_1.0_all.deb Version").strip() == "1.0"
    assert updates.healthy(web)
    assert f"<!-- {artifacts.PLUGIN} 1.1 -->" in server.sh(f"curl -s -H 'Host: {web.domain}' http://127.0.0.1/")
    beat = kuma_update_beat(updates, web)
    assert beat["status"].name == "UP" and beat["msg"].startswith("updated:"), beat

    done = server.agent("update", plans.id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "release 1.0→1.1" in done.stdout
    assert server.sh(f"grep -o 'release 1.1' {plans.root}/index.php").strip() == "release 1.1"
    assert updates.healthy(plans)

    again = server.agent("update", plans.id)  # everything the plan allows is applied: nothing left
    assert again.returncode == 0 and "no updates" in again.stdout, again.stdout + again.stderr
    assert "snapshot" not in steps_of(server.last_update(plans))  # a no-op run takes no snapshot


BROKEN = {
    # provider: (site attribute, what is offered, the version that breaks the site)
    "apt": ("plans", "nginx", "2.0"),
    "wordpress": ("web", "plugin", "1.2"),
    "release": ("plans", "release", "1.2"),
}


@pytest.mark.parametrize("provider", sorted(BROKEN))
def test_a_broken_update_is_detected_and_rolled_back_to_the_same_files_and_database(
    updates: UpdatesLab, provider: str
) -> None:
    server = updates.server
    site: SitePlan = getattr(updates, BROKEN[provider][0])
    updates.forget_failed()
    if provider == "apt":
        # Only 2.0 is published: the rollback copy of 1.0 must be rebuilt from the installed package.
        updates.publish_apt({"security": [f"{artifacts.NGINX}_2.0"], "updates": []})
    elif provider == "wordpress":
        updates.offer_plugin("1.2")
    else:
        updates.offer_release("1.2")
    updates.configure({updates.web.id: [provider] if provider != "release" else [],
                       updates.plans.id: [provider] if provider != "wordpress" else []})  # fmt: skip
    before = updates.state(site)
    packages_before = updates.installed()
    assert updates.healthy(site)

    done = server.agent("update", site.id)

    assert done.returncode == ROLLED_BACK, done.stdout + done.stderr
    run = server.last_update(site)
    figures = run["figures"]
    assert figures["outcome"] == "rolled back"
    assert [c["to"] for c in figures["rolled_back"]] == [BROKEN[provider][2]]
    assert site.domain in figures["broke"]  # what broke names the page that failed
    assert figures["healthy_after_seconds"] > 0 and figures["rollback_seconds"] > 0
    assert steps_of(run)[-1] == "rollback"
    assert updates.state(site) == before  # files (content, modes, owners, mtimes) and database as before
    assert updates.installed() == packages_before
    assert updates.healthy(site)
    if provider == "apt":
        apply = next(e for e in run["events"] if e.get("event") == "apply")
        assert apply["offer"]["data"]["rollback_copies"] == {artifacts.NGINX: "rebuilt from the installed package"}
        assert server.sh("cat /etc/nginx/conf.d/carestack-lab.conf").strip() == f"# {artifacts.NGINX} 1.0"
    beat = kuma_update_beat(updates, site)
    assert beat["status"].name == "DOWN" and "rolled back" in beat["msg"], beat

    again = server.agent("update", site.id)  # the version that broke the site is not offered again
    assert again.returncode == 0 and "broke the site and was rolled back" in again.stdout, again.stdout


def test_an_update_is_refused_on_a_site_that_is_already_down(updates: UpdatesLab) -> None:
    server, plans = updates.server, updates.plans
    updates.forget_failed()
    updates.offer_release("1.4")
    updates.configure({plans.id: ["release"]})
    before = updates.state(plans)
    account = f"'{plans.linux_user}'@'localhost'"
    server.sh(f'mariadb -e "ALTER USER {account} ACCOUNT LOCK"')  # the site's pages lose their database
    try:
        done = server.agent("update", plans.id)
    finally:
        server.sh(f'mariadb -e "ALTER USER {account} ACCOUNT UNLOCK"')
    assert done.returncode == REFUSED, done.stdout + done.stderr
    run = server.last_update(plans)
    assert run["figures"]["outcome"] == "refused" and "HTTP 500" in run["message"]
    assert steps_of(run) == ["health"]  # no snapshot, nothing applied
    assert updates.state(plans) == before
    beat = kuma_update_beat(updates, plans)
    assert beat["status"].name == "DOWN" and "refused" in beat["msg"], beat
    updates.offer_release()


# A kill at each step: which update runs, which verb runs next (any verb finishes the rollback).
KILLS = {
    "health": ("web", "init"),  # the WordPress site's pages are slow enough to be caught while probed
    "snapshot": ("plans", "check"),
    "apply": ("plans", "backup"),  # killed 2 s in: dpkg is mid-way (the broken package's preinst takes 4 s)
    "probe": ("plans", "prune"),
    "rollback": ("plans", "update"),
}


@pytest.mark.parametrize("step", KILL_STEPS)
def test_a_kill_at_each_step_is_finished_by_the_next_run_of_any_verb(updates: UpdatesLab, step: str) -> None:
    server = updates.server
    site: SitePlan = getattr(updates, KILLS[step][0])
    verb = KILLS[step][1]
    updates.forget_failed()
    if step == "apply":
        updates.publish_apt({"security": [f"{artifacts.NGINX}_1.0", f"{artifacts.NGINX}_2.0"], "updates": []})
        updates.configure({site.id: ["apt"]})
    else:
        updates.offer_release(f"1.3.{KILL_STEPS.index(step)}")
        updates.configure({site.id: ["release"] if site is updates.plans else ["wordpress"]})
    before = updates.state(site)
    packages_before = updates.installed()

    delay = "2.0" if step == "apply" else "0"
    killed = json.loads(server.sh(f"python3 {TEST_ROOT}/kill_at_step.py {TEST_CONFIG} {site.id} {step} {delay}"))
    assert killed["killed"] and killed["returncode"] == -9, killed
    assert killed["steps"][-1] == step, killed
    if step == "apply":
        assert server.sh("dpkg --audit").strip()  # dpkg was cut short: a package is half-installed
    if step == "probe":  # the broken release is in place (PHP's opcache notices within seconds)
        assert wait_for(lambda: not updates.healthy(site), seconds=10)
    status = server.sh("carestack-agent status", check=False)
    assert "interrupted" in status

    after = server.agent(verb, site.id)

    assert after.returncode == 0, after.stdout + after.stderr
    settled = [r for r in server.journal(killed["run_id"]) if r.get("event") == "end"]
    assert settled and settled[-1]["figures"]["recovered_by"].startswith(f"{verb} "), settled
    assert updates.state(site) == before
    assert server.sh(f"ls -A {Path(site.root).parent} | grep '^\\.cs-' || true").strip() == ""  # no staging left
    assert updates.installed() == packages_before
    assert updates.healthy(site)
    if step == "apply":
        assert server.sh("dpkg --audit").strip() == ""  # dpkg's interrupted run was finished
    updates.offer_release()


def test_a_kill_between_the_rollbacks_file_swap_and_database_swap_leaves_exactly_the_previous_site(
    updates: UpdatesLab,
) -> None:
    """The rollback swaps the files back, then the database; killed in between, the next run must give the
    pre-update tree byte for byte (the broken release ships another file set) and the pre-update database."""
    server, site = updates.server, updates.plans
    updates.forget_failed()
    updates.offer_release(f"1.3.{KILL_STEPS.index('rollback')}")
    updates.configure({site.id: ["release"]})
    # the site's own data (the PHP site has no tables of its own): its rows must come back as they were
    rows = (
        "CREATE TABLE IF NOT EXISTS plans_notes (id INT PRIMARY KEY, note TEXT); "
        "REPLACE INTO plans_notes VALUES (1, 'kept')"
    )
    server.sh(f"mariadb -e {shlex.quote(rows)} {site.database}")
    before = updates.state(site)
    # a session reading a live table makes the rollback's RENAME TABLE wait: the agent sits in the window
    hold = shlex.quote("LOCK TABLES plans_notes READ; SELECT SLEEP(600)")
    server.sh(f"nohup mariadb -e {hold} {site.database} </dev/null >/dev/null 2>&1 & echo $! > /run/cs-holder.pid")
    try:
        killed = json.loads(server.sh(f"python3 {TEST_ROOT}/kill_at_step.py {TEST_CONFIG} {site.id} rollback-swap"))
    finally:
        server.sh("kill $(cat /run/cs-holder.pid); rm -f /run/cs-holder.pid", check=False)
    assert killed["killed"] and killed["returncode"] == -9 and killed["renames_killed"], killed
    mixed = updates.state(site)
    assert mixed["files"] == before["files"]  # the files were swapped back ...
    assert "release_migrations" in mixed["tables"]  # ... the database not: the broken release's migration

    after = server.agent("backup", site.id)

    assert after.returncode == 0, after.stdout + after.stderr
    assert updates.state(site) == before
    parent = str(Path(site.root).parent)
    assert server.sh(f"ls -A {parent} | grep '^\\.cs-' || true").strip() == ""
    assert server.sh(f"mariadb -N -e \"SHOW DATABASES LIKE '{site.database}\\_\\_cs%'\"").strip() == ""
    assert updates.healthy(site)
    server.sh(f"mariadb -e 'DROP TABLE plans_notes' {site.database}")
    updates.offer_release()
