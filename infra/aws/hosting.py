"""Where a client's sites run: its own server, or a host of the platform's shared pool.

The platform stack (`carestack:role: platform`) builds the pool and publishes it:
  shared_hosts: {host name: {"address": ip, "instance_id": id}}
  standby:      {"name": host name, "address": ip, "instance_id": id}
A shared-tier client stack reads `shared_hosts` through a StackReference and
takes the host its plan names (`plan.hosting.server`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws.server import HostRecord, Server, WebSecurityGroup, inventory_entry
from infra.plan import HostingPlan
from infra.spec import PlatformStack

SHARED_HOSTS_OUTPUT = "shared_hosts"
STANDBY_OUTPUT = "standby"


class StandbyRecord(HostRecord):
    name: str


class SharedHostMissing(ValueError):
    pass


class Hosting(pulumi.ComponentResource):
    """What the onboarding needs of a placement: the server's name, address and instance."""

    server: str
    address: pulumi.Output[str]
    instance_id: pulumi.Output[str]


class DedicatedHost(Hosting):
    """A dedicated tier's own server, its key pair and security group."""

    def __init__(
        self,
        hosting: HostingPlan,
        ssh_public_key: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if hosting.mode != "dedicated" or hosting.instance_type is None or hosting.volume_gb is None:
            raise ValueError(f"DedicatedHost needs a dedicated plan with instance type and volume, got {hosting}")
        name = hosting.server
        super().__init__("carestack:aws:DedicatedHost", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key_pair = aws.ec2.KeyPair(f"{name}-admin", public_key=ssh_public_key, tags=tags, opts=child)
        self.security_group = WebSecurityGroup(f"{name}-web", hosting.admin_cidr, tags, opts=child)
        self.host = Server(
            name, hosting.instance_type, hosting.volume_gb, self.security_group, self.key_pair, tags, opts=child
        )
        self.server = name
        self.address = self.host.address
        self.instance_id = self.host.instance_id
        self.register_outputs({"address": self.address})


class SharedHostPool(pulumi.ComponentResource):
    """The platform's shared hosts and its standby, all behind one security group."""

    def __init__(
        self,
        name: str,
        platform: PlatformStack,
        ssh_public_key: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("carestack:aws:SharedHostPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.key_pair = aws.ec2.KeyPair(f"{name}-admin", public_key=ssh_public_key, tags=tags, opts=child)
        self.security_group = WebSecurityGroup(f"{name}-web", platform.admin_cidr, tags, opts=child)

        def server(host_name: str, instance_type: str, volume_gb: int, role: str) -> Server:
            return Server(
                host_name,
                instance_type,
                volume_gb,
                self.security_group,
                self.key_pair,
                {**tags, "carestack-role": role},
                opts=child,
            )

        self.hosts = {h.name: server(h.name, h.instance_type, h.volume_gb, "shared") for h in platform.shared_hosts}
        standby = platform.standby
        self.standby = server(standby.name, standby.instance_type, standby.volume_gb, "standby")

        self.shared_hosts: pulumi.Output[dict[str, HostRecord]] = pulumi.Output.all(
            **{host_name: host.record() for host_name, host in self.hosts.items()}
        )
        self.standby_record: pulumi.Output[StandbyRecord] = self.standby.record().apply(
            lambda record: StandbyRecord(
                name=standby.name, address=record["address"], instance_id=record["instance_id"]
            )
        )
        every = [*self.hosts.values(), self.standby]
        self.hosts_inventory: pulumi.Output[dict[str, dict[str, str]]] = pulumi.Output.all(
            **{host.server: host.address for host in every}
        ).apply(lambda addresses: {name: inventory_entry(address) for name, address in addresses.items()})
        self.register_outputs({SHARED_HOSTS_OUTPUT: self.shared_hosts, STANDBY_OUTPUT: self.standby_record})


def pick_shared_host(platform_stack: str, server: str, shared_hosts: Mapping[str, Any]) -> HostRecord:
    """The record of `server` among the platform's published hosts, or a clear error."""
    record = shared_hosts.get(server) if isinstance(shared_hosts, Mapping) else None
    if not isinstance(record, Mapping) or not {"address", "instance_id"} <= record.keys():
        published = ", ".join(sorted(shared_hosts)) if isinstance(shared_hosts, Mapping) else "none"
        raise SharedHostMissing(
            f"carestack:shared_host: the platform stack {platform_stack} publishes no shared host {server!r} "
            f"(its {SHARED_HOSTS_OUTPUT}: {published or 'none'}); set carestack:shared_host to one of them "
            "or add the host to the platform stack and run `pulumi up` there first"
        )
    return HostRecord(address=str(record["address"]), instance_id=str(record["instance_id"]))


class SharedPlacement(Hosting):
    """A shared-tier client on `plan.hosting.server` of the platform stack's pool."""

    def __init__(self, hosting: HostingPlan, opts: pulumi.ResourceOptions | None = None) -> None:
        if hosting.mode != "shared" or not hosting.platform_stack:
            raise ValueError(f"SharedPlacement needs a shared plan that names its platform stack, got {hosting}")
        name = hosting.server
        super().__init__("carestack:aws:SharedPlacement", name, None, opts)
        self.platform = pulumi.StackReference(hosting.platform_stack, opts=pulumi.ResourceOptions(parent=self))
        record = self.platform.require_output(SHARED_HOSTS_OUTPUT).apply(
            partial(pick_shared_host, hosting.platform_stack, hosting.server)
        )
        self.server = name
        self.address = record.apply(lambda r: r["address"])
        self.instance_id = record.apply(lambda r: r["instance_id"])
        self.register_outputs({"address": self.address})
