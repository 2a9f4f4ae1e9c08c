"""A Debian 12 web server on EC2 and the security group in front of it.

Used for a dedicated client's own server and for the platform's shared hosts
and standby, so every server carestack runs has the same hardening: IMDSv2
only, an encrypted root volume, SSH only from the agency's admin range.
"""

from __future__ import annotations

import ipaddress
from typing import TypedDict

import pulumi
import pulumi_aws as aws

# Debian's own AWS account publishes the official images.
DEBIAN_AMI_OWNER = "136693071363"
DEBIAN_AMI_NAME = "debian-12-amd64-*"
# The login user of Debian's cloud images; Ansible connects as this user.
SSH_USER = "admin"
ROOT_VOLUME_TYPE = "gp3"
WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = {"http": 80, "https": 443}
SSH_PORT = 22


class HostRecord(TypedDict):
    """How a server is published to other stacks (the platform's `shared_hosts` values)."""

    address: str
    instance_id: str


def inventory_entry(address: str) -> dict[str, str]:
    """How Ansible reaches a server (`carestack configure --hosts`, the production inventory)."""
    return {"address": address, "ssh_user": SSH_USER}


def debian12_ami(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The newest official Debian 12 amd64 image in the stack's region."""
    image = aws.ec2.get_ami_output(
        most_recent=True,
        owners=[DEBIAN_AMI_OWNER],
        filters=[
            aws.ec2.GetAmiFilterArgs(name="name", values=[DEBIAN_AMI_NAME]),
            aws.ec2.GetAmiFilterArgs(name="architecture", values=["x86_64"]),
        ],
        opts=pulumi.InvokeOutputOptions(parent=parent),
    )
    return image.id


def _ipv4(cidr: str) -> str | None:
    return cidr if ipaddress.ip_network(cidr).version == 4 else None


def _ipv6(cidr: str) -> str | None:
    return cidr if ipaddress.ip_network(cidr).version == 6 else None


def _family(cidr: str) -> str:
    return f"ipv{ipaddress.ip_network(cidr).version}"


class WebSecurityGroup(pulumi.ComponentResource):
    """HTTP and HTTPS from anywhere, SSH only from `admin_cidr`, any egress."""

    def __init__(
        self, name: str, admin_cidr: str, tags: dict[str, str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("carestack:aws:WebSecurityGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.group = aws.ec2.SecurityGroup(
            name, description=f"carestack {name}: web from anywhere, ssh from the admin range", tags=tags, opts=child
        )
        group_id = self.group.id
        self.ingress: list[aws.vpc.SecurityGroupIngressRule] = [
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{service}-{_family(cidr)}",
                security_group_id=group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=service,
                cidr_ipv4=_ipv4(cidr),
                cidr_ipv6=_ipv6(cidr),
                opts=child,
            )
            for service, port in WEB_PORTS.items()
            for cidr in WORLD
        ]
        self.ingress.append(
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-ssh-admin",
                security_group_id=group_id,
                ip_protocol="tcp",
                from_port=SSH_PORT,
                to_port=SSH_PORT,
                description="ssh from the agency's admin range",
                cidr_ipv4=_ipv4(admin_cidr),
                cidr_ipv6=_ipv6(admin_cidr),
                opts=child,
            )
        )
        # The provider removes the default allow-all egress of a new group; restore it
        # (apt, S3, Kuma pushes all go out).
        self.egress = [
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-egress-{_family(cidr)}",
                security_group_id=group_id,
                ip_protocol="-1",
                description="any",
                cidr_ipv4=_ipv4(cidr),
                cidr_ipv6=_ipv6(cidr),
                opts=child,
            )
            for cidr in WORLD
        ]
        self.id: pulumi.Output[str] = group_id
        self.register_outputs({"id": group_id})


class Server(pulumi.ComponentResource):
    """An EC2 instance from the Debian 12 image with a stable elastic address."""

    def __init__(
        self,
        name: str,
        instance_type: str,
        volume_gb: int,
        security_group: WebSecurityGroup,
        key_pair: aws.ec2.KeyPair,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("carestack:aws:Server", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.instance = aws.ec2.Instance(
            name,
            ami=debian12_ami(self),
            instance_type=instance_type,
            key_name=key_pair.key_name,
            vpc_security_group_ids=[security_group.id],
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=volume_gb, volume_type=ROOT_VOLUME_TYPE, encrypted=True
            ),
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            tags={**tags, "Name": name},
            # A newer Debian image must not replace a running server (and its sites):
            # the image is chosen once, at creation; Ansible keeps the packages current.
            # Likewise the key pair: EC2 reads it only at first boot, and a new one would
            # replace the server; the admin keys a server accepts are converged by Ansible.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami", "keyName"]),
        )
        # Sites' DNS points here, so the address must survive a stop/start.
        self.ip = aws.ec2.Eip(
            f"{name}-address", domain="vpc", instance=self.instance.id, tags={**tags, "Name": name}, opts=child
        )
        self.server = name
        self.address: pulumi.Output[str] = self.ip.public_ip
        self.instance_id: pulumi.Output[str] = self.instance.id
        self.register_outputs({"address": self.address, "instance_id": self.instance_id})

    def record(self) -> pulumi.Output[HostRecord]:
        return pulumi.Output.all(self.address, self.instance_id).apply(
            lambda values: HostRecord(address=values[0], instance_id=values[1])
        )
