"""Pulumi entry point: the stack's file in stacks/ decides what is built (see infra/program.py)."""

import pulumi

from infra.program import run, stack_file

run(stack_file(pulumi.get_stack()))
