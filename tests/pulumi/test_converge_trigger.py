"""Upgrading carestack upgrades the fleet: changed roles or agent code re-run Ansible on `pulumi up`.

The program runs against a copy of the converge sources, so a test can change
a role file without touching the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra import converge_sources
from infra.converge_sources import CONVERGE_SOURCES, IGNORED, PROJECT_ROOT, converge_fingerprint
from infra.program import run, stack_file
from tests.pulumi.harness import Deployer, RecordingMocks

COMMAND = "command:local:Command"
ROLE_FILE = "ansible/roles/web/templates/nginx-carestack.conf.j2"
AGENT_FILE = "agent/carestack_agent/jobs.py"


def copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    for source in CONVERGE_SOURCES:
        origin, target = PROJECT_ROOT / source, root / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns(*IGNORED))
        else:
            shutil.copy2(origin, target)
    return root


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_a_copy_of_the_sources_has_the_projects_fingerprint(tmp_path: Path) -> None:
    assert converge_fingerprint(copy_sources(tmp_path)) == converge_fingerprint()


@pytest.mark.parametrize("changed", [ROLE_FILE, AGENT_FILE, "infra/agent_config.py"])
def test_a_changed_source_changes_the_fingerprint(tmp_path: Path, changed: str) -> None:
    root = copy_sources(tmp_path)
    before = converge_fingerprint(root)
    append(root / changed, "\n")
    assert converge_fingerprint(root) != before


def test_a_new_file_in_a_role_counts_hidden_or_not(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    before = converge_fingerprint(root)
    (root / "ansible/roles/site/files/.htaccess").write_text("Require all denied\n")
    assert converge_fingerprint(root) != before


def test_build_and_tool_leftovers_do_not_count(tmp_path: Path) -> None:
    root = copy_sources(tmp_path)
    before = converge_fingerprint(root)
    leftovers = [
        "agent/carestack_agent/__pycache__/jobs.cpython-311.pyc",
        "agent/build/lib/carestack_agent/jobs.py",
        "agent/carestack_agent.egg-info/PKG-INFO",
        "ansible/.ansible/collections/cache",
        "ansible/site.retry",
    ]
    for leftover in leftovers:
        (root / leftover).parent.mkdir(parents=True, exist_ok=True)
        (root / leftover).write_text("left over\n")
    assert converge_fingerprint(root) == before


def ansible_triggers(deploy: Deployer, mocks: RecordingMocks, client: str) -> list[Any]:
    """The Ansible command's triggers as `pulumi up` would register them now."""
    deploy.configure(client, deploy.settings(stack_file(client)))
    mocks.registrations.clear()

    @pulumi.runtime.test
    def program() -> None:
        run(stack_file(client))

    program()  # returns once every registration is done
    triggers: list[Any] = mocks.one(COMMAND).inputs["triggers"]
    return triggers


@pytest.mark.parametrize("changed", [ROLE_FILE, AGENT_FILE])
def test_a_changed_role_or_agent_changes_the_ansible_trigger(
    deploy: Deployer, mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changed: str
) -> None:
    root = copy_sources(tmp_path)
    monkeypatch.setattr(converge_sources, "PROJECT_ROOT", root)
    before = ansible_triggers(deploy, mocks, "shop")
    again = ansible_triggers(deploy, mocks, "shop")
    append(root / changed, "\n# changed\n")
    after = ansible_triggers(deploy, mocks, "shop")
    assert again == before  # nothing changed: Ansible is not run again
    assert after[:-1] == before[:-1]  # same plan, server and bucket
    assert after[-1] != before[-1] and after[-1] == converge_fingerprint(root)
