"""The operator's guide (docs/) is checked against the code.

Every `carestack` command and flag it shows exists in the CLI's argparse
tree (and every `carestack-agent` one in the agent's), every example file
validates, and the stack key reference is what the schema generates.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml
from carestack_agent.cli import build_parser as build_agent_parser

from infra import kuma_versions, stack_keys_doc
from infra.alerting import load_alerting
from infra.cli import build_parser
from infra.report.branding import load_branding
from infra.spec import Agency, carestack_config, load_stack, parse_stack

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
SEPARATORS = {"&&", "||", "|", ";", "$("}
INLINE = re.compile(r"`([^`]+)`")


def code_of(page: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced block and inline code span of a page."""
    text = page.read_text(encoding="utf-8")
    blocks = [(lang, body) for lang, body in FENCE.findall(text)]
    prose = FENCE.sub("", text)
    return blocks + [("inline", span.replace("\n", " ")) for span in INLINE.findall(prose)]


def carestack_commands(code: str, program: str = "carestack") -> list[list[str]]:
    """The argument lists of the `carestack` (or `program`) commands in shell text: the program in a command's
    position (first, after a separator or after VAR=value words), up to the next separator.
    Continuation lines are joined and comments dropped; a bare `carestack` is the name, not a command."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        start = 0
        for i, word in enumerate(words):
            if word in SEPARATORS:
                start = i + 1
                continue
            in_position = all("=" in w and not w.startswith("-") for w in words[start:i])
            if in_position and (word == program or word.endswith(f"/{program}")):
                rest = words[i + 1 :]
                end = next((n for n, w in enumerate(rest) if w in SEPARATORS), len(rest))
                if rest[:end]:
                    commands.append(rest[:end])
    return commands


def documented_commands(program: str = "carestack") -> list[tuple[Path, list[str]]]:
    return [(page, args) for page in PAGES for _, code in code_of(page) for args in carestack_commands(code, program)]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def check_command(args: list[str], program: str = "carestack") -> list[str]:
    """What in one documented command line the CLI (or the agent's, for carestack-agent) does not have."""
    parser = build_agent_parser() if program == "carestack-agent" else build_parser()
    path: list[str] = [program]
    problems: list[str] = []
    words = [w.strip("[]") for w in args]
    while words and words[0] in subcommands(parser):
        path.append(words[0])
        parser = subcommands(parser)[words.pop(0)]
    if subcommands(parser):
        problems.append(f"{' '.join(path)}: no sub-command {words[:1]} (has {', '.join(subcommands(parser))})")
    for word in words:
        if word.startswith("-") and word.split("=")[0] not in options(parser):
            problems.append(f"{' '.join(path)}: no option {word.split('=')[0]}")
    return problems


def test_the_readme_links_the_guide() -> None:
    assert "(docs/README.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.parent == DOCS and page.name != "README.md":
            assert f"({page.name})" in index, f"docs/README.md does not link {page.name}"


def test_every_documented_command_and_flag_exists() -> None:
    found = documented_commands()
    problems = [f"{page.relative_to(ROOT)}: {p}" for page, args in found for p in check_command(args)]
    assert not problems, "\n".join(problems)
    verbs = {" ".join(args[:2]) if args[:1] == ["monitors"] else args[0] for _, args in found if args}
    assert {"validate", "plan", "configure", "monitors sync"} <= verbs, verbs


def test_every_documented_agent_command_and_flag_exists() -> None:
    found = documented_commands("carestack-agent")
    problems = [
        f"{page.relative_to(ROOT)}: {p}" for page, args in found for p in check_command(args, "carestack-agent")
    ]
    assert not problems, "\n".join(problems)
    assert {"restore", "backup", "import"} <= {args[0] for _, args in found if args}


@pytest.mark.parametrize(
    ("program", "line"),
    [
        ("carestack-agent", "carestack-agent restor SITE"),
        ("carestack-agent", "carestack-agent backup SITE --reasons manual"),
    ],
)
def test_the_agent_command_check_finds_what_does_not_exist(program: str, line: str) -> None:
    (args,) = carestack_commands(line, program)
    assert check_command(args, program)


@pytest.mark.parametrize(
    "line",
    [
        "carestack validat stacks/Pulumi.x.yaml",
        "carestack configure STACK_FILE --hostz hosts.json",
        "carestack monitors sink STACK_FILE",
    ],
)
def test_the_command_check_finds_what_does_not_exist(line: str) -> None:
    (args,) = carestack_commands(line)
    assert check_command(args)


EXAMPLES = sorted((DOCS / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_file_validates(example: Path) -> None:
    if example.name.startswith("Pulumi."):
        load_stack(example)
    elif example.name == "branding.yaml":
        branding = load_branding(example)
        assert branding.name and branding.logo_data_uri.startswith("data:image/svg+xml;base64,")
    else:
        config = load_alerting(example)
        assert config.email is not None and config.sms is not None


def test_every_yaml_block_in_the_guide_validates(tmp_path: Path) -> None:
    checked = 0
    for page in PAGES:
        for lang, body in code_of(page):
            if lang != "yaml":
                continue
            document = yaml.safe_load(body)
            if isinstance(document, dict) and "config" in document:
                parse_stack(str(page), carestack_config(str(page), document))
            elif isinstance(document, dict) and "bucket_prefix" in (document.get("agency") or {}):
                Agency.model_validate(document["agency"])  # the catalog's agency section
            else:
                path = tmp_path / f"{page.stem}-{checked}.yaml"
                path.write_text(body, encoding="utf-8")
                load_alerting(path)
            checked += 1
    assert checked >= 1


def test_the_stack_key_reference_is_what_the_schema_generates() -> None:
    assert stack_keys_doc.DOC.read_text(encoding="utf-8") == stack_keys_doc.render(), (
        "docs/stack-keys.md is stale: run .venv/bin/python -m infra.stack_keys_doc"
    )


def test_the_stack_key_reference_names_every_key() -> None:
    text = stack_keys_doc.render()
    for key in (
        "carestack:client.id",
        "carestack:sites[].checks[].keyword",
        "carestack:contacts[].webhook",
        "carestack:shared_hosts[].volume_gb",
        "carestack:kuma_alerting_file",
        "agency.bucket_prefix",
        "backup.keep.hourly",
        "sla.severities.<name>.fix",
        "sla.support.from",
    ):
        assert f"| `{key}` |" in text, key


def test_the_generator_check_fails_on_a_stale_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = tmp_path / "stack-keys.md"
    monkeypatch.setattr(stack_keys_doc, "DOC", doc)
    assert stack_keys_doc.main(["--check"]) == 1  # missing
    assert stack_keys_doc.main([]) == 0 and stack_keys_doc.main(["--check"]) == 0
    doc.write_text(doc.read_text().replace("carestack:admin_cidr", "carestack:admin_range"))
    assert stack_keys_doc.main(["--check"]) == 1


def test_every_placeholder_of_the_restore_by_hand_steps_is_explained() -> None:
    """The page's sh blocks are a lab test's script: each <name> in them is a row of its table, and back."""
    text = (DOCS / "restore-by-hand.md").read_text(encoding="utf-8")
    steps = "\n".join(body for lang, body in FENCE.findall(text) if lang == "sh")
    used = set(re.findall(r"<([a-z][a-z0-9_]*)>", steps))
    explained = set(re.findall(r"^\| `<([a-z][a-z0-9_]*)>` \|", text, re.MULTILINE))
    assert {"repository", "s3_access_key_id", "s3_secret_access_key", "restic_password", "site"} <= used
    assert used == explained, (sorted(used), sorted(explained))


def test_the_guide_names_the_kuma_versions_the_monitors_layer_is_tested_on() -> None:
    text = " ".join((DOCS / "prerequisites.md").read_text(encoding="utf-8").split())
    assert "Uptime Kuma 1.23.x and 2.x stable, and the 2.0.0-dev.0 snapshot" in text  # kuma_versions.SUPPORTED
    for version in kuma_versions.TESTED:
        assert version in text, f"docs/prerequisites.md does not name the tested Kuma {version}"
