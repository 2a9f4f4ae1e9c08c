"""The agent as a wheel, built on the controller (the servers never reach a package index).

`pip wheel --no-deps --no-build-isolation` of agent/, from a clean copy so the
checkout gets no build directories. Wheels are zip files with timestamps: a
fixed SOURCE_DATE_EPOCH makes the same sources the same bytes, so a converge
that finds the wheel unchanged copies and reinstalls nothing. Built wheels are
cached per content of the sources.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from fnmatch import fnmatch
from pathlib import Path

AGENT_DIR = Path(__file__).resolve().parent.parent / "agent"
WHEEL_EPOCH = "315532800"
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "carestack" / "agent-wheels"
# What a local build or test run leaves in agent/: neither copied nor hashed.
BUILD_LEFTOVERS = ("build", "dist", "*.egg-info", "__pycache__", "*.pyc")


class WheelError(Exception):
    pass


def build_agent_wheel(cache: Path = WHEEL_CACHE) -> Path:
    """`pip wheel` of agent/, built once per content of its sources (a clean copy keeps the checkout clean)."""
    built = cache / _agent_digest()
    wheels = sorted(built.glob("carestack_agent-*.whl"))
    if wheels:
        return wheels[0]
    with tempfile.TemporaryDirectory(prefix="carestack-agent-build-") as tmp:
        source = Path(tmp) / "agent"
        shutil.copytree(AGENT_DIR, source, ignore=shutil.ignore_patterns(*BUILD_LEFTOVERS))
        out = Path(tmp) / "wheel"
        cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        cmd += ["-w", str(out), str(source)]
        env = {**os.environ, "SOURCE_DATE_EPOCH": WHEEL_EPOCH}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wheels = sorted(out.glob("carestack_agent-*.whl"))
        if done.returncode or not wheels:
            raise WheelError(f"building the agent wheel failed:\n{done.stderr.strip()[-2000:]}")
        built.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheels[0], built / wheels[0].name))


def _agent_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(AGENT_DIR.rglob("*")):
        relative = path.relative_to(AGENT_DIR)
        leftover = any(fnmatch(part, pattern) for part in relative.parts for pattern in BUILD_LEFTOVERS)
        if path.is_file() and not leftover:
            digest.update(f"{relative}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]
