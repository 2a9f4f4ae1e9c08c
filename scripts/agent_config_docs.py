#!/usr/bin/env python3
"""Rewrite the agent's config docs from its schema: agent/agent.sample.toml and the README's config section.

Run after changing a key in agent/carestack_agent/config.py (tests/agent/test_config.py
fails while either file is stale); `--check` only reports whether they are current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[1] / "agent"
sys.path.insert(0, str(AGENT))

from carestack_agent import config_docs  # noqa: E402

SAMPLE = AGENT / "agent.sample.toml"
README = AGENT / "README.md"


def wanted() -> dict[Path, str]:
    return {SAMPLE: config_docs.sample(), README: config_docs.with_readme_section(README.read_text())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale, change nothing")
    args = parser.parse_args()
    stale = [path for path, text in wanted().items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path}: stale, run scripts/agent_config_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in wanted().items():
        if path in stale:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
