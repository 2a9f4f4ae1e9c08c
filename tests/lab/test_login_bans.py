"""The ban on repeated failed logins, attacked for real: an outside address guesses SSH users and WordPress
passwords on the shared server until fail2ban bans it, while the lab's own address (Ansible, the tests,
Kuma) fails as often and keeps its access. The attacker is an extra address on the lab's bridge (the
servers cannot reach each other); it and every ban are removed afterwards, whatever the test found."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from lab.state import LabState

pytestmark = pytest.mark.lab

TARGET = "shared-1"
# More than the jails' maxretry (common_ban_max_retry), so the last attempts meet the ban.
ATTEMPTS = 8


@pytest.fixture
def attacker(lab: LabState) -> Iterator[str]:
    """An address of the lab's subnet that is no server's and not the trusted bridge address."""
    address = str(ipaddress.ip_network(lab.subnet)[-2])
    assert address not in {h.address for h in lab.hosts} | {lab.bridge_address}
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", lab.bridge], check=True)
    try:
        yield address
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", lab.bridge], check=True)


def _target(lab: LabState) -> str:
    return next(h.address for h in lab.hosts if h.name == TARGET)


def _banned(lab: LabState, jail: str, address: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        status = lab.ssh(TARGET, f"fail2ban-client status {jail}").stdout
        if address in status.split("Banned IP list:")[-1].split():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def _unban(lab: LabState, jail: str, address: str) -> None:
    done = lab.ssh(TARGET, f"fail2ban-client set {jail} unbanip {address}")
    assert done.returncode == 0 or "is not banned" in done.stdout + done.stderr, done.stderr


def _reaches(source: str, address: str, port: int) -> bool:
    """Whether a TCP connection from `source` to address:port opens."""
    try:
        with socket.create_connection((address, port), timeout=5, source_address=(source, 0)):
            return True
    except OSError:
        return False


def _ssh_as_nobody_known(source: str, address: str) -> None:
    """One failed SSH login; a connection the ban cuts off mid-handshake hangs, so it is given up on."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            [
                *("ssh", "-b", source, "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"),
                *("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"),
                *(f"carestack-intruder@{address}", "true"),
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )


def test_ssh_user_guessing_is_banned_and_the_lab_keeps_its_access(lab: LabState, attacker: str) -> None:
    target = _target(lab)
    assert _reaches(attacker, target, 22), "the attacker cannot reach SSH to begin with"
    try:
        for _ in range(ATTEMPTS):
            _ssh_as_nobody_known(attacker, target)
        assert _banned(lab, "sshd", attacker), lab.ssh(TARGET, "fail2ban-client status sshd").stdout
        assert not _reaches(attacker, target, 22)
        for _ in range(ATTEMPTS):  # the lab's own address fails as often
            _ssh_as_nobody_known(lab.bridge_address, target)
        assert not _banned(lab, "sshd", lab.bridge_address, timeout=3)
        assert lab.ssh(TARGET, "true").returncode == 0, "the lab itself lost its SSH access"
    finally:
        _unban(lab, "sshd", attacker)
    assert _reaches(attacker, target, 22)


def test_wordpress_password_guessing_is_banned_and_never_the_labs_own_address(lab: LabState, attacker: str) -> None:
    plan = next(lab.plan(c.id) for c in lab.clients if c.server == TARGET)
    site = next(s for s in plan.sites if s.kind in ("wordpress", "woocommerce"))
    port = 443 if site.https else 80
    target = _target(lab)

    def failed_login(source: str) -> str:
        """A wrong password from `source`; the HTTP status ("000": no connection)."""
        answer = subprocess.run(
            [
                *("curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--interface", source),
                *("--resolve", f"{site.domain}:{port}:{target}", "--data", "log=admin&pwd=guess"),
                f"{site.url}wp-login.php",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return answer.stdout

    try:
        statuses = [failed_login(attacker) for _ in range(ATTEMPTS)]
        assert statuses[0] == "200", statuses  # WordPress's form again: a failed login
        assert _banned(lab, "carestack-wordpress", attacker), lab.ssh(TARGET, "journalctl -t carestack_login").stdout
        assert failed_login(attacker) == "000"
        # The lab's own address (as Kuma and the tests reach the sites) fails as often and is never banned.
        assert [failed_login(lab.bridge_address) for _ in range(ATTEMPTS)] == ["200"] * ATTEMPTS
        assert not _banned(lab, "carestack-wordpress", lab.bridge_address, timeout=3)
    finally:
        _unban(lab, "carestack-wordpress", attacker)
    assert _reaches(attacker, target, port)
