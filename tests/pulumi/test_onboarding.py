"""The monitors and the Ansible run receive the plan's values, and secrets only by environment."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.aws.onboarding import PROJECT_ROOT
from infra.converge_sources import converge_fingerprint
from infra.plan import build_plan
from infra.program import stack_file
from infra.spec import ClientSpec, load_stack
from tests.pulumi.harness import (
    DYNAMIC,
    KUMA_URL,
    Deployer,
    RecordingMocks,
    client_stacks,
    is_secret,
    registered,
    wire_secret,
)

CLIENTS = client_stacks()
COMMAND = "command:local:Command"


def expected_plan(client: str) -> dict[str, Any]:
    spec = load_stack(stack_file(client))
    assert isinstance(spec, ClientSpec)
    plan: dict[str, Any] = build_plan(spec).to_dict()
    return plan


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_monitors_receive_the_plan(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    plan = expected_plan(client)

    def check(monitors: Any) -> None:
        assert monitors.typ == DYNAMIC
        received = json.loads(monitors.inputs["plan_json"])
        assert received == plan
        # the values the monitors are made of, as the plan has them
        assert received["monitoring"]["interval_seconds"] == built.plan.monitoring.interval_seconds
        assert received["monitoring"]["retries"] == built.plan.monitoring.retries
        assert received["monitoring"]["maintenance"]["start"] == built.plan.monitoring.maintenance.start
        for site, planned in zip(received["sites"], built.plan.sites, strict=True):
            assert [j["push_interval_seconds"] for j in site["jobs"]] == [j.push_interval_seconds for j in planned.jobs]
            assert [c["url"] for c in site["checks"]] == [c.url for c in planned.checks]
        # production checks the public URLs (check.url); only the lab passes server addresses
        assert monitors.inputs["site_addresses"] == {}

    return registered(built.onboarding.monitors, mocks).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_ansible_runs_carestack_configure_for_the_clients_server(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    built = deploy.client(client)
    region = pulumi.Config("aws").require("region")

    def check(values: list[Any]) -> None:
        command, address = values
        argv = shlex.split(command.inputs["create"])
        assert argv[:3] == [".venv/bin/carestack", "configure", f"stacks/Pulumi.{client}.yaml"]
        assert (PROJECT_ROOT / argv[2]).resolve() == Path(stack_file(client)).resolve()
        options = dict(zip(argv[3::2], argv[4::2], strict=True))
        assert json.loads(options["--hosts"]) == {built.plan.hosting.server: {"address": address, "ssh_user": "admin"}}
        assert options["--s3-endpoint"] == f"https://s3.{region}.amazonaws.com"
        assert options["--push-base-url"] == f"{KUMA_URL}/api/push"
        assert command.inputs["dir"] == str(PROJECT_ROOT)

    return pulumi.Output.all(registered(built.onboarding.ansible, mocks), built.hosting.address).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_secrets_reach_ansible_only_through_its_environment(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    built = deploy.client(client)
    ansible = built.onboarding.ansible

    def check(values: list[Any]) -> None:
        command, env_secret, create_secret = values
        environment = wire_secret(command.inputs["environment"])
        password = mocks.one("random:index/randomPassword:RandomPassword").state["result"]
        key = mocks.one("aws:iam/accessKey:AccessKey")
        monitors = mocks.one(DYNAMIC)
        assert environment == {
            "CARESTACK_RESTIC_PASSWORD": password,
            "CARESTACK_S3_ACCESS_KEY_ID": key.resource_id,
            "CARESTACK_S3_SECRET_ACCESS_KEY": key.state["secret"],
            "CARESTACK_PUSH_TOKENS": json.dumps(monitors.state["push_tokens"], sort_keys=True),
        }
        # every site's jobs have a token on the way to the server
        tokens = json.loads(environment["CARESTACK_PUSH_TOKENS"])
        assert {site.id: {job.name for job in site.jobs} for site in built.plan.sites} == {
            site: set(jobs) for site, jobs in tokens.items()
        }
        assert env_secret is True and create_secret is False
        for value in environment.values():
            assert value not in command.inputs["create"]
            assert all(value not in str(t) for t in command.inputs["triggers"])

    return pulumi.Output.all(
        registered(ansible, mocks), is_secret(ansible.environment), is_secret(ansible.create)
    ).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_a_changed_plan_a_new_server_or_bucket_reruns_ansible(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    built = deploy.client(client)
    document = json.dumps(expected_plan(client), sort_keys=True, ensure_ascii=False)

    def check(values: list[Any]) -> None:
        command, instance_id, bucket = values
        digest = hashlib.sha256(document.encode()).hexdigest()
        assert command.inputs["triggers"] == [digest, instance_id, bucket, converge_fingerprint()]

    return pulumi.Output.all(
        registered(built.onboarding.ansible, mocks), built.hosting.instance_id, built.bucket.name
    ).apply(check)


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_ansible_waits_for_server_bucket_and_monitors(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    """The command is registered only after everything it uses exists."""
    built = deploy.client(client)

    def check(_: Any) -> None:
        order = [r.typ for r in mocks.registrations]
        ansible = order.index(COMMAND)
        for needed in (DYNAMIC, "aws:iam/accessKey:AccessKey", "aws:s3/bucketPolicy:BucketPolicy"):
            assert order.index(needed) < ansible, needed
        if built.plan.hosting.mode == "dedicated":
            assert order.index("aws:ec2/eip:Eip") < ansible
        else:
            assert order.index("pulumi:pulumi:StackReference") < ansible

    return registered(built.onboarding.ansible, mocks).apply(check)
