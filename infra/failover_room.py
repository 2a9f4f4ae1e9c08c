"""Whether the standby has room for a client's sites, derived from the plans placed on it.

The standby's size is the platform stack's (instance type and volume); each
plan placed on it needs memory and disk by the kind of each site, a
dedicated client's disk by its own volume. The numbers are planning
allowances (a LEMP WordPress site used 150-180 MiB in the lab, see
../shared/FACTS.md), not measurements: enough to refuse a failover that could
never fit, before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from infra.plan import CarePlan, SitePlan

# Memory of the EC2 instance types the stacks use (MiB), by AWS's published sizes.
INSTANCE_MEMORY_MB = {
    "t3.micro": 1024,
    "t3.small": 2048,
    "t3.medium": 4096,
    "t3.large": 8192,
    "t3.xlarge": 16384,
    "t3.2xlarge": 32768,
    "m6i.large": 8192,
    "m6i.xlarge": 16384,
    "m6i.2xlarge": 32768,
}
BASE_MEMORY_MB = 1024  # the operating system, MariaDB's buffers, nginx, the agent
BASE_DISK_GB = 8  # the operating system and packages
SITE_MEMORY_MB = {"woocommerce": 384, "wordpress": 256, "php": 128, "static": 32}
SITE_DISK_GB = {"woocommerce": 10, "wordpress": 5, "php": 2, "static": 1}


class RoomError(ValueError):
    pass


@dataclass(frozen=True)
class Room:
    memory_mb: int
    disk_gb: int

    def __add__(self, other: Room) -> Room:
        return Room(self.memory_mb + other.memory_mb, self.disk_gb + other.disk_gb)


def capacity(instance_type: str, volume_gb: int) -> Room:
    """The standby's size."""
    if instance_type not in INSTANCE_MEMORY_MB:
        known = ", ".join(INSTANCE_MEMORY_MB)
        raise RoomError(f"standby instance type {instance_type!r}: its memory is unknown here (known: {known})")
    return Room(INSTANCE_MEMORY_MB[instance_type], volume_gb)


def site_need(site: SitePlan) -> Room:
    return Room(SITE_MEMORY_MB[site.kind], SITE_DISK_GB[site.kind])


def plan_need(plan: CarePlan) -> Room:
    """What a plan's sites need on the standby; a dedicated client brings its whole volume."""
    need = sum((site_need(site) for site in plan.sites), Room(0, 0))
    if plan.hosting.volume_gb is not None:
        need = Room(need.memory_mb, max(need.disk_gb, plan.hosting.volume_gb))
    return need


def room_problem(standby: str, size: Room, placed: Sequence[CarePlan], incoming: CarePlan) -> str | None:
    """Why `incoming` does not fit beside `placed` on the standby; None when it does."""
    used = sum((plan_need(plan) for plan in placed), Room(BASE_MEMORY_MB, BASE_DISK_GB))
    need = plan_need(incoming)
    short = []
    if used.memory_mb + need.memory_mb > size.memory_mb:
        short.append(f"memory: needs {need.memory_mb} MiB, {size.memory_mb - used.memory_mb} MiB free")
    if used.disk_gb + need.disk_gb > size.disk_gb:
        short.append(f"disk: needs {need.disk_gb} GB, {size.disk_gb - used.disk_gb} GB free")
    if not short:
        return None
    carried = ", ".join(p.client.id for p in placed) or "nothing else"
    return (
        f"standby {standby} has no room for {incoming.client.id} ({'; '.join(short)}; "
        f"of {size.memory_mb} MiB and {size.disk_gb} GB it carries {carried})"
    )
