"""The agent wheel the play copies to the servers: built offline, the same bytes from the same sources."""

from __future__ import annotations

import zipfile
from pathlib import Path

from infra.agent_wheel import build_agent_wheel


def test_the_same_sources_build_the_same_wheel_with_the_agents_command(tmp_path: Path) -> None:
    first = build_agent_wheel(tmp_path / "one")
    second = build_agent_wheel(tmp_path / "two")
    assert first.read_bytes() == second.read_bytes()
    assert build_agent_wheel(tmp_path / "one") == first  # cached per content of the sources
    with zipfile.ZipFile(first) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "carestack-agent = carestack_agent.cli:main" in wheel.read(entry_points).decode()
        assert "carestack_agent/config.py" in names
