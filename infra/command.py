"""What a command module of `carestack` provides: `register(verbs)`, which adds its subparsers.

Each subparser sets `run`, a function of the parsed arguments that returns the
exit code. `infra.cli` lists the production command modules; `lab.cli` adds its own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Register: TypeAlias = Callable[[Verbs], None]
Command: TypeAlias = Callable[[argparse.Namespace], int]
