"""Hosting per tier: a hardened server of its own, or a place on the platform's shared pool."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra.aws.hosting import SharedHostMissing, pick_shared_host
from infra.aws.server import DEBIAN_AMI_NAME, DEBIAN_AMI_OWNER
from infra.plan import CarePlan, build_plan
from infra.program import stack_file
from infra.spec import ClientSpec, PlatformSpec, load_stack
from tests.pulumi.harness import (
    STACK_REFERENCE,
    Deployer,
    RecordingMocks,
    Registration,
    client_stacks,
    mock_platform_outputs,
)

CLIENTS = client_stacks()
INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORLD = {"cidrIpv4": "0.0.0.0/0"}, {"cidrIpv6": "::/0"}


def assert_hardened(instance: Registration, instance_type: str, volume_gb: int, mocks: RecordingMocks) -> None:
    """IMDSv2 only, encrypted root of the planned size, the Debian 12 image; neither a newer image nor another
    admin key pair ever replaces it (admin keys are converged: `carestack configure --admin-key`)."""
    inputs = instance.inputs
    assert {"ami", "keyName"} <= instance.ignore_changes, instance.ignore_changes
    assert inputs["instanceType"] == instance_type
    assert inputs["metadataOptions"]["httpTokens"] == "required"
    assert inputs["metadataOptions"]["httpEndpoint"] == "enabled"
    root = inputs["rootBlockDevice"]
    assert root["encrypted"] is True and root["volumeSize"] == volume_gb
    assert inputs["ami"] == "ami-0debian12mock"
    lookups = [args for token, args in mocks.calls if token == "aws:ec2/getAmi:getAmi"]
    assert lookups, "the image is looked up, not hard-coded"
    for args in lookups:
        assert args["owners"] == [DEBIAN_AMI_OWNER] and args["mostRecent"] is True
        assert {"name": "name", "values": [DEBIAN_AMI_NAME]} in args["filters"]


def rule_set(rules: list[Registration]) -> set[tuple[Any, ...]]:
    return {
        (
            r.inputs["ipProtocol"],
            r.inputs.get("fromPort"),
            r.inputs.get("toPort"),
            r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"),
        )
        for r in rules
    }


def assert_web_security_group(mocks: RecordingMocks, admin_cidr: str) -> None:
    groups = mocks.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert len(groups) == 1
    group_id = f"{groups[0].name}-id"
    ingress, egress = mocks.of_type(INGRESS), mocks.of_type(EGRESS)
    assert all(r.inputs["securityGroupId"] == group_id for r in ingress + egress)
    world = {"0.0.0.0/0", "::/0"}
    assert rule_set(ingress) == {("tcp", port, port, cidr) for port in (80, 443) for cidr in world} | {
        ("tcp", 22, 22, admin_cidr)
    }
    assert rule_set(egress) == {("-1", None, None, cidr) for cidr in world}
    # SSH is never open to the world
    assert all(
        r.inputs["fromPort"] != 22 or r.inputs.get("cidrIpv4", r.inputs.get("cidrIpv6")) == admin_cidr for r in ingress
    )


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_each_tier_gets_its_hosting(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    hosting = built.plan.hosting

    def check(address: str) -> None:
        instances = mocks.of_type(INSTANCE)
        references = mocks.of_type(STACK_REFERENCE)
        if hosting.mode == "dedicated":
            assert references == []
            (instance,) = instances
            assert instance.name == hosting.server
            assert hosting.instance_type is not None and hosting.volume_gb is not None
            assert_hardened(instance, hosting.instance_type, hosting.volume_gb, mocks)
            assert_web_security_group(mocks, hosting.admin_cidr)
            (eip,) = mocks.of_type("aws:ec2/eip:Eip")
            assert eip.inputs["instance"] == instance.resource_id and address == eip.state["publicIp"]
            (key,) = mocks.of_type("aws:ec2/keyPair:KeyPair")
            assert instance.inputs["keyName"] == key.state["keyName"]
            assert key.inputs["publicKey"] == pulumi.Config("carestack").require("ssh_public_key")
        else:
            # shared: nothing is built, the host comes from the platform stack
            assert instances == [] and mocks.of_type("aws:ec2/securityGroup:SecurityGroup") == []
            (reference,) = references
            assert reference.inputs["name"] == hosting.platform_stack
            assert address == mocks.platform_outputs["shared_hosts"][hosting.server]["address"]

    return built.hosting.address.apply(check)


@pulumi.runtime.test
def test_the_platform_builds_shared_hosts_and_standby(deploy: Deployer, mocks: RecordingMocks) -> Any:
    built = deploy.platform()
    spec = load_stack(stack_file("platform"))
    assert isinstance(spec, PlatformSpec)
    wanted = {host.name: host for host in [*spec.stack.shared_hosts, spec.stack.standby]}

    def check(values: list[Any]) -> None:
        shared_hosts, standby, hosts = values
        instances = {r.name: r for r in mocks.of_type(INSTANCE)}
        assert instances.keys() == wanted.keys()
        for name, host in wanted.items():
            assert_hardened(instances[name], host.instance_type, host.volume_gb, mocks)
        assert_web_security_group(mocks, spec.stack.admin_cidr)
        addresses = {r.inputs["instance"]: r.state["publicIp"] for r in mocks.of_type("aws:ec2/eip:Eip")}
        assert shared_hosts == {
            h.name: {"address": addresses[f"i-{h.name}"], "instance_id": f"i-{h.name}"} for h in spec.stack.shared_hosts
        }
        name = spec.stack.standby.name
        assert standby == {"name": name, "address": addresses[f"i-{name}"], "instance_id": f"i-{name}"}
        assert hosts == {n: {"address": addresses[f"i-{n}"], "ssh_user": "admin"} for n in wanted}
        # what a client stack reads from the platform is what the platform exports
        for host in spec.stack.shared_hosts:
            assert pick_shared_host("platform", host.name, shared_hosts) == shared_hosts[host.name]

    outputs = built.outputs
    return pulumi.Output.all(outputs["shared_hosts"], outputs["standby"], outputs["hosts"]).apply(check)


def test_the_mocked_platform_has_the_shape_the_platform_exports() -> None:
    """The mocks' stand-in for the platform stack answers like `build_platform` (checked above)."""
    outputs = mock_platform_outputs()
    for name, record in outputs["shared_hosts"].items():
        assert pick_shared_host("platform", name, outputs["shared_hosts"]) == record
    assert set(outputs["standby"]) == {"name", "address", "instance_id"}


def shared_client() -> tuple[str, CarePlan]:
    for client in CLIENTS:
        spec = load_stack(stack_file(client))
        if isinstance(spec, ClientSpec) and spec.tier.hosting.mode == "shared":
            return client, build_plan(spec)
    raise AssertionError("no example client on a shared tier")


def test_a_host_the_platform_does_not_publish_is_a_clear_error(deploy: Deployer, mocks: RecordingMocks) -> None:
    client, plan = shared_client()
    mocks.platform_outputs = {"shared_hosts": {"other-7": {"address": "203.0.113.7", "instance_id": "i-7"}}}

    @pulumi.runtime.test
    def place() -> Any:
        return deploy.client(client).hosting.address

    # The SDK re-raises an error inside an apply as a ValueError quoting it.
    with pytest.raises(ValueError) as error:
        place()
    message = str(error.value)
    assert "carestack:shared_host" in message and repr(plan.hosting.server) in message and "other-7" in message
    assert str(plan.hosting.platform_stack) in message


def test_pick_shared_host_rejects_malformed_records() -> None:
    with pytest.raises(SharedHostMissing, match="none"):
        pick_shared_host("agency/carestack/platform", "shared-1", {})
    with pytest.raises(SharedHostMissing):
        pick_shared_host("agency/carestack/platform", "shared-1", {"shared-1": {"address": "203.0.113.1"}})
