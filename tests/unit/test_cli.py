"""The command's verbs: infra's production commands alone, and the installed `carestack` with the lab's."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from infra import cli as infra_cli
from lab import cli as lab_cli

ROOT = Path(__file__).resolve().parents[2]


def verbs(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_infra_registers_only_production_verbs() -> None:
    production = {
        "validate",
        "plan",
        "configure",
        "import",
        "monitors",
        "sla-doc",
        "failover",
        "failback",
        "offboard",
        "report",
    }
    assert verbs(infra_cli.build_parser()) == production


def test_the_installed_command_is_infras_verbs_plus_the_lab() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["carestack"] == "lab.cli:main"
    full = infra_cli.build_parser((*infra_cli.COMMANDS, lab_cli.register))
    assert verbs(full) == verbs(infra_cli.build_parser()) | {"lab"}
    lab_verbs = full.parse_args(["lab", "status", "--json"])
    assert lab_verbs.lab_verb == "status" and lab_verbs.json


def test_the_lab_package_is_an_optional_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("moto")]
    assert any(d.startswith("moto[server]") for d in project["optional-dependencies"]["lab"])
