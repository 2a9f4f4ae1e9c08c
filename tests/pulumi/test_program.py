"""The program as a whole: every tier is covered, and bad input declares nothing to Pulumi."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.aws.onboarding import PROJECT_ROOT
from infra.plan import build_plan
from infra.program import run, stack_file
from infra.spec import ClientSpec, SpecError, load_catalog, load_stack
from tests.pulumi.harness import Deployer, RecordingMocks, client_stacks


def test_the_example_clients_cover_every_tier() -> None:
    tiers = set()
    for client in client_stacks():
        spec = load_stack(stack_file(client))
        assert isinstance(spec, ClientSpec)
        tiers.add(spec.tier_name)
    assert tiers == set(load_catalog().names())


def test_main_builds_the_selected_stack(deploy: Deployer, mocks: RecordingMocks) -> None:
    """`pulumi up` runs __main__.py: the stack's own file in stacks/ decides what is built."""
    for stack in ("shop", "platform"):
        deploy.configure(stack, deploy.settings(stack_file(stack)))
        mocks.registrations.clear()

        @pulumi.runtime.test
        def program() -> None:
            runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")

        program()  # returns once the runtime has finished every registration
        spec = load_stack(stack_file(stack))
        buckets = [r.inputs["bucket"] for r in mocks.of_type("aws:s3/bucket:Bucket")]
        instances = {r.name for r in mocks.of_type("aws:ec2/instance:Instance")}
        if isinstance(spec, ClientSpec):
            plan = build_plan(spec)
            assert buckets == [plan.storage.bucket] and instances == {plan.hosting.server}
        else:
            assert buckets == [] and instances == {h.name for h in [*spec.stack.shared_hosts, spec.stack.standby]}


def write_stack(tmp_path: Path, example: str, change: Any) -> Path:
    """A copy of an example stack with `change(config)` applied."""
    document = yaml.safe_load(stack_file(example).read_text())
    change(document["config"])
    path = tmp_path / f"Pulumi.{example}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


def run_expecting_error(deploy: Deployer, path: Path, config: dict[str, str], unset: tuple[str, ...] = ()) -> SpecError:
    deploy.configure("broken", config)
    for name in unset:
        deploy.monkeypatch.delenv(name)

    @pulumi.runtime.test
    def program() -> Any:
        return run(path).outputs

    with pytest.raises(SpecError) as error:
        program()
    return error.value


def test_an_invalid_stack_declares_nothing(deploy: Deployer, mocks: RecordingMocks, tmp_path: Path) -> None:
    def misspell(config: dict[str, Any]) -> None:
        config["carestack:sites"][0]["kidn"] = config["carestack:sites"][0].pop("kind")

    path = write_stack(tmp_path, "shop", misspell)
    error = run_expecting_error(deploy, path, deploy.settings(stack_file("shop")))
    assert any(p.startswith("carestack:sites[0].kidn: unknown key; did you mean 'kind'?") for p in error.problems)
    assert mocks.registrations == [] and mocks.calls == []


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("aws:region", "aws:region: is required"),
        ("carestack:kuma_url", "carestack:kuma_url: is required"),
        ("carestack:kuma_username", "carestack:kuma_username: is required"),
        ("carestack:kuma_password", "carestack:kuma_password: is required"),
        ("carestack:kuma_alerting_file", "carestack:kuma_alerting_file: is required: the plan sends job heartbeats"),
        ("carestack:ssh_public_key", "carestack:ssh_public_key: is required"),
        ("CARESTACK_SMTP_PASSWORD", "carestack:kuma_alerting_file: "),
        ("CARESTACK_SMS_TOKEN", "carestack:kuma_alerting_file: "),
    ],
)
def test_a_missing_input_declares_nothing(deploy: Deployer, mocks: RecordingMocks, missing: str, named: str) -> None:
    """Every input `pulumi up` needs, down to the secrets the alerting file names, is there before
    the first resource: a missing one is named and nothing is created (a dedicated tier needs them all)."""
    path = stack_file("shop")
    config = {k: v for k, v in deploy.settings(path).items() if k != missing}
    unset = (missing,) if missing.isupper() else ()
    error = run_expecting_error(deploy, path, config, unset)
    found = [p for p in error.problems if p.startswith(named)]
    assert found, error.problems
    if unset:  # the variable is named, and nothing else is wrong
        assert len(error.problems) == 1 and missing in found[0]
    assert mocks.registrations == [] and mocks.calls == []


def test_a_bad_alerting_file_declares_nothing(deploy: Deployer, mocks: RecordingMocks, tmp_path: Path) -> None:
    path = stack_file("studio")
    broken = tmp_path / "alerting.yaml"
    broken.write_text("email: {host: smtp.agency.example, port: 70000, from: alerts@agency.example}\n")
    missing = tmp_path / "nowhere.yaml"
    for alerting, expected in ((broken, "email.port"), (missing, "file not found")):
        config = {**deploy.settings(path), "carestack:kuma_alerting_file": str(alerting)}
        error = run_expecting_error(deploy, path, config)
        assert [p for p in error.problems if p.startswith("carestack:kuma_alerting_file:") and expected in p]
        assert mocks.registrations == []


def test_webhook_only_alerting_needs_only_the_agencys_on_call(
    deploy: Deployer, mocks: RecordingMocks, tmp_path: Path
) -> None:
    def webhook_only(config: dict[str, Any]) -> None:
        config["carestack:contacts"] = [{"name": "On call", "webhook": "https://hooks.agency.example/cs"}]
        config["carestack:overrides"] = {"monitoring": {"channels": ["webhook"]}}

    path = write_stack(tmp_path, "shop", webhook_only)
    without = {k: v for k, v in deploy.settings(path).items() if "alerting" not in k}
    error = run_expecting_error(deploy, path, without)
    assert [p for p in error.problems if "kuma_alerting_file: is required: the plan sends job heartbeats" in p]
    assert mocks.registrations == []

    on_call = tmp_path / "alerting.yaml"
    on_call.write_text("agency: {webhook: https://chat.agency.example/hooks/carestack}\n")
    deploy.configure("shop", {**without, "carestack:kuma_alerting_file": str(on_call)})

    @pulumi.runtime.test
    def program() -> Any:
        return run(path).outputs["bucket"]

    program()
    assert mocks.of_type("aws:s3/bucket:Bucket")


def test_malformed_deployment_settings_are_named(deploy: Deployer, mocks: RecordingMocks) -> None:
    path = stack_file("shop")
    config = {**deploy.settings(path), "carestack:kuma_url": "status.example", "carestack:ssh_public_key": "AAAA"}
    error = run_expecting_error(deploy, path, config)
    assert {p.split(":")[0] + ":" + p.split(":")[1] for p in error.problems} == {
        "carestack:kuma_url",
        "carestack:ssh_public_key",
    }
    assert mocks.registrations == []


def test_a_shared_client_must_name_its_platform(deploy: Deployer, mocks: RecordingMocks, tmp_path: Path) -> None:
    path = write_stack(tmp_path, "bakery", lambda config: config.pop("carestack:platform_stack"))
    error = run_expecting_error(deploy, path, deploy.settings(stack_file("bakery")))
    assert [p for p in error.problems if p.startswith("carestack:platform_stack:")], error.problems
    assert mocks.registrations == []


@pytest.mark.parametrize("missing", ["aws:region", "carestack:ssh_public_key"])
def test_the_platform_needs_its_region_and_key_and_nothing_of_kuma(
    deploy: Deployer, mocks: RecordingMocks, missing: str
) -> None:
    path = stack_file("platform")
    without_kuma = {k: v for k, v in deploy.settings(path).items() if "kuma" not in k}
    deploy.configure("platform", without_kuma)

    @pulumi.runtime.test
    def program() -> Any:
        return run(path).outputs["hosts"]

    program()
    assert mocks.of_type("aws:ec2/instance:Instance")
    mocks.registrations.clear()
    error = run_expecting_error(deploy, path, {k: v for k, v in without_kuma.items() if k != missing})
    assert [p.split(": ")[0] for p in error.problems] == [missing]
    assert mocks.registrations == []
