"""The controller code a converged server is made of, and one fingerprint of it.

A change to the roles, the agent or the code that renders their inputs means
every server must be converged again. Both realizations ask the same question:
`pulumi up` puts the fingerprint in the Ansible command's triggers (upgrading
carestack upgrades the fleet), and the lab records it per client.

Only file contents and paths relative to the project count, so the same
checkout gives the same fingerprint on every operator's machine; build and
tool leftovers (caches, wheels, hidden tool directories) do not count.
"""

from __future__ import annotations

import hashlib
from fnmatch import fnmatch
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Relative to the project root: the roles, the agent, and what renders their inputs.
CONVERGE_SOURCES = (
    "ansible",
    "agent",
    "infra/configure.py",
    "infra/ansible_vars.py",
    "infra/agent_config.py",
    "infra/agent_wheel.py",
)
# Leftovers of builds, tests and linters: never part of what a server receives.
# (Named one by one: a role may well ship a hidden file such as .htaccess.)
IGNORED = (
    "__pycache__",
    "build",
    "dist",
    "*.egg-info",
    "*.pyc",
    "*.retry",
    ".ansible",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
)


def _counted(relative: Path) -> bool:
    return not any(fnmatch(part, pattern) for part in relative.parts for pattern in IGNORED)


def converge_fingerprint(root: Path | None = None) -> str:
    """sha256 over the converge sources under `root` (the project by default): paths and contents."""
    base = root or PROJECT_ROOT
    digest = hashlib.sha256()
    for source in CONVERGE_SOURCES:
        top = base / source
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(base)
            if _counted(relative):
                digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
