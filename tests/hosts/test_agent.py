"""The agent role: installed offline, its config holds the plan's values, root-only secrets, timers on schedule."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.hosts.conftest import Server

CONFIG = "/etc/carestack/agent.toml"


@pytest.fixture(scope="module")
def agent_config(server: Server) -> dict[str, Any]:
    return tomllib.loads(server.run_ok("cat %s", CONFIG))


def test_the_agent_is_installed_and_accepts_its_config(server: Server) -> None:
    assert "ok" in server.run_ok("carestack-agent validate")
    # Debian's pexpect, seen from the agent's environment: nothing came from an index.
    assert server.run_ok("/opt/carestack-agent/bin/python -c 'import pexpect; print(pexpect.__file__)'").startswith(
        "/usr/lib/python3/dist-packages/"
    )


def test_the_agent_config_holds_the_plans_values(server: Server, agent_config: dict[str, Any]) -> None:
    assert agent_config["agent"]["host"] == server.name
    for plan, site in server.sites:
        got = agent_config["sites"][site.id]
        assert (got["domain"], got["kind"], got["root"]) == (site.domain, site.kind, site.root)
        assert site.root in got["paths"]
        assert got["repository"].startswith("s3:") and got["repository"].endswith("/" + site.repository_path)
        assert got.get("database", {}).get("name") == site.database
        assert got["retention"] == {f"keep_{kind}": count for kind, count in plan.backup.keep.items()}
        assert got["jobs"]["backup_timeout_seconds"] == site.job("backup").timeout_seconds
        assert got["jobs"]["prune_timeout_seconds"] == site.job("prune").timeout_seconds
        assert got["jobs"]["check_timeout_seconds"] == site.job("check").timeout_seconds
        assert got["jobs"]["restore_timeout_seconds"] == plan.backup.restore_timeout_seconds
        assert got["jobs"]["check_read_data_subsets"] == plan.backup.check_read_data_subsets
        assert got["jobs"]["update_timeout_seconds"] == site.job("update").timeout_seconds
        updates = plan.updates
        assert got["updates"] == {
            "providers": list(site.providers),
            "apt_policy": updates.apt_policy,
            "wordpress_policy": updates.wordpress_policy,
            "rollback": updates.rollback,
            "probe_slowdown_limit": updates.probe_slowdown_limit,
        }
        assert got["checks"] == [{"path": c.path, "keyword": c.keyword, "status": c.status} for c in site.checks]


def test_secrets_are_root_only_files(server: Server, agent_config: dict[str, Any]) -> None:
    secrets_dir = server.host.file("/etc/carestack/secrets")
    assert (secrets_dir.user, secrets_dir.mode) == ("root", 0o700)
    for _, site in server.sites:
        got = agent_config["sites"][site.id]
        for key in ("password_file", "credentials_file", "push_tokens_file"):
            if key in got:
                secret = server.host.file(got[key])
                assert secret.is_file, got[key]
                assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600), got[key]


def test_each_job_of_each_site_has_a_timer_on_the_plans_schedule(server: Server) -> None:
    for _, site in server.sites:
        for job in site.jobs:
            if job.on_standby:  # the restore drill runs on the standby, not here
                continue
            timer = f"carestack-{job.name}@{site.id}.timer"
            unit = server.run_ok("systemctl cat %s", timer)
            assert f"\nOnCalendar={job.schedule.on_calendar}\n" in unit, timer
            assert f"\nRandomizedDelaySec={job.schedule.randomized_delay_seconds}\n" in unit, timer
            assert "\nPersistent=true\n" in unit, timer
            state = server.run_ok("systemctl show -p UnitFileState -p ActiveState -p NextElapseUSecRealtime %s", timer)
            assert "UnitFileState=enabled" in state and "ActiveState=active" in state, timer
            assert "NextElapseUSecRealtime=\n" not in state + "\n", timer  # systemd understood the calendar


def test_scheduled_jobs_run_the_agents_verb_at_low_priority(server: Server) -> None:
    for _, site in server.sites:
        for job in site.jobs:
            if job.on_standby:  # the restore drill runs on the standby, not here
                continue
            service = f"carestack-{job.name}@{site.id}.service"
            shown = server.run_ok("systemctl show -p ExecStart -p IOSchedulingClass -p CPUWeight %s", service)
            assert f"carestack-agent {job.name} {site.id}" in shown, shown
            assert "IOSchedulingClass=3" in shown or "IOSchedulingClass=idle" in shown, shown
            assert int(shown.split("CPUWeight=")[1].split()[0]) < 100, shown


def test_a_failed_job_and_every_boot_start_the_sites_settle_run(server: Server) -> None:
    """A crashed or killed job is settled at once (OnFailure=), a run a power loss cut short after the boot."""
    for _, site in server.sites:
        settle = f"carestack-settle@{site.id}.service"
        for job in site.jobs:
            if job.on_standby:  # the restore drill runs on the standby, not here
                continue
            shown = server.run_ok("systemctl show -p OnFailure %s", f"carestack-{job.name}@{site.id}.service")
            assert shown.strip() == f"OnFailure={settle}", shown
        assert f"carestack-agent settle {site.id} " in server.run_ok("systemctl show -p ExecStart %s", settle)
        timer = f"carestack-settle@{site.id}.timer"
        assert "\nOnBootSec=" in server.run_ok("systemctl cat %s", timer)
        assert "UnitFileState=enabled" in server.run_ok("systemctl show -p UnitFileState %s", timer)


def test_each_sites_repository_is_initialized(server: Server) -> None:
    for _, site in server.sites:
        assert "already initialized" in server.run_ok("carestack-agent init %s", site.id)


def test_each_site_has_its_scan_baseline_from_onboarding_root_only(server: Server) -> None:
    for _, site in server.sites:
        baseline = server.host.file(f"/var/lib/carestack/scan/{site.id}/baseline.json")
        assert baseline.exists, f"{site.id}: no scan baseline after onboarding"
        assert (baseline.user, baseline.mode) == ("root", 0o600)
