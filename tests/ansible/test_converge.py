"""Converging the lab's shared server: drift is repaired, a second run changes nothing, -vvv leaks no secret.

Molecule's discipline on a real server: converge, then converge again and
require `changed=0`. The first run starts from deliberate drift (a secret made
world-readable, a timer's schedule and a vhost edited, the SSH hardening
removed), so it has real work to do and must put every piece back. The drift
leaves every site serving, so other users of the lab are not disturbed, and the
drifted files are put back as they were afterwards whatever the converge did
(a put-back that fails fails the test).
"""

from __future__ import annotations

import pytest

from infra.configure import converge
from lab.state import LabState
from tests.ansible.lab_inputs import lab_clients, lab_realization, secret_values

pytestmark = pytest.mark.lab

SERVER = "shared-1"


# Where the drifted files are kept as they were, to put back by hand should the converge not repair them.
SAVED = "/root/carestack-drift-test.tar"


def test_drift_is_repaired_silently_and_a_second_converge_changes_nothing(lab: LabState) -> None:
    clients = lab_clients(lab, [SERVER])
    realization = lab_realization(lab)
    site = clients[0].plan.sites[0]
    secret = f"/etc/carestack/secrets/{clients[0].plan.client.id}.restic-password"
    timer = f"/etc/systemd/system/carestack-backup@{site.id}.timer"
    vhost = f"/etc/nginx/sites-enabled/{site.id}.conf"
    sshd = "/etc/ssh/sshd_config.d/carestack.conf"
    saved = lab.ssh(
        SERVER, f"tar -C / -cpf {SAVED} {' '.join(path.lstrip('/') for path in (secret, timer, vhost, sshd))}"
    )
    assert saved.returncode == 0, saved.stderr
    try:
        drift = (
            f"chmod 0644 {secret} && sed -i 's/^OnCalendar=.*/OnCalendar=hourly/' {timer} && echo '# drift' >> {vhost}"
            f" && rm {sshd} && systemctl daemon-reload"
        )
        assert lab.ssh(SERVER, drift).returncode == 0

        first = converge(clients, realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, verbosity=3, stream=None)
        assert first.ok, first.output[-3000:]
        assert first.recap[SERVER]["changed"] > 0
        leaked = [value for value in secret_values(clients) if value in first.output]
        assert not leaked, f"{len(leaked)} secret value(s) in the -vvv output"

        repaired = lab.ssh(
            SERVER, f"stat -c %a {secret}; grep ^OnCalendar= {timer}; ! grep -q drift {vhost} && sshd -T"
        )
        assert repaired.stdout.startswith("600\n")
        assert f"OnCalendar={site.job('backup').schedule.on_calendar}\n" in repaired.stdout
        assert "passwordauthentication no" in repaired.stdout

        second = converge(clients, realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None)
        assert second.ok, second.output[-3000:]
        assert second.recap[SERVER]["changed"] == 0, second.changed_tasks()

        # A partial converge: the agent role alone (with the tasks every role needs) on the converged server.
        agent = converge(
            clients, realization, ssh_config=lab.ssh_config, ssh_key=lab.ssh_key, stream=None, only=["agent"]
        )
        assert agent.ok, agent.output[-3000:]
        assert agent.recap[SERVER]["changed"] == 0, agent.changed_tasks()
        roles = {line.split("[", 1)[1].split(" : ", 1)[0] for line in agent.output.splitlines() if " : " in line
                 and line.startswith("TASK [")}  # fmt: skip
        assert roles == {"agent", "web"}, roles  # web: only the read of the PHP version the site role names pools by
    finally:
        put_back(lab)


def put_back(lab: LabState) -> None:
    """The drifted files as they were before the test, whatever the converge did; loudly if that fails."""
    done = lab.ssh(
        SERVER,
        f"tar -C / -xpf {SAVED} && rm {SAVED} && systemctl daemon-reload && nginx -t -q && systemctl reload nginx "
        "&& sshd -t && systemctl reload ssh",
    )
    assert done.returncode == 0, f"putting {SERVER} back failed; later tests would see the drift:\n{done.stderr}"
