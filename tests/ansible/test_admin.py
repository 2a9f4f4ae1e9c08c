"""The admin account the common role creates: the lab's key logs in as `admin`, and sudo needs no password."""

from __future__ import annotations

import subprocess

import pytest

from infra.ansible_vars import ADMIN_USER
from lab.state import LabState

pytestmark = pytest.mark.lab


def test_the_admin_logs_in_with_the_lab_key_and_becomes_root(lab: LabState) -> None:
    for client in lab.clients:
        done = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), "-l", ADMIN_USER, client.server, "sudo -n id -un"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "root"


def test_nobody_logs_in_with_a_password(lab: LabState) -> None:
    for client in lab.clients:
        done = subprocess.run(
            [
                "ssh",
                "-F",
                str(lab.ssh_config),
                "-o",
                "ControlPath=none",  # a fresh login, not the lab's shared connection
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PreferredAuthentications=password,keyboard-interactive",
                "-o",
                "BatchMode=no",
                "-o",
                "NumberOfPasswordPrompts=0",
                client.server,
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 255 and "Permission denied" in done.stderr, done.stderr
