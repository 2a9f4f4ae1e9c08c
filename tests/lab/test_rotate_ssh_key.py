"""Rotating the agency's admin SSH key is a converge (docs/rotation.md): the server stays, its timers keep running.

On the dedicated lab server the admin user's keys are converged to a new key:
it logs in, the old key is refused, and a backup right after succeeds with no
failed unit in the journal. The lab's own key is converged back afterwards
whatever happened, so other tests keep their admin login.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from infra.ansible_vars import ADMIN_USER
from infra.configure import converge
from lab.state import LabState
from tests.ansible.lab_inputs import lab_clients, lab_realization

pytestmark = pytest.mark.lab

SERVER = "shop-1"


def admin_login(lab: LabState, key: Path) -> subprocess.CompletedProcess[str]:
    """A fresh login as the admin user with only this key (no shared connection, no agent)."""
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), "-o", "ControlPath=none", "-o", "IdentitiesOnly=yes",
         "-o", "IdentityAgent=none", "-i", str(key), "-l", ADMIN_USER, SERVER, "sudo -n id -un"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def failed_units(lab: LabState) -> set[str]:
    listed = lab.ssh(SERVER, "systemctl list-units --failed --plain --no-legend 'carestack*'").stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def test_the_admin_key_rotates_by_converging_without_a_failed_job(lab: LabState, tmp_path: Path) -> None:
    new_key = tmp_path / "agency-admin-new"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rotated", "-f", str(new_key)], check=True)
    clients = lab_clients(lab, [SERVER])
    realization = lab_realization(lab)
    rotated = dataclasses.replace(realization, admin_keys=(new_key.with_suffix(".pub").read_text().strip(),))
    since = lab.ssh(SERVER, "date +%s").stdout.strip()
    failed_before = failed_units(lab)
    try:
        result = converge(clients, rotated, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None, limit=[SERVER])
        assert result.ok, result.output[-3000:]

        new = admin_login(lab, new_key)
        assert new.returncode == 0 and new.stdout.strip() == "root", new.stderr
        old = admin_login(lab, lab.ssh_key)
        assert old.returncode == 255 and "Permission denied" in old.stderr, old.stderr

        site = clients[0].plan.sites[0]
        backup = lab.ssh(SERVER, f"carestack-agent backup {site.id} --reason manual --wait", timeout=900)
        assert backup.returncode == 0, backup.stdout + backup.stderr
        assert failed_units(lab) <= failed_before, "a job failed during the rotation"
        journal = lab.ssh(
            SERVER, f"journalctl --since @{since} --no-pager -q -u 'carestack*' | grep -i 'failed' || true"
        )
        assert journal.stdout.strip() == "", journal.stdout
    finally:
        back = converge(
            clients, realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None, limit=[SERVER]
        )
        assert back.ok, back.output[-3000:]
    assert admin_login(lab, lab.ssh_key).returncode == 0
