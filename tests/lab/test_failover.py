"""The standby restore the standard and premium tiers promise: `carestack lab failover` on the lab's standby."""

from __future__ import annotations

import io
import shlex

import pytest

from lab.config import load_config
from lab.errors import LabError
from lab.failover import failover
from lab.state import LabState

pytestmark = pytest.mark.lab

CLIENT = "studio"  # standard tier: two sites (WordPress and PHP) on the shared host
MARKER = "written on the own server just before the last backup"


def sh(lab: LabState, host: str, command: str) -> str:
    done = lab.ssh(host, command, timeout=300)
    assert done.returncode == 0, f"{host}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def test_a_client_is_restored_onto_the_standby_with_its_latest_files_and_rows(lab: LabState) -> None:
    plan = lab.plan(CLIENT)
    assert lab.standby is not None and plan.sla.failover is not None
    own, standby = plan.hosting.server, lab.standby
    web = next(site for site in plan.sites if site.database is not None)
    marker_file = f"{web.root}/failover-marker.txt"
    marker_sql = (
        f"CREATE TABLE IF NOT EXISTS failover_marker (note TEXT); INSERT INTO failover_marker VALUES ('{MARKER}')"
    )
    sh(lab, own, f"runuser -u {web.linux_user} -- sh -c {shlex.quote(f'echo {MARKER!r} > {marker_file}')}")
    sh(lab, own, f"mariadb {web.database} -e {shlex.quote(marker_sql)}")
    try:
        sh(lab, own, f"carestack-agent backup {web.id} --reason manual --wait")

        out = io.StringIO()
        report = failover(load_config(lab.state_dir), CLIENT, out=out)

        assert report.standby == standby and report.rto_target_minutes == plan.sla.failover.rto_minutes
        assert sorted(report.restored) == sorted(site.id for site in plan.sites)
        assert report.pages and all(page.ok for page in report.pages), report.pages
        assert len(report.pages) == sum(len(site.checks) for site in plan.sites)
        assert MARKER in sh(lab, standby, f"cat {marker_file}")
        rows = sh(lab, standby, f"mariadb -N {web.database} -e 'SELECT note FROM failover_marker'")
        assert rows.strip() == MARKER
        # restic restores numeric ids; the standby numbered its users in its own order
        owner = sh(lab, standby, f"stat -c %U:%G {web.root} {marker_file}").split()
        assert owner == [f"{web.linux_user}:www-data", f"{web.linux_user}:{web.linux_user}"]
        timers = [f"carestack-{job.name}@{site.id}.timer" for site in plan.sites for job in site.jobs]
        states = lab.ssh(standby, f"systemctl is-active {' '.join(timers)}", timeout=30).stdout.split()
        assert states == ["inactive"] * len(timers), "the drill left the client's jobs running on the standby too"
        assert f"ran on {standby} after" in out.getvalue()
    finally:
        sh(lab, own, f"rm -f {marker_file}; mariadb {web.database} -e 'DROP TABLE IF EXISTS failover_marker'")


def test_a_tier_without_a_standby_restore_is_refused_before_anything_changes(lab: LabState) -> None:
    assert lab.standby is not None
    basic = next(c.id for c in lab.clients if lab.plan(c.id).sla.failover is None)
    config = load_config(lab.state_dir)
    standby_state = "cat /etc/carestack/agent.toml 2>/dev/null; ls -l --full-time /srv/www 2>/dev/null; true"
    before = sh(lab, lab.standby, standby_state)
    ansible_log = config.run_dir / "failover.log"
    log_before = ansible_log.stat().st_mtime_ns if ansible_log.exists() else None
    with pytest.raises(LabError, match=f"{basic}: its tier .* promises no standby restore"):
        failover(config, basic, out=io.StringIO())
    with pytest.raises(LabError, match="no lab client 'nobody'"):
        failover(config, "nobody", out=io.StringIO())
    assert sh(lab, lab.standby, standby_state) == before  # no converge, no restore
    assert (ansible_log.stat().st_mtime_ns if ansible_log.exists() else None) == log_before
