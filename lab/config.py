"""Where the lab lives and which addresses and ports it uses.

The first `lab up` records its settings in `<state dir>/config.json`; later
commands on the same state directory read them from there, so `status` and
`down` need no options and a running lab is never reconfigured underneath.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.kuma_sources import NPM_VERSION, SUPPORTED_VERSIONS

# The lab's ACME server's ports are this far apart (lab.acme_server reads it from here).
ACME_PORT_STRIDE = 1000

DEFAULT_STATE_DIR = Path("/var/lib/carestack-lab")
STATE_DIR_ENV = "CARESTACK_LAB_DIR"
CONFIG_FILE = "config.json"
# Host addresses start here within the subnet (.1 is the bridge, the machine's side).
FIRST_HOST_OFFSET = 10
_BRIDGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,9}$")


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


@dataclass(frozen=True)
class LabConfig:
    state_dir: Path
    subnet: str = "10.77.0.0/24"
    bridge: str = "csbr0"
    # Not 3142: a machine with apt-cacher-ng installed usually runs its own there on every address.
    apt_port: int = 3150
    s3_port: int = 9000
    kuma_port: int = 3001
    alert_port: int = 9099
    # The lab's ACME server (pebble) on the bridge address: its directory here, its management API,
    # its DNS and the DNS's management API ACME_PORT_STRIDE apart above (lab.acme_server.AcmePorts).
    acme_port: int = 14000
    # The memory each lab server sizes PHP-FPM and MariaDB for: the servers share this machine,
    # and a container's /proc/meminfo shows the whole machine's memory.
    server_memory_mb: int = 512
    # Where the base image lives; by default in the state directory. Several labs (the tests'
    # second lab) may share one image directory; a lab removes its image only from its own state dir.
    image_cache: str = ""
    # Which Uptime Kuma runs: the npm snapshot needs no files; the others their source tarball.
    kuma_version: str = NPM_VERSION

    def __post_init__(self) -> None:
        problems = []
        try:
            network = ipaddress.IPv4Network(self.subnet, strict=True)
            if not network.is_private or network.prefixlen > 26:
                problems.append(f"subnet: {self.subnet} must be a private IPv4 network of at least /26")
        except ValueError:
            problems.append(f"subnet: expected an IPv4 network such as 10.77.0.0/24, got {self.subnet!r}")
        if not _BRIDGE_NAME.match(self.bridge):
            problems.append(f"bridge: expected 2-10 lower-case letters or digits such as csbr0, got {self.bridge!r}")
        ports = {"apt_port": self.apt_port, "s3_port": self.s3_port, "kuma_port": self.kuma_port}
        ports["alert_port"] = self.alert_port
        for name, port in ports.items():
            if not 1024 <= port <= 65535:
                problems.append(f"{name}: expected a port in 1024..65535, got {port}")
        if not 1024 <= self.acme_port <= 65535 - 3 * ACME_PORT_STRIDE:
            problems.append(
                f"acme_port: expected a port in 1024..{65535 - 3 * ACME_PORT_STRIDE} (the ACME server uses it and "
                f"the three ports {ACME_PORT_STRIDE} apart above it), got {self.acme_port}"
            )
        for n, name in enumerate(("acme_port", "acme_management_port", "acme_dns_port", "acme_dns_management_port")):
            ports[name] = self.acme_port + n * ACME_PORT_STRIDE
        if not 256 <= self.server_memory_mb <= 65536:
            problems.append(f"server_memory_mb: expected 256..65536, got {self.server_memory_mb}")
        if self.kuma_version not in SUPPORTED_VERSIONS:
            supported = ", ".join(SUPPORTED_VERSIONS)
            problems.append(f"kuma_version: expected one of {supported}, got {self.kuma_version!r}")
        if len(set(ports.values())) != len(ports):
            problems.append(f"ports must differ: {ports}")
        if problems:
            raise LabError("lab settings: " + "; ".join(problems))

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge_address(self) -> str:
        """The machine's address on the bridge: the hosts' gateway, apt proxy, S3 and Kuma."""
        return str(self.network.network_address + 1)

    def host_address(self, index: int) -> str:
        address = self.network.network_address + FIRST_HOST_OFFSET + index
        if address >= self.network.broadcast_address:
            raise LabError(f"subnet {self.subnet} has no room for host number {index + 1}; use a larger subnet")
        return str(address)

    # -- the state directory's layout ---------------------------------------------------

    @property
    def cache_dir(self) -> Path:
        """What `lab down --keep-image` keeps: the base image and the apt proxy's package cache."""
        return self.state_dir / "cache"

    @property
    def image_dir(self) -> Path:
        return Path(self.image_cache) if self.image_cache else self.cache_dir / "image"

    @property
    def hosts_dir(self) -> Path:
        return self.state_dir / "hosts"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def run_dir(self) -> Path:
        """PID files and logs of the lab's services."""
        return self.state_dir / "run"

    @property
    def lab_id(self) -> str:
        """Prefix of every kernel object (netns, veth, iptables chain) this lab creates."""
        return self.bridge

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("state_dir")
        return data


def settings_saved(state_dir: Path) -> bool:
    """Whether a lab was set up in `state_dir` (`lab up` saves its settings before it starts anything)."""
    return (Path(state_dir) / CONFIG_FILE).exists()


def _read_saved(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabError(f"{path}: unreadable lab settings ({exc}); remove it or run `carestack lab down`") from None
    if not isinstance(data, dict):
        raise LabError(f"{path}: expected a JSON object of lab settings")
    known = {f.name for f in fields(LabConfig)} - {"state_dir"}
    return {k: v for k, v in data.items() if k in known}


def load_config(state_dir: Path | None = None, **overrides: Any) -> LabConfig:
    """The lab's settings: saved ones, else defaults; `overrides` (non-None) must agree with saved ones."""
    state_dir = Path(state_dir or default_state_dir())
    given = {k: v for k, v in overrides.items() if v is not None}
    saved = _read_saved(state_dir)
    if saved is None:
        return LabConfig(state_dir, **given)
    config = LabConfig(state_dir, **saved)
    differing = {k: v for k, v in given.items() if getattr(config, k) != v}
    if differing:
        now = ", ".join(f"{k}={getattr(config, k)}" for k in differing)
        raise LabError(
            f"the lab in {state_dir} was set up with {now}; run `carestack lab down` before changing "
            f"{', '.join(differing)}, or use another state directory ({STATE_DIR_ENV})"
        )
    return config


def save_config(config: LabConfig) -> None:
    config.state_dir.mkdir(parents=True, exist_ok=True)
    (config.state_dir / CONFIG_FILE).write_text(json.dumps(config.to_json(), indent=2) + "\n")
