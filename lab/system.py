"""Running this machine's tools, and the checks made before the lab changes anything."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.errors import LabError

# tool -> the Debian package that provides it
REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "apt-cacher-ng": "apt-cacher-ng",
    "ip": "iproute2",
    "iptables": "iptables",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "mount": "mount",
    "pebble": "pebble",
    "pebble-challtestsrv": "pebble",
    "openssl": "openssl",
}
# Python packages of the `lab` extra the lab runs (moto_server is moto's)
LAB_PYTHON_MODULES = ("moto", "boto3")


def run(argv: Sequence[str], *, what: str, input: str | None = None, check: bool = True) -> str:
    """Run a tool; on failure raise LabError naming the step and the tool's own message."""
    try:
        done = subprocess.run(list(argv), input=input, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LabError(f"{what}: {argv[0]} is not installed") from None
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise LabError(f"{what}: `{' '.join(argv)}` failed ({done.returncode}): " + " | ".join(detail))
    return done.stdout


def ip_json(*args: str) -> list[dict[str, Any]]:
    data = json.loads(run(["ip", "-j", *args], what="reading the network configuration") or "[]")
    return data if isinstance(data, list) else []


def mounted(path: Path) -> bool:
    """Something is mounted at exactly this path (in this process's mount namespace)."""
    target = str(path)
    return any(line.split()[4] == target for line in Path("/proc/self/mountinfo").read_text().splitlines())


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "carestack lab needs root: it mounts overlays, creates network namespaces and a bridge, "
            "and boots servers with systemd-nspawn (run it as root or with sudo)"
        )


def require_tools() -> None:
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise LabError(f"missing tools; install them with: apt-get install {' '.join(missing)}")
    absent = [name for name in LAB_PYTHON_MODULES if importlib.util.find_spec(name) is None]
    if absent:
        raise LabError(
            f"the lab's Python packages are missing ({', '.join(absent)}); "
            "install the lab extra: .venv/bin/pip install -e '.[lab]' (scripts/setup.sh does)"
        )
    if "overlay" not in Path("/proc/filesystems").read_text().split():
        done = subprocess.run(["modprobe", "overlay"], capture_output=True, check=False)
        if done.returncode != 0 or "overlay" not in Path("/proc/filesystems").read_text().split():
            raise LabError("this kernel has no overlayfs (`modprobe overlay` failed); the lab's servers need it")
    if not Path("/proc/self/ns/net").exists():
        raise LabError("this kernel has no network namespaces (CONFIG_NET_NS); the lab's servers need them")


def subnet_users(subnet: str, own_bridge: str) -> list[str]:
    """Interfaces and routes other than our bridge that overlap the lab's subnet."""
    network = ipaddress.IPv4Network(subnet)
    users = []
    for link in ip_json("-4", "addr", "show"):
        for addr in link.get("addr_info", []):
            iface = ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}")
            if link["ifname"] != own_bridge and iface.network.overlaps(network):
                users.append(f"{link['ifname']} has {iface}")
    for route in ip_json("-4", "route", "show"):
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("dev") == own_bridge:
            continue
        try:
            if ipaddress.IPv4Network(dst, strict=False).overlaps(network):
                users.append(f"route {dst} via {route.get('dev', '?')}")
        except ValueError:
            continue
    return users


def _listening(path: str, port: int) -> list[tuple[str, int]]:
    """(local address, socket inode) listening on TCP `port`, from /proc/net/tcp (hex, little-endian IPv4)."""
    found: list[tuple[str, int]] = []
    try:
        lines = Path(path).read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        local, state, inode = parts[1], parts[3], int(parts[9])
        addr_hex, port_hex = local.rsplit(":", 1)
        if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
            continue
        if len(addr_hex) == 8:
            found.append((str(ipaddress.IPv4Address(bytes.fromhex(addr_hex)[::-1])), inode))
        else:
            found.append(("::" if int(addr_hex, 16) == 0 else "an IPv6 address", inode))
    return found


def _listeners(address: str, port: int) -> list[tuple[str, int]]:
    return [
        (local, inode)
        for path in ("/proc/net/tcp", "/proc/net/tcp6")
        for local, inode in _listening(path, port)
        if local in (address, "0.0.0.0", "::")
    ]


def port_taken(address: str, port: int) -> str | None:
    """Who listens on address:port (or on every address), if anyone."""
    for local, _ in _listeners(address, port):
        return f"{local}:{port}"
    return None


def port_holders(address: str, port: int) -> set[int]:
    """The PIDs of the processes whose sockets listen on address:port (or on every address)."""
    sockets = {f"socket:[{inode}]" for _, inode in _listeners(address, port)}
    holders: set[int] = set()
    if not sockets:
        return holders
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in sockets:
                    holders.add(int(proc.name))
                    break
            except OSError:
                continue
    return holders
