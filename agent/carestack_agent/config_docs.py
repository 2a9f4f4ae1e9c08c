"""The config schema written out for people: a sample agent.toml and the README's config section.

Both are generated from the settings classes in `config.py` (`carestack-agent
sample-config` prints the sample; `scripts/agent_config_docs.py` rewrites
`agent/agent.sample.toml` and the README section, and tests fail while either
is stale), so the docs list exactly the keys the parser accepts.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import SITE_RULES, AgentSettings, Key, Site, keys_of

SAMPLE_SITE = "bakery-www"
README_BEGIN = "<!-- agent-config:begin -->"
README_END = "<!-- agent-config:end -->"
PLAN, REQUIRED, UNSET = "the plan", "required", "unset"
LEGEND = (
    "{plan}: the controller renders the CarePlan's value and the agent has no default; "
    "{required}: the controller sets it (where it puts files and secrets); {unset}: optional, the description "
    "says what unset means."
)


def _tables() -> Iterator[tuple[str, type, Key | None]]:
    """Each table of the file: its TOML header name, its settings class and the key holding it (None at the top)."""
    yield "agent", AgentSettings, None
    yield f"sites.{SAMPLE_SITE}", Site, None
    for k in keys_of(Site):
        if k.subtable is not None:
            yield f"sites.{SAMPLE_SITE}.{k.name}", k.subtable, k


def _header(name: str, holder: Key | None) -> str:
    return f"[[{name}]]" if holder is not None and holder.is_array else f"[{name}]"


def _doc(cls: type) -> str:
    return " ".join((cls.__doc__ or "").split())


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def source(k: Key) -> str:
    """Where a key's value comes from: the plan, required, unset or its default (as TOML)."""
    if k.setting.plan:
        return PLAN
    if k.required:
        return REQUIRED
    return UNSET if k.default is None else _toml(k.default)


def _what(k: Key) -> str:
    return k.setting.rule.what if k.setting.rule else ""


# -- the sample agent.toml --------------------------------------------------------------


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, 100, initial_indent="# ", subsequent_indent="# ")


def sample() -> str:
    """A valid agent.toml naming every key: each with an example value, keys with a default commented out."""
    lines = [
        "# carestack-agent's configuration (/etc/carestack/agent.toml): every key, each with what a value must",
        "# be and where it comes from. Generated from the agent's schema (carestack_agent/config.py);",
        "# `carestack-agent sample-config` prints it. On a server the controller renders this file from the plan.",
        *_comment(LEGEND.format(plan=PLAN, required=REQUIRED, unset=UNSET)),
    ]
    for name, cls, holder in _tables():
        lines += ["", *_comment(_doc(cls)), _header(name, holder)]
        for k in keys_of(cls):
            if k.subtable is not None:
                continue
            lines += _comment(f"{k.setting.doc} [{_what(k)}; {source(k)}]")
            defaulted = not k.required and k.default is not None
            value = k.default if defaulted else k.setting.example
            lines.append(f"{'# ' if defaulted else ''}{k.name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


# -- the README's config section --------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_section() -> str:
    """The Markdown between the README's markers: one table of keys per TOML table."""
    legend = LEGEND.format(plan=f"*{PLAN}*", required=f"*{REQUIRED}*", unset=f"*{UNSET}*")
    out = [
        f"Every key the agent accepts: what a value must be, its default and what it does. {legend} "
        "A valid sample naming every key: [`agent.sample.toml`](agent.sample.toml) (`carestack-agent sample-config`)."
    ]
    for name, cls, holder in _tables():
        header = _header(name.replace(SAMPLE_SITE, "<id>"), holder)
        out += ["", f"#### `{header}`", "", _doc(cls), "", "| key | value | default | meaning |", "|---|---|---|---|"]
        for k in keys_of(cls):
            if k.subtable is not None:
                continue
            given = source(k)
            default = f"*{given}*" if given in (PLAN, REQUIRED, UNSET) else f"`{given}`"
            out.append(f"| `{k.name}` | {_cell(_what(k))} | {_cell(default)} | {_cell(k.setting.doc)} |")
    out += ["", "Rules between a site's keys:", ""]
    out += [f"- `{'.'.join(('sites.<id>', rule.key)).rstrip('.')}`: {rule.message}" for rule in SITE_RULES]
    return "\n".join(out) + "\n"


def with_readme_section(readme: str) -> str:
    """The README text with its generated section replaced (the markers must be there, once each)."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"the README lacks the markers {README_BEGIN!r} ... {README_END!r}")
    return f"{head}{README_BEGIN}\n{readme_section()}{README_END}{tail}"
