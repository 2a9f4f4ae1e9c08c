"""The common role: the server's name, SSH, firewall, clock, journal, and no updates behind the agent's back."""

from __future__ import annotations

import ipaddress

from infra.ansible_vars import SHARED_HOST_TIMEZONE
from tests.hosts.conftest import Server


def test_the_server_carries_the_plans_name(server: Server) -> None:
    assert server.host.check_output("hostname") == server.name
    assert server.host.file("/etc/hosts").contains(f"^127.0.1.1 {server.name}$")


def test_sshd_takes_keys_only_and_root_by_key_only(server: Server) -> None:
    settings = dict(line.split(" ", 1) for line in server.run_ok("sshd -T").splitlines() if " " in line)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitemptypasswords"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    assert settings["permitrootlogin"] == "without-password"  # sshd -T's name for prohibit-password
    ssh = server.host.service("ssh")
    assert ssh.is_running and ssh.is_enabled


def test_the_firewall_opens_the_web_to_all_and_ssh_to_the_admin_ranges_only(server: Server) -> None:
    nftables = server.host.service("nftables")
    assert nftables.is_enabled
    ruleset = server.run_ok("nft list ruleset")
    assert "policy drop" in ruleset
    assert "tcp dport { 80, 443 } accept" in ruleset
    ssh_rule = next(line for line in ruleset.splitlines() if "tcp dport 22 accept" in line)
    allowed = {ipaddress.ip_network(n.strip()) for n in ssh_rule.split("{")[1].split("}")[0].split(",")}
    assert {ipaddress.ip_network(plan.hosting.admin_cidr) for plan in server.plans} <= allowed


def test_the_clock_runs_on_the_plans_time_zone(server: Server) -> None:
    dedicated = [plan.client.timezone for plan in server.plans if plan.hosting.mode == "dedicated"]
    expected = dedicated[0] if dedicated else SHARED_HOST_TIMEZONE
    zone = server.run_ok("realpath %s", f"/usr/share/zoneinfo/{expected}")  # UTC itself links to Etc/UTC
    assert server.host.file("/etc/localtime").linked_to == zone.strip()


def test_the_journal_is_bounded(server: Server) -> None:
    journald = server.host.file("/etc/systemd/journald.conf.d/carestack.conf")
    assert journald.contains("^SystemMaxUse=") and journald.contains("^MaxRetentionSec=")


def test_nothing_updates_the_server_behind_the_agents_back(server: Server) -> None:
    assert not server.host.package("unattended-upgrades").is_installed
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert server.host.check_output("systemctl is-enabled %s || true", timer) == "masked"


def test_admins_log_in_by_key_only_and_may_use_sudo(server: Server) -> None:
    members = server.run_ok("getent group sudo").strip().split(":")[3]
    admins = [name for name in members.split(",") if name]
    assert admins, "no admin account: the server is reachable as root only"
    for name in admins:
        user = server.host.user(name)
        assert user.password.startswith(("!", "*")), f"{name} has a usable password"
        keys = server.host.file(f"{user.home}/.ssh/authorized_keys")
        assert keys.is_file and keys.user == name and keys.mode == 0o600 and keys.size > 0, name
        assert "NOPASSWD: ALL" in server.run_ok("sudo -l -U %s", name), name
