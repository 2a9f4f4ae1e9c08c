"""Rotating a client's restic password is a converge (docs/rotation.md): the repositories learn the new
password before the server's file names it, and the old one opens nothing afterwards.

On the dedicated lab server the client's password is converged to a new one: a backup right after
succeeds, no carestack unit failed, the repository has one key and the old password is refused. The
lab's own password is converged back afterwards whatever happened (the lab's state keeps it), which
is itself a second rotation.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shlex
import subprocess

import pytest

from infra.agent_config import password_file
from infra.agent_config import repository as agent_repository
from infra.ansible_vars import Client
from infra.configure import converge
from lab.state import LabState
from tests.ansible.lab_inputs import lab_clients, lab_realization
from tests.lab.test_rotate_ssh_key import SERVER, failed_units

pytestmark = pytest.mark.lab


def with_password(client: Client, password: str) -> Client:
    return dataclasses.replace(client, secrets=dataclasses.replace(client.secrets, restic_password=password))


def restic(lab: LabState, client: Client, *args: str, password: str | None = None) -> tuple[int, str]:
    """restic on the server against the client's first site's repository with the site's S3 keys;
    authenticated by the server's password file, or by `password` (sent on stdin, never in argv)."""
    cid = client.plan.client.id
    repository = agent_repository(lab_realization(lab).s3_endpoint, client.plan.sites[0])
    run = f"restic --json {' '.join(map(shlex.quote, args))}"
    if password is None:
        run = f"RESTIC_PASSWORD_FILE={shlex.quote(password_file(cid))} {run}"
    else:
        run = f'f=$(umask 077; mktemp); cat > "$f"; RESTIC_PASSWORD_FILE="$f" {run}; s=$?; rm -f "$f"; exit $s'
    command = (
        f"set -a; . /etc/carestack/secrets/{cid}.s3.env; set +a; "
        f"export RESTIC_REPOSITORY={shlex.quote(repository)} RESTIC_CACHE_DIR=/tmp/rotation-test-cache; {run}"
    )
    done = subprocess.run(
        ["ssh", "-F", str(lab.ssh_config), SERVER, command],
        input=(password + "\n") if password is not None else "", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done.returncode, done.stdout


def test_the_restic_password_rotates_by_converging_without_a_failed_job(lab: LabState) -> None:
    clients = lab_clients(lab, [SERVER])
    [client] = clients
    old = client.secrets.restic_password
    new = secrets.token_urlsafe(24)
    realization = lab_realization(lab)
    failed_before = failed_units(lab)
    try:
        result = converge([with_password(client, new)], realization, ssh_config=lab.ssh_config,
                          ssh_key=lab.ssh_key, stream=None, limit=[SERVER])  # fmt: skip
        assert result.ok, result.output[-3000:]
        assert new not in result.output and old not in result.output

        for site in client.plan.sites:
            backup = lab.ssh(SERVER, f"carestack-agent backup {site.id} --reason manual --wait", timeout=900)
            assert backup.returncode == 0, backup.stdout + backup.stderr
        code, listed = restic(lab, client, "key", "list")
        assert code == 0
        assert [k["current"] for k in json.loads(listed)] == [True]
        assert restic(lab, client, "cat", "config", password=old)[0] != 0
        assert restic(lab, client, "cat", "config", password=new)[0] == 0
        assert failed_units(lab) <= failed_before, "a job failed during the rotation"
    finally:
        back = converge(clients, realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None,
                        limit=[SERVER])  # fmt: skip
        assert back.ok, back.output[-3000:]
    assert restic(lab, client, "cat", "config", password=old)[0] == 0
    assert restic(lab, client, "cat", "config", password=new)[0] != 0
