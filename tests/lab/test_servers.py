"""The lab's servers: real nspawn guests reached over ssh, Ansible and testinfra."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra

from lab.config import load_config
from lab.state import LabState
from lab.system import ip_json

pytestmark = pytest.mark.lab

ANSIBLE = str(Path(sys.executable).with_name("ansible"))
# TEST-NET-1 (RFC 5737): never routed anywhere, used when the machine has no default gateway.
DOCUMENTATION_ADDRESS = "192.0.2.1"


def _ansible(lab: LabState, module: str, args: str, tree: Path) -> dict[str, dict[str, Any]]:
    """Run an ad-hoc module on every host; each host's result (from `--tree`) by inventory name."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    cmd = [ANSIBLE, "all", "-i", str(lab.inventory), "-m", module, "-a", args, "--tree", str(tree)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {path.name: json.loads(path.read_text()) for path in tree.iterdir()}


def test_every_server_answers_with_its_own_hostname_and_machine_id(lab: LabState, tmp_path: Path) -> None:
    """Guards against a shared control socket sending every task to one server."""
    facts = _ansible(lab, "setup", "gather_subset=!all filter=ansible_hostname,ansible_machine_id", tmp_path / "setup")
    commands = _ansible(lab, "command", "cat /etc/machine-id", tmp_path / "command")
    assert sorted(facts) == sorted(h.name for h in lab.hosts)
    for host in lab.hosts:
        reported = facts[host.name]["ansible_facts"]
        assert isinstance(reported, dict)
        assert reported["ansible_hostname"] == host.name
        assert reported["ansible_machine_id"] == host.machine_id
        assert commands[host.name]["stdout"] == host.machine_id
    assert len({h.machine_id for h in lab.hosts}) == len(lab.hosts)


def test_testinfra_reaches_each_server_through_the_ssh_config(lab: LabState) -> None:
    for host in lab.hosts:
        remote = testinfra.get_host(f"ssh://{host.name}", ssh_config=str(lab.ssh_config))
        assert remote.check_output("hostname") == host.name
        assert remote.file("/etc/machine-id").content_string.strip() == host.machine_id
        assert remote.service("ssh").is_running
        assert remote.interface("eth0").addresses[0] == host.address


def test_placement_follows_the_plans(lab: LabState) -> None:
    by_role = {role: sorted(h.name for h in lab.hosts if h.role == role) for role in ("shared", "standby", "dedicated")}
    assert by_role["standby"] == [lab.standby]
    for client in lab.clients:
        assert client.id in lab.host(client.server).clients
    assert by_role["dedicated"] == sorted(c.server for c in lab.clients if lab.host(c.server).role == "dedicated")


def _gateway() -> str:
    routes = ip_json("-4", "route", "show", "default")
    return str(routes[0]["gateway"]) if routes and "gateway" in routes[0] else DOCUMENTATION_ADDRESS


def _connect_from(lab: LabState, host: str, address: str, port: int) -> str:
    """The error name (or "connected") of a TCP connect made inside a server."""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=5).close(); print('connected')\n"
        "except OSError as e:\n"
        "    print(type(e).__name__)\n"
    )
    done = lab.ssh(host, f"python3 -c {shlex.quote(probe)}", timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _reject_count(lab: LabState) -> int:
    chain = f"{lab.bridge.upper()}-FWD"
    out = subprocess.run(["iptables", "-w", "-L", chain, "-v", "-n", "-x"], capture_output=True, text=True, check=True)
    return sum(int(line.split()[0]) for line in out.stdout.splitlines()[2:] if "REJECT" in line)


def test_servers_reach_nothing_beyond_the_bridge(lab: LabState) -> None:
    gateway = _gateway()
    before = _reject_count(lab)
    for host in lab.hosts:
        assert _connect_from(lab, host.name, gateway, 80) == "ConnectionRefusedError"
    # Each attempt was refused by the lab's own FORWARD rule, not lost or routed.
    assert _reject_count(lab) >= before + len(lab.hosts)


def test_servers_reach_only_the_lab_services_on_this_machine(lab: LabState) -> None:
    """A service listening on every address of this machine stays closed to the servers."""
    config = load_config(lab.state_dir)
    with socket.create_server(("0.0.0.0", 0)) as server:
        port = server.getsockname()[1]
        # The same listener answers this machine itself: the refusal below is the lab's firewall.
        with socket.create_connection((lab.bridge_address, port), timeout=5):
            pass
        host = lab.hosts[0].name
        assert _connect_from(lab, host, lab.bridge_address, port) == "ConnectionRefusedError"
        assert _connect_from(lab, host, lab.bridge_address, config.apt_port) == "connected"


def test_apt_inside_a_server_goes_through_the_lab_proxy(lab: LabState) -> None:
    host = lab.hosts[0].name
    done = lab.ssh(host, "apt-config dump Acquire::http::Proxy && apt-get update -q", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    config = load_config(lab.state_dir)
    assert f'"http://{lab.bridge_address}:{config.apt_port}"' in done.stdout
    assert "Reading package lists" in done.stdout or "Hit:" in done.stdout or "Get:" in done.stdout


def _init_started(lab: LabState, host: str) -> str | None:
    """When the server's systemd started (clock ticks since the kernel booted): changes with a reboot."""
    done = lab.ssh(host, "cut -d' ' -f22 /proc/1/stat", timeout=10)
    return done.stdout.strip() if done.returncode == 0 else None


def test_a_server_comes_back_after_a_reboot_with_the_same_identity(lab: LabState) -> None:
    """A guest reboot ends nspawn with exit code 133; the supervisor boots it again."""
    host = lab.host(lab.standby)
    before = _init_started(lab, host.name)
    assert before is not None
    lab.ssh(host.name, "systemctl reboot", timeout=30)
    deadline = time.monotonic() + 60
    after = before
    while after in (before, None) and time.monotonic() < deadline:
        time.sleep(0.5)
        after = _init_started(lab, host.name)
    assert after not in (before, None), "the server did not come back within 60 s"
    assert lab.ssh(host.name, "cat /etc/machine-id").stdout.strip() == host.machine_id
