"""How the controller reaches the lab's servers: a key, an ssh config, an Ansible inventory.

The lab generates its own ssh key and writes each server's host key into a
known_hosts file (it created those keys), so host key checking stays strict.
Every ssh user — the `ssh -F` command line, Ansible, testinfra — shares one
ControlMaster socket per server, named by address and user (`%h-%r`).
A control path that is the same for every host (FACTS: a literal `%%C` in
ssh_args) would send every task to one server while all of them seem to answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.config import LabConfig
from lab.system import run

KEY_NAME = "id_ed25519"


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    role: str
    clients: tuple[str, ...]
    host_key: str  # "ssh-ed25519 AAAA..."


def key_path(config: LabConfig) -> Path:
    return config.ssh_dir / KEY_NAME


def ssh_config_path(config: LabConfig) -> Path:
    return config.ssh_dir / "config"


def known_hosts_path(config: LabConfig) -> Path:
    return config.ssh_dir / "known_hosts"


def inventory_path(config: LabConfig) -> Path:
    return config.state_dir / "ansible" / "inventory.yml"


def control_dir(config: LabConfig) -> Path:
    return config.ssh_dir / "cp"


def ensure_key(config: LabConfig) -> str:
    """The lab's public key; the key pair is generated on first use."""
    key = key_path(config)
    if not key.exists():
        config.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "carestack-lab", "-f", str(key)],
            what="creating the lab's ssh key",
        )
    return key.with_suffix(".pub").read_text().strip()


def _ssh_config(config: LabConfig, endpoints: Sequence[Endpoint]) -> str:
    blocks = [f"Host {e.name}\n  HostName {e.address}\n" for e in endpoints]
    patterns = " ".join([e.name for e in endpoints] + [e.address for e in endpoints])
    blocks.append(
        f"Host {patterns}\n"
        "  User root\n"
        f"  IdentityFile {key_path(config)}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts_path(config)}\n"
        "  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        "  ConnectTimeout 10\n"
        "  ControlMaster auto\n"
        f"  ControlPath {control_dir(config)}/%h-%r\n"
        "  ControlPersist 120s\n"
        "  LogLevel ERROR\n"
    )
    return "# Written by `carestack lab up`; use with ssh -F <this file> <host>.\n" + "\n".join(blocks)


def _inventory(config: LabConfig, endpoints: Sequence[Endpoint]) -> dict[str, object]:
    def group(members: Sequence[Endpoint]) -> dict[str, object]:
        return {"hosts": {e.name: {"ansible_host": e.address} for e in members}}

    children: dict[str, object] = {
        role: group([e for e in endpoints if e.role == role]) for role in ("shared", "standby", "dedicated")
    }
    for client in sorted({c for e in endpoints for c in e.clients}):
        children[f"client_{client}"] = group([e for e in endpoints if client in e.clients])
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key_path(config)),
                "ansible_ssh_common_args": f"-F {ssh_config_path(config)}",
                # `%%` because Ansible formats this with %(directory)s first; ssh sees %h-%r.
                "ansible_control_path": f"{control_dir(config)}/%%h-%%r",
                "ansible_ssh_pipelining": True,
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "children": children,
        }
    }


def write_files(config: LabConfig, endpoints: Sequence[Endpoint]) -> bool:
    """known_hosts, ssh config and inventory for exactly these servers; True if any changed."""
    control_dir(config).mkdir(mode=0o700, parents=True, exist_ok=True)
    inventory_path(config).parent.mkdir(parents=True, exist_ok=True)
    known = "".join(f"{e.name},{e.address} {e.host_key}\n" for e in endpoints)
    inventory = "# Written by `carestack lab up`.\n" + yaml.safe_dump(_inventory(config, endpoints), sort_keys=False)
    changed = [
        replace_text(known_hosts_path(config), known),
        replace_text(ssh_config_path(config), _ssh_config(config, endpoints)),
        replace_text(inventory_path(config), inventory),
    ]
    return any(changed)


def replace_text(path: Path, text: str) -> bool:
    """Write atomically unless the file already holds this text; True if written."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def ssh_argv(config: LabConfig, host: str, command: str) -> list[str]:
    return ["ssh", "-F", str(ssh_config_path(config)), host, command]


def ssh(config: LabConfig, host: str, command: str, *, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    """Run a command on a server (through its shared control socket)."""
    return subprocess.run(ssh_argv(config, host, command), capture_output=True, text=True, timeout=timeout, check=False)


def close_masters(config: LabConfig) -> None:
    """End the ControlMaster processes (they would outlive the lab by ControlPersist)."""
    sockets = control_dir(config)
    if not sockets.exists():
        return
    for socket in sockets.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab-host"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        socket.unlink(missing_ok=True)
