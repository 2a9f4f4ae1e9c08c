"""Everything of a lab that exists on this machine, found without its PID files.

Used for the lab's memory figure, by `lab down` to prove nothing is left
behind, and by its test. A process is the lab's if its command line names the
state directory (supervisors, nspawn, apt-cacher-ng) or an environment
variable points into it (Kuma's DATA_DIR, moto's state directory), if its
command line names an address of the lab's subnet (the S3 gateway, the Kuma
relay, ssh control masters), if its root file system is a lab overlay (the guests), or if it
descends from one of those. A shell that merely works in the state directory
is not the lab's, and neither is another lab that names this lab's base image
(`--image-dir` pointing into this state directory): several labs share one image.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lab import cgroups, network, procs
from lab.config import LabConfig

_IPV4 = re.compile(rb"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?![\d])")


@dataclass(frozen=True)
class Footprint:
    processes: list[int] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    firewall: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.processes or self.mounts or self.netns or self.links or self.firewall or self.cgroups)

    def describe(self) -> str:
        parts = []
        if self.processes:
            parts.append("processes " + ", ".join(f"{pid} ({_comm(pid)})" for pid in self.processes))
        for name in ("mounts", "netns", "links", "firewall", "cgroups"):
            items: list[str] = getattr(self, name)
            if items:
                parts.append(f"{name} {', '.join(items)}")
        return "; ".join(parts) or "nothing"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _names_subnet(cmdline: bytes, subnet: ipaddress.IPv4Network) -> bool:
    for match in _IPV4.finditer(cmdline):
        try:
            if ipaddress.IPv4Address(match.group(1).decode()) in subnet:
                return True
        except ValueError:
            continue
    return False


def _names_state_dir(blob: bytes, state_dir: bytes, image_dir: bytes) -> bool:
    """`blob` names a path in the state directory itself, not a longer name (`/x/lab-2`) or the shared image."""
    blob = blob.replace(image_dir, b"")
    start = blob.find(state_dir)
    while start != -1:
        after = blob[start + len(state_dir) : start + len(state_dir) + 1]
        if after in (b"", b"/", b"\0", b" ", b"="):
            return True
        start = blob.find(state_dir, start + 1)
    return False


def _points_inside(environ: bytes, state_dir: bytes, image_dir: bytes) -> bool:
    """An environment variable (not a shell's working directory) names a path in the state dir."""
    inside = state_dir + b"/"
    for entry in environ.split(b"\0"):
        key, _, value = entry.partition(b"=")
        if value.startswith(inside) and not value.startswith(image_dir) and key not in (b"PWD", b"OLDPWD"):
            return True
    return False


def lab_processes(config: LabConfig) -> list[int]:
    state_dir = str(config.state_dir).encode()
    image_dir = str(config.image_dir).encode()
    upper_prefix = str(config.hosts_dir) + "/"
    me = os.getpid()
    # Whoever called this (a bench or test naming the state directory on its command line) is not
    # the lab's: the lab never starts its own callers.
    callers = set(procs.ancestors(me))
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me or int(entry.name) in callers:
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if not cmdline:  # kernel threads
            continue
        if (
            _names_state_dir(cmdline, state_dir, image_dir)
            or _points_inside(environ, state_dir, image_dir)
            or _names_subnet(cmdline, config.network)
            or (procs.root_upperdir(pid) or "").startswith(upper_prefix)
        ):
            roots.append(pid)
    return sorted(set(procs.descendants(roots)) - {me} - callers)


def lab_mounts(config: LabConfig) -> list[str]:
    """Mount points inside the state directory (the servers' overlays)."""
    prefix = str(config.state_dir) + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(prefix)]


def footprint(config: LabConfig) -> Footprint:
    links = network.lab_links(config) + ([config.bridge] if network.bridge_present(config) else [])
    return Footprint(
        processes=lab_processes(config),
        mounts=lab_mounts(config),
        netns=network.lab_netns(config),
        links=links,
        firewall=network.firewall_present(config),
        cgroups=cgroups.present(config.lab_id),
    )


def memory_pss_kib(config: LabConfig) -> int:
    """The lab's memory: the proportional set size of all its processes, guests included."""
    return sum(procs.pss_kib(pid) for pid in lab_processes(config))
