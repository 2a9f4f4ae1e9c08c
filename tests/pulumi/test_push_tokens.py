"""The agent's push tokens reach every path that converges a server.

`pulumi up` hands them to Ansible itself; the stack exports them (secret) so
a by-hand `carestack configure` gets the same ones, and a run without them is
refused before Ansible starts: an agent without heartbeats looks down to Kuma.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.ansible_vars import Client, HostAccess, Realization, check_realization
from infra.cli import main
from infra.configure import secrets_from_env
from infra.program import stack_file
from tests.pulumi.harness import DYNAMIC, Deployer, RecordingMocks, client_stacks, is_secret

CLIENTS = client_stacks()
SECRETS = {
    "CARESTACK_RESTIC_PASSWORD": "pw-by-hand",
    "CARESTACK_S3_ACCESS_KEY_ID": "AKIABYHAND",
    "CARESTACK_S3_SECRET_ACCESS_KEY": "sk-by-hand",
}
PUSH = "https://status.agency.example/api/push"


@pytest.mark.parametrize("client", CLIENTS)
@pulumi.runtime.test
def test_the_push_tokens_are_a_secret_stack_output_configure_accepts(
    deploy: Deployer, mocks: RecordingMocks, client: str
) -> Any:
    built = deploy.client(client)
    tokens = built.outputs["push_tokens"]

    def check(values: list[Any]) -> None:
        exported, secret = values
        assert secret is True
        assert exported == mocks.one(DYNAMIC).state["push_tokens"]
        # what an operator passes on: CARESTACK_PUSH_TOKENS="$(pulumi stack output --show-secrets --json push_tokens)"
        env = {**SECRETS, "CARESTACK_PUSH_TOKENS": json.dumps(exported)}
        hosts = {built.plan.hosting.server: HostAccess("203.0.113.10", "admin")}
        check_realization([Client(built.plan, secrets_from_env(env))], Realization(hosts, "https://s3.example", PUSH))

    return pulumi.Output.all(tokens, is_secret(tokens)).apply(check)


def configure_argv(client: str) -> list[str]:
    hosts = json.dumps({"shop-1": {"address": "203.0.113.10", "ssh_user": "admin"}})
    return ["configure", str(stack_file(client)), "--hosts", hosts, "--s3-endpoint", "https://s3.example"]


@pytest.mark.parametrize(
    "tokens",
    [None, "{}", json.dumps({"shop-tea": {"backup": "tok-backup"}})],
    ids=["unset", "empty", "incomplete"],
)
def test_configure_by_hand_without_every_token_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tokens: str | None
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    if tokens is None:
        monkeypatch.delenv("CARESTACK_PUSH_TOKENS", raising=False)
    else:
        monkeypatch.setenv("CARESTACK_PUSH_TOKENS", tokens)
    # Refused before anything runs: exit 2 is bad input (a failed Ansible run exits 1).
    assert main([*configure_argv("shop"), "--push-base-url", PUSH]) == 2
    err = capsys.readouterr().err
    assert "CARESTACK_PUSH_TOKENS: no push token for shop-tea job(s)" in err
    assert "check" in err.split("shop-tea job(s)")[1]
    assert "tok-backup" not in err


def test_configure_needs_the_push_base_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(configure_argv("shop"))
    assert exited.value.code == 2
    assert "--push-base-url" in capsys.readouterr().err
