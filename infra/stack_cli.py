"""`carestack validate` and `carestack plan`: a stack file checked, and the care plan it resolves to."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from infra.command import Verbs
from infra.plan import CarePlan, build_plan
from infra.plan_table import render
from infra.production_warnings import catalog_warnings, stack_warnings
from infra.spec import ClientSpec, SpecError, load_catalog, load_stack


def _validate(args: argparse.Namespace) -> int:
    """Errors fail; values that cannot be meant for production are warnings (the examples use them)."""
    try:
        catalog = load_catalog()
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in catalog_warnings(catalog):
        print(f"{catalog.source}: warning: {warning}", file=sys.stderr)
    failed = 0
    for path in args.stacks:
        try:
            spec = load_stack(path, catalog)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        kind = f"client on tier {spec.tier_name}" if isinstance(spec, ClientSpec) else "platform"
        warnings = stack_warnings(spec)
        for warning in warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        print(f"{path}: ok ({kind})" + (f", {len(warnings)} warning(s)" if warnings else ""))
    return 1 if failed else 0


def _plan(args: argparse.Namespace) -> int:
    try:
        spec = load_stack(args.stack)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not isinstance(spec, ClientSpec):
        print(f"{args.stack}: a platform stack has no care plan; give a client stack", file=sys.stderr)
        return 2
    plan = build_plan(spec)
    print(json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) if args.json else render(plan))
    if args.active:
        return _active_failover(plan)
    return 0


def _active_failover(plan: CarePlan) -> int:
    """The client's active failover from the leases in its bucket (the agency's AWS credentials)."""
    import boto3  # only this option reaches S3
    from botocore.exceptions import BotoCoreError, ClientError

    from infra.failover import active_failover
    from infra.failover_lease import LeaseError, LeaseStore

    try:
        active = active_failover(plan, LeaseStore(boto3.client("s3"), plan.storage.bucket).active())
    except (BotoCoreError, ClientError, LeaseError) as exc:
        print(f"{plan.storage.bucket}: cannot read the leases: {exc}", file=sys.stderr)
        return 1
    print(active.line() if active else f"{plan.client.id}: no active failover")
    return 0


def register(verbs: Verbs) -> None:
    validate = verbs.add_parser("validate", help="check stack files and report every error")
    validate.add_argument("stacks", nargs="+", type=Path, metavar="STACK_FILE")
    validate.set_defaults(run=_validate)

    plan = verbs.add_parser("plan", help="print the care plan a client stack resolves to")
    plan.add_argument("stack", type=Path, metavar="STACK_FILE")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument(
        "--active", action="store_true", help="also an active failover and its age, from the bucket's leases (AWS)"
    )
    plan.set_defaults(run=_plan)
