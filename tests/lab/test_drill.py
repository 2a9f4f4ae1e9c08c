"""The premium tier's scheduled restore drill on the lab's real standby: its timer, a drill that passes, and
one that fails with the reason.

The converge places the shop's drill on the standby (its timer on the plan's
schedule, its config, the drill user's PHP pool and database user). The drill
unit, started as its timer would, restores the shop's latest complete snapshot
into a scratch site, finds every checked page there through nginx and PHP,
records RTO and RPO in the client's bucket, pushes its monitor up, and leaves
no scratch site behind. A snapshot whose dump is broken fails the drill, which
says why, pushes the monitor down and still removes the scratch site.
"""

from __future__ import annotations

import shlex
import time
from datetime import UTC, datetime, timedelta

import pytest

from infra.agent_config import DRILL_SCRATCH_DIR
from infra.evidence import read_records
from infra.kuma_client import connect
from infra.plan import SitePlan
from lab.evidence import evidence_access
from lab.state import LabState

pytestmark = pytest.mark.lab

CLIENT = "shop"  # premium: a monthly restore drill


def drilled_site(lab: LabState) -> SitePlan:
    plan = lab.plan(CLIENT)
    site = next(site for site in plan.sites if any(job.name == "drill" for job in site.jobs))
    assert site.database is not None, "the example shop has a database: the drill restores it too"
    return site


def run_drill(lab: LabState, site: SitePlan) -> tuple[int, str]:
    """The drill's unit, started as its timer starts it (a oneshot: this waits for it)."""
    started = lab.ssh(lab.standby, f"systemctl start carestack-drill@{site.id}.service", timeout=1800)
    journal = lab.ssh(lab.standby, f"journalctl -u carestack-drill@{site.id}.service -n 20 --no-pager -o cat")
    return started.returncode, journal.stdout


def drill_records(lab: LabState, site: SitePlan, since: datetime) -> list:
    """The drill records of runs started since `since` (the servers share this machine's clock)."""
    window = since - timedelta(seconds=5)
    found = read_records(evidence_access(lab, CLIENT), site.id, window, datetime.now(UTC), jobs=["drill"])
    assert found.problems == [], found.problems
    return [record for record in found if record.started >= since]


def drill_monitor_status(lab: LabState, site: SitePlan) -> int | None:
    with connect(lab.kuma_login()) as session:
        monitor = next(m for m in session.monitors() if m["name"] == f"{site.id} · drill job")
        beats = session.api.get_monitor_beats(int(monitor["id"]), 1)
    return int(sorted(beats, key=lambda b: str(b["time"]))[-1]["status"]) if beats else None


def no_scratch_left(lab: LabState, site: SitePlan) -> None:
    assert lab.ssh(lab.standby, f"test -e {DRILL_SCRATCH_DIR}/{site.id}").returncode != 0
    assert (
        lab.ssh(lab.standby, f"ls /etc/nginx/sites-enabled/ | grep -c carestack-drill-{site.id}").stdout.strip() == "0"
    )
    databases = lab.ssh(lab.standby, "mariadb -N -e \"SHOW DATABASES LIKE 'drill\\_%'\"").stdout
    assert databases.strip() == "", databases


def test_the_drill_timer_is_on_the_standby_and_a_drill_passes_with_its_rto_recorded(lab: LabState) -> None:
    site = drilled_site(lab)
    timer = f"carestack-drill@{site.id}.timer"
    assert lab.ssh(lab.standby, f"systemctl is-enabled {timer}").stdout.strip() == "enabled"
    assert lab.ssh(lab.plan(CLIENT).hosting.server, f"systemctl cat {timer}").returncode != 0, (
        "drills never run on the primary"
    )

    since = datetime.now(UTC).replace(microsecond=0)
    code, journal = run_drill(lab, site)
    assert code == 0, journal
    [record] = drill_records(lab, site, since)
    assert record.ok and record.host == lab.standby, record.message
    figures = record.figures
    assert 0 < figures["rto_seconds"] <= figures["rto_target_seconds"]
    assert figures["rpo_seconds"] >= 0 and figures["pages"] and all(p["ok"] for p in figures["pages"])
    assert len(figures["pages"]) == len(site.checks)
    no_scratch_left(lab, site)
    # the push reaches Kuma a moment after the unit ends
    deadline = time.monotonic() + 60
    while drill_monitor_status(lab, site) != 1 and time.monotonic() < deadline:
        time.sleep(3)
    assert drill_monitor_status(lab, site) == 1


def test_a_drill_of_a_snapshot_with_a_broken_dump_fails_saying_why_and_leaves_nothing(lab: LabState) -> None:
    site = drilled_site(lab)
    primary = lab.plan(CLIENT).hosting.server
    # A snapshot whose dump is not SQL: the site's newest complete snapshot, made with the dump program
    # swapped for one that prints garbage (restored afterwards; the next backup makes a good one again).
    dumper = "$(command -v mariadb-dump)"
    broken = shlex.quote("#!/bin/sh\necho 'this is not SQL ('\n")
    swap = f"d={dumper}; mv $d $d.real && printf %s {broken} > $d && chmod 755 $d"
    restore_dumper = f"d={dumper}; test -e $d.real && mv -f $d.real $d"
    assert lab.ssh(primary, swap).returncode == 0
    try:
        made = lab.ssh(primary, f"carestack-agent backup {site.id} --reason manual --wait", timeout=900)
    finally:
        assert lab.ssh(primary, restore_dumper).returncode == 0
    try:
        assert made.returncode == 0, made.stdout + made.stderr
        since = datetime.now(UTC).replace(microsecond=0)
        code, journal = run_drill(lab, site)
        assert code != 0, journal
        [record] = drill_records(lab, site, since)
        assert not record.ok and "mariadb import failed" in record.message, record.message
        no_scratch_left(lab, site)
    finally:
        good = lab.ssh(primary, f"carestack-agent backup {site.id} --reason manual --wait", timeout=900)
        assert good.returncode == 0, good.stdout + good.stderr
    # the next drill, of the good snapshot, passes again
    assert run_drill(lab, site)[0] == 0
