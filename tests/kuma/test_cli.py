"""`carestack monitors sync` end to end: options, output without secrets, the tokens file, clear errors."""

from __future__ import annotations

import copy
import json
import stat
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.plan import build_plan
from infra.spec import STACKS_DIR, ClientSpec, load_stack
from tests.kuma.conftest import Kuma, Receiver
from tests.kuma.support import NOWHERE, write_yaml

pytestmark = pytest.mark.kuma


@pytest.fixture(autouse=True)
def no_kuma_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kuma comes from each test's own options, never from the caller's environment."""
    for name in ("CARESTACK_KUMA_URL", "CARESTACK_KUMA_USERNAME", "CARESTACK_KUMA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def nowhere(client_id: str) -> list[str]:
    """--site-address options putting the studio stack's sites on a closed loopback port."""
    return [arg for site in ("web", "plans") for arg in ("--site-address", f"{client_id}-{site}={NOWHERE}")]


def stack_file(tmp_path: Path, client_id: str) -> Path:
    document = yaml.safe_load((STACKS_DIR / "Pulumi.studio.yaml").read_text())
    document = copy.deepcopy(document)
    document["config"]["carestack:client"]["id"] = client_id
    return write_yaml(tmp_path / f"Pulumi.{client_id}.yaml", document)


def test_sync_prints_changes_and_writes_tokens_to_a_private_file(
    kuma: Kuma, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stack_file(tmp_path, "cli")
    alerting = write_yaml(tmp_path / "alerting.yaml", {"receiver_url": receiver.url})
    tokens_file = tmp_path / "tokens.json"
    args = ["monitors", "sync", str(stack), "--credentials", str(kuma.state_dir / "credentials.json")]
    args += ["--alerting", str(alerting), *nowhere("cli")]

    assert main([*args, "--dry-run"]) == 0
    planned = capsys.readouterr().out
    assert "+ monitor cli-web · /projects/: keyword, every 60s" in planned
    # Every page check and job heartbeat of the plan, 4 notifications (3 to the client's contacts, 1 to the
    # agency), the window, the status page.
    spec = load_stack(stack)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    monitors = sum(len(site.checks) + len(site.jobs) for site in plan.sites)
    summary = planned.rstrip().splitlines()[-1]
    assert summary.startswith(f"cli: would create {monitors + 6}, update ") and summary.endswith(", delete 0")
    assert f"+ status page carestack-cli: 2 sections, {monitors} monitors" in planned

    assert main([*args, "--push-tokens-out", str(tokens_file)]) == 0
    out = capsys.readouterr().out
    tokens = json.loads(tokens_file.read_text())
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    web = next(site for site in plan.sites if site.id == "cli-web")
    assert sorted(tokens) == ["cli-plans", "cli-web"]
    assert sorted(tokens["cli-web"]) == sorted(job.name for job in web.jobs)  # a push token per job of the plan
    assert not [t for jobs in tokens.values() for t in jobs.values() if t in out]

    assert main(args) == 0
    assert capsys.readouterr().out == "cli: monitors in sync, nothing to change\n"


def test_sync_reads_credentials_from_the_environment(
    kuma: Kuma, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CARESTACK_KUMA_URL", kuma.login.url)
    monkeypatch.setenv("CARESTACK_KUMA_USERNAME", kuma.login.username)
    monkeypatch.setenv("CARESTACK_KUMA_PASSWORD", kuma.login.password)
    alerting = write_yaml(tmp_path / "alerting.yaml", {"receiver_url": receiver.url})
    stack = stack_file(tmp_path, "envcli")
    assert main(["monitors", "sync", str(stack), "--alerting", str(alerting), *nowhere("envcli")]) == 0
    assert "envcli: did create" in capsys.readouterr().out


def test_sync_without_kuma_or_alerting_says_what_to_give(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = stack_file(tmp_path, "lost")
    assert main(["monitors", "sync", str(stack)]) == 1
    assert "give --alerting FILE" in capsys.readouterr().err
    alerting = write_yaml(tmp_path / "alerting.yaml", {"receiver_url": "http://127.0.0.1:9/alert"})
    assert main(["monitors", "sync", str(stack), "--alerting", str(alerting)]) == 1
    assert "where is Uptime Kuma? give --credentials FILE" in capsys.readouterr().err


def test_bad_alerting_file_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerting = write_yaml(tmp_path / "alerting.yaml", {"sms": {"provider": "SMSEagle", "recipient_field": "nope"}})
    assert main(["monitors", "sync", str(stack_file(tmp_path, "bad")), "--alerting", str(alerting)]) == 1
    err = capsys.readouterr().err
    assert f"{alerting}: sms: SMSEagle has no field(s) nope" in err


def test_studio_needs_smtp_and_sms_settings_for_its_channels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alerting = write_yaml(tmp_path / "alerting.yaml", {})
    assert main(["monitors", "sync", str(stack_file(tmp_path, "nosmtp")), "--alerting", str(alerting)]) == 1
    err = capsys.readouterr().err
    assert "notification email to Erik Lindqvist: the tier alerts by email but the alerting config has no email" in err
    assert "notification sms to Erik Lindqvist: the tier alerts by sms but the alerting config has no sms" in err
