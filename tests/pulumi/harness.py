"""Pulumi mocks for the AWS program: every registration is recorded as the engine would see it.

Mocks receive wire (camelCase) names and echo inputs back as state, adding the
few values a real provider computes (ids, addresses, generated secrets). The
platform stack a shared client references is served by the mocks too
(`platform_outputs`), in the shape the platform program exports.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockMonitor

from infra.aws.onboarding import PROJECT_ROOT
from infra.program import ClientDeployment, PlatformDeployment, run, stack_file
from infra.spec import ClientSpec, PlatformSpec, example_stacks, load_stack, stack_name

PROJECT = "carestack"
KUMA_URL = "https://status.agency.example"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockKeyForTestsOnlyNotARealKey0000000000 ops@agency"
# The operator's guide's example alerting file, and the secrets it names (set in the environment).
ALERTING_FILE = PROJECT_ROOT / "docs" / "examples" / "agency-alerting.yaml"
ALERTING_ENV = {"CARESTACK_SMTP_PASSWORD": "mock-smtp-password", "CARESTACK_SMS_TOKEN": "mock-sms-token"}
# Documentation range (RFC 5737): addresses the mocks hand out, never contacted.
MOCK_ADDRESSES = ipaddress.ip_network("203.0.113.0/24")

# How a secret travels to the engine (Pulumi's property wire format): {SIG_KEY: SECRET_SIG, "value": ...}.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

STACK_REFERENCE = "pulumi:pulumi:StackReference"
# ClientMonitors declares module "carestack", name "ClientMonitors" (infra.kuma_provider).
DYNAMIC = "pulumi-python:dynamic/carestack:ClientMonitors"


@dataclass
class Registration:
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    resource_id: str
    # As the engine receives them (RecordingMonitor): the resource's URN, its parent's, whether it is a
    # custom resource, and the URNs it waits for (explicit depends_on and its inputs' resources).
    urn: str = ""
    parent: str = ""
    custom: bool = False
    dependencies: frozenset[str] = frozenset()
    retain_on_delete: bool = False  # `pulumi destroy` leaves the cloud resource in place
    ignore_changes: frozenset[str] = frozenset()  # inputs whose later changes never update or replace it


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that remember every resource and invoke, for assertions."""

    platform_outputs: dict[str, Any] = field(default_factory=dict)
    registrations: list[Registration] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Bumped to stand for a replaced server: the ids the mocks hand out change with it.
    server_generation: int = 0

    def _address(self, name: str) -> str:
        taken = sum(1 for r in self.registrations if r.typ == "aws:ec2/eip:Eip")
        return str(MOCK_ADDRESSES[10 + taken])

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        state = dict(inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            state["arn"] = f"arn:aws:s3:::{inputs['bucket']}"
        elif args.typ == "aws:ec2/instance:Instance":
            resource_id = instance_id(args.name, self.server_generation)
        elif args.typ == "aws:ec2/eip:Eip":
            state["publicIp"] = self._address(args.name)
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state["keyName"] = args.name
        elif args.typ == "aws:iam/accessKey:AccessKey":
            resource_id = f"AKIAMOCK{len(self.registrations):08d}"
            state["secret"] = f"mock-secret-access-key-of-{args.name}"
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = f"mock-restic-password-of-{args.name}"
        elif args.typ == STACK_REFERENCE:
            resource_id = inputs["name"]
            state = {"name": inputs["name"], "outputs": self.platform_outputs, "secretOutputNames": []}
        elif args.typ == DYNAMIC and "plan_json" in inputs:
            plan = json.loads(inputs["plan_json"])
            state["push_tokens"] = {
                site["id"]: {job["name"]: f"mock-token-{site['id']}-{job['name']}" for job in site["jobs"]}
                for site in plan["sites"]
            }
        self.registrations.append(Registration(args.typ, args.name, inputs, state, resource_id))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0debian12mock", "name": "debian-12-amd64-20250101-0000", "architecture": "x86_64"}, []
        return {}, []

    # --- queries for the tests ---------------------------------------------------

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.typ == typ]

    def one(self, typ: str) -> Registration:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]

    def custom_resources_under(self, urn: str) -> list[Registration]:
        """Every custom resource whose parent chain reaches the component `urn`."""
        parents = {r.urn: r.parent for r in self.registrations}

        def under(candidate: str) -> bool:
            while candidate:
                candidate = parents.get(candidate, "")
                if candidate == urn:
                    return True
            return False

        return [r for r in self.registrations if r.custom and under(r.urn)]


class RecordingMonitor(MockMonitor):
    """The mock engine, also noting what each registration depends on (MockResourceArgs does not carry it)."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self._note(request, response.urn, bool(request.custom), frozenset(request.dependencies))
        for registration in self.recording.registrations:
            if registration.urn == response.urn:
                registration.retain_on_delete = bool(request.retainOnDelete)
                registration.ignore_changes = frozenset(request.ignoreChanges)
        return response

    def ReadResource(self, request: Any) -> Any:
        """A resource read, not created (such as a StackReference)."""
        response = super().ReadResource(request)
        self._note(request, response.urn, True, frozenset())
        return response

    def _note(self, request: Any, urn: str, custom: bool, dependencies: frozenset[str]) -> None:
        registration = next(
            (r for r in reversed(self.recording.registrations) if (r.typ, r.name) == (request.type, request.name)),
            None,
        )
        if registration is None:  # the stack itself: the mocks never see it
            return
        registration.urn, registration.parent = urn, request.parent
        registration.custom, registration.dependencies = custom, dependencies


def instance_id(name: str, generation: int = 0) -> str:
    return f"i-{name}" if not generation else f"i-{name}-{generation}"


def stack_region(path: Path) -> str:
    document = yaml.safe_load(path.read_text())
    return str(document["config"]["aws:region"])


@dataclass
class Deployer:
    """Runs the real program (`infra.program.run`) for a stack file under the mocks."""

    mocks: RecordingMocks
    monkeypatch: pytest.MonkeyPatch

    def configure(self, stack: str, config: dict[str, str]) -> None:
        self.monkeypatch.delenv("AWS_REGION", raising=False)
        self.monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
        self.monkeypatch.delenv("PULUMI_CONFIG", raising=False)
        for name, value in ALERTING_ENV.items():
            self.monkeypatch.setenv(name, value)
        pulumi.runtime.set_mocks(
            self.mocks, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(self.mocks)
        )
        pulumi.runtime.set_all_config(config, [f"{PROJECT}:kuma_password"])

    def settings(self, path: Path) -> dict[str, str]:
        """Pulumi config an operator sets for this stack (see the report / README)."""
        return {
            "aws:region": stack_region(path),
            f"{PROJECT}:kuma_url": KUMA_URL,
            f"{PROJECT}:kuma_username": "carestack",
            f"{PROJECT}:kuma_password": "mock-kuma-password",
            f"{PROJECT}:ssh_public_key": SSH_PUBLIC_KEY,
            f"{PROJECT}:kuma_alerting_file": str(ALERTING_FILE),
        }

    def client(self, name: str, path: Path | None = None) -> ClientDeployment:
        """The client stack `name`, from its stack file in stacks/ or from `path`."""
        path = path or stack_file(name)
        self.configure(name, self.settings(path))
        built = run(path)
        assert isinstance(built, ClientDeployment)
        return built

    def platform(self, name: str = "platform") -> PlatformDeployment:
        path = stack_file(name)
        self.configure(name, self.settings(path))
        built = run(path)
        assert isinstance(built, PlatformDeployment)
        return built


def client_stacks() -> list[str]:
    return [stack_name(p) for p in example_stacks() if isinstance(load_stack(p), ClientSpec)]


def platform_stacks() -> list[str]:
    return [stack_name(p) for p in example_stacks() if isinstance(load_stack(p), PlatformSpec)]


def mock_platform_outputs(server_generation: int = 0) -> dict[str, Any]:
    """The example platform stack's outputs, shaped as `build_platform` exports them."""
    spec = load_stack(stack_file(platform_stacks()[0]))
    assert isinstance(spec, PlatformSpec)
    hosts = {
        host.name: {"address": str(MOCK_ADDRESSES[100 + i]), "instance_id": instance_id(host.name, server_generation)}
        for i, host in enumerate(spec.stack.shared_hosts)
    }
    standby = spec.stack.standby
    return {
        "shared_hosts": hosts,
        "standby": {"name": standby.name, "address": str(MOCK_ADDRESSES[99]), "instance_id": f"i-{standby.name}"},
    }


def registered(resource: pulumi.Resource, mocks: RecordingMocks) -> pulumi.Output[Registration]:
    """The registration of `resource`, once the engine (the mocks) has seen it."""

    def find(urn: str) -> Registration:
        parts = urn.split("::")
        typ, name = parts[2].split("$")[-1], parts[3]
        matches = [r for r in mocks.registrations if r.typ == typ and r.name == name]
        assert len(matches) == 1, f"{urn}: {len(matches)} registrations"
        return matches[0]

    return resource.urn.apply(find)


def wire_secret(value: Any) -> Any:
    """The value inside a secret as the engine received it; fails if it was sent in the clear."""
    assert isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG, f"sent in the clear: {value!r}"
    return value["value"]


def is_secret(output: pulumi.Output[Any]) -> pulumi.Output[bool]:
    """Whether `output` is a secret, as an Output a test can return."""

    async def check() -> bool:
        return await output.is_secret()

    return pulumi.Output.from_input(check())
