"""A cgroup of its own for each lab server.

systemd-nspawn run outside a systemd unit (`--keep-unit` where PID 1 is not
systemd) puts its guest into a `payload` cgroup below its own cgroup. Started
from one cgroup, every guest would get the same `payload`, and each guest's
systemd would manage, and remove, the others' service cgroups: measured here
as `Failed to attach to cgroup /system.slice/nftables.service` (status
219/CGROUP) when two servers reloaded nftables at once. So each server's
supervisor first moves itself into `carestack-lab-<lab>-<server>` below this
process's cgroup, in the hierarchies systemd uses: cgroup2 and, on a hybrid
machine, the v1 `name=systemd` hierarchy.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

PREFIX = "carestack-lab-"


def _own_paths() -> dict[str, str]:
    """This process's cgroup per hierarchy kind ("v2", "systemd") from /proc/self/cgroup."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            own["v2"] = path
        elif "name=systemd" in controllers.split(","):
            own["systemd"] = path
    return own


def _mounts() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fstype, _, options = after.split()[:3]
        point = Path(before.split()[4])
        if fstype == "cgroup2":
            found.setdefault("v2", point)
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            found.setdefault("systemd", point)
    return found


def parents() -> list[Path]:
    """Where the servers' cgroups are created: below this process's cgroup in each hierarchy."""
    own, mounts = _own_paths(), _mounts()
    return [mounts[kind] / own[kind].lstrip("/") for kind in ("v2", "systemd") if kind in mounts and kind in own]


def name(lab_id: str, server: str) -> str:
    return f"{PREFIX}{lab_id}-{server}"


def paths(lab_id: str, server: str) -> list[Path]:
    return [parent / name(lab_id, server) for parent in parents()]


def remove(lab_id: str, server: str) -> None:
    """Remove the server's (empty) cgroups, deepest first; busy ones stay (their processes are reported)."""
    for top in paths(lab_id, server):
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def present(lab_id: str) -> list[str]:
    """The lab's cgroups that exist, for the nothing-left-behind check."""
    wanted = f"{PREFIX}{lab_id}-"
    return sorted(
        str(p) for parent in parents() if parent.is_dir() for p in parent.iterdir() if p.name.startswith(wanted)
    )
