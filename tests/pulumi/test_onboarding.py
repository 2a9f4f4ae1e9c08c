"""The monitors and the Ansible run receive the plan's values, and secrets only by environment."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra import spec as spec_module
from infra.aws.onboarding import PROJECT_ROOT
from infra.converge_sources import converge_fingerprint
from infra.plan import build_plan
from infra.program import stack_file
from infra.spec import CATALOG_PATH, ClientSpec, load_catalog, load_stack, merge
from infra.units import parse_duration
from tests.pulumi.harness import (
    DYNAMIC,
    KUMA_URL,
    Deployer,
    RecordingMocks,
    client_stacks,
    is_secret,
    mock_platform_outputs,
    registered,
    wire_secret,
)

CLIENTS = client_stacks()


def expected_plan(client: str) -> dict[str, Any]:
    spec = load_stack(stack_file(client))
    assert isinstance(spec, ClientSpec)
    plan: dict[str, Any] = build_plan(spec).to_dict()
    return plan


def written(client: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The client's stack settings and its tier as written: the stack file's YAML, and the catalog's
    YAML for the tier with the stack's overrides merged in."""
    config = yaml.safe_load(stack_file(client).read_text())["config"]
    stack = {key.removeprefix("carestack:"): value for key, value in config.items() if key.startswith("carestack:")}
    return stack, merge(load_catalog().raw[stack["tier"]], stack.get("overrides", {}))


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_monitors_receive_the_plan(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    built = deploy.client(client)
    stack, tier = written(client)

    def check(monitors: Any) -> None:
        assert monitors.typ == DYNAMIC
        received = json.loads(monitors.inputs["plan_json"])
        assert received == expected_plan(client)
        # the values the monitors are made of, against the stack file and the catalog as written
        monitoring, window = received["monitoring"], tier["updates"]["window"]
        assert monitoring["interval_seconds"] == parse_duration(tier["monitoring"]["interval"])
        assert monitoring["alert_within_seconds"] == parse_duration(tier["monitoring"]["alert_within"])
        assert monitoring["channels"] == tier["monitoring"]["channels"]
        assert monitoring["maintenance"] == {
            "weekday": window["day"],
            "start": window["at"],
            "duration_minutes": parse_duration(window["duration"]) // 60,
        }
        assert [c["email"] for c in received["client"]["contacts"]] == [c.get("email") for c in stack["contacts"]]
        assert len(received["sites"]) == len(stack["sites"])
        for site, written_site in zip(received["sites"], stack["sites"], strict=True):
            scheme = "https" if written_site.get("https", True) else "http"
            assert site["domain"] == written_site["domain"]
            assert [(c["url"], c["keyword"], c["status"]) for c in site["checks"]] == [
                (f"{scheme}://{written_site['domain']}{c['path']}", c["keyword"], c.get("status", 200))
                for c in written_site["checks"]
            ]
            drill = ["drill"] if tier["sla"].get("restore_drill") else []  # the restore drill's DRILL monitor
            assert [j["name"] for j in site["jobs"]] == ["backup", "prune", "check", "update", "scan", "perf", *drill]
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


def ansible_triggers(client: str, monkeypatch: pytest.MonkeyPatch, path: Path, server_generation: int = 0) -> Any:
    """The Ansible command's triggers when the program runs for the stack file at `path`, on fresh mocks."""
    mocks = RecordingMocks(
        platform_outputs=mock_platform_outputs(server_generation), server_generation=server_generation
    )
    deploy, seen = Deployer(mocks, monkeypatch), []

    @pulumi.runtime.test
    def program() -> Any:
        built = deploy.client(client, path)
        return registered(built.onboarding.ansible, mocks).apply(
            lambda command: seen.append(command.inputs["triggers"])
        )

    program()
    [triggers] = seen
    return triggers


def changed_stack(client: str, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the client's stack file with `change` applied to its `carestack:` settings."""
    document = yaml.safe_load(stack_file(client).read_text())
    change(document["config"])
    path = tmp_path / f"Pulumi.{client}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


@pytest.mark.parametrize("client", CLIENTS)
def test_a_changed_plan_a_new_server_or_bucket_reruns_ansible(
    client: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = stack_file(client)
    plan, server, bucket, sources = ansible_triggers(client, monkeypatch, original)
    assert sources == converge_fingerprint()  # a change to the roles or the agent converges again
    # Nothing changed: the same triggers, so `pulumi up` leaves the server alone.
    assert ansible_triggers(client, monkeypatch, original) == [plan, server, bucket, sources]

    def new_keyword(config: dict[str, Any]) -> None:
        config["carestack:sites"][0]["checks"][0]["keyword"] += " and more"

    changed_plan, same_server, same_bucket, _ = ansible_triggers(
        client, monkeypatch, changed_stack(client, tmp_path, new_keyword)
    )
    assert changed_plan != plan and (same_server, same_bucket) == (server, bucket)

    # The server was replaced (a new instance): Ansible runs on the new one.
    same_plan, new_server, same_bucket, _ = ansible_triggers(client, monkeypatch, original, server_generation=1)
    assert new_server != server and (same_plan, same_bucket) == (plan, bucket)

    # The agency's bucket prefix changed (a new bucket): Ansible points the agent at it.
    document = yaml.safe_load(CATALOG_PATH.read_text())
    document["agency"]["bucket_prefix"] = "agency2"
    catalog = tmp_path / "tiers.yaml"
    catalog.write_text(yaml.safe_dump(document, allow_unicode=True))
    monkeypatch.setattr(spec_module, "load_catalog", lambda path=catalog: load_catalog(path))
    _, same_server, new_bucket_name, _ = ansible_triggers(client, monkeypatch, original)
    assert new_bucket_name == f"agency2-{client}-backups" != bucket and same_server == server


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_ansible_waits_for_server_bucket_and_monitors(deploy: Deployer, mocks: RecordingMocks, client: str) -> Any:
    """The command waits for every resource of the server and the bucket (policy, versioning, lock, ...)
    and for the monitors, not only for those whose outputs its inputs happen to use."""
    built = deploy.client(client)

    def check(values: list[Any]) -> None:
        command, hosting, bucket, monitors = values
        for component in (hosting, bucket):
            parts = mocks.custom_resources_under(component)
            assert parts, component
            missing = [f"{r.typ} {r.name}" for r in parts if r.urn not in command.dependencies]
            assert not missing, f"the Ansible command does not wait for {missing}"
        assert monitors in command.dependencies
        if built.plan.hosting.mode == "dedicated":
            assert any(r.typ == "aws:ec2/eip:Eip" for r in mocks.custom_resources_under(hosting))
        else:
            assert any(r.typ == "pulumi:pulumi:StackReference" for r in mocks.custom_resources_under(hosting))

    return pulumi.Output.all(
        registered(built.onboarding.ansible, mocks),
        built.hosting.urn,
        built.bucket.urn,
        built.onboarding.monitors.urn,
    ).apply(check)
