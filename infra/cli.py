"""The `carestack` command's production verbs: argparse only, one command module per verb group.

To add a command: write a module with `register(verbs)` (`infra.command`) and
list its `register` in `COMMANDS`. The installed `carestack` is
`lab.cli:main`: these commands plus the lab's (`carestack lab ...`); this module
alone (`python -m infra.cli`) never loads the lab.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from infra import configure, failover_cli, import_cli, monitors_cli, offboard_cli, report_cli, sla_doc_cli, stack_cli
from infra.command import Command, Register

COMMANDS: tuple[Register, ...] = (
    stack_cli.register,
    configure.register,
    import_cli.register,
    monitors_cli.register,
    sla_doc_cli.register,
    failover_cli.register,
    offboard_cli.register,
    report_cli.register,
)


def build_parser(commands: Sequence[Register] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="carestack", description="Website care stacks from SLA tiers.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for register in commands:
        register(verbs)
    return parser


def main(argv: list[str] | None = None, commands: Sequence[Register] = COMMANDS) -> int:
    args = build_parser(commands).parse_args(argv)
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
