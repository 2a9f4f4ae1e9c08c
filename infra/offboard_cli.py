"""`carestack offboard STACK_FILE --out DIR [--dry-run] [--json]`: a leaving client's final backup and hand-over.

In production the realm comes from the options:

    carestack offboard stacks/Pulumi.bakery.yaml --out handover-bakery \\
        --hosts hosts.json --ssh-key ~/.ssh/agency-admin [--platform stacks/Pulumi.platform.yaml]

HOSTS_JSON as for `carestack configure` (with the standby where the client's
restore drills run, and then --platform); Kuma's credentials as for `carestack
monitors sync` (--credentials FILE or the CARESTACK_KUMA_* environment); the
agency's AWS credentials from the usual AWS_* environment read the failover
leases in the client's bucket. The installed `carestack` adds the lab: without
--hosts the running lab is the realm. What it does, step by step:
docs/offboarding.md.

Exit codes: 0 offboarded; 2 refused or failed (the message says what was done).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from infra.command import Verbs
from infra.configure import ConfigureError, parse_hosts
from infra.kuma_client import KumaError
from infra.monitors_cli import KumaUsageError, kuma_login
from infra.offboard import OffboardError, OffboardRealm, offboard
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, PlatformSpec, SpecError, load_stack

KNOWN_ERRORS: tuple[type[Exception], ...] = (SpecError, OffboardError, ConfigureError, KumaUsageError, KumaError)
RealmFactory = Callable[[argparse.Namespace, CarePlan], OffboardRealm]


def production_realm(args: argparse.Namespace, plan: CarePlan) -> OffboardRealm:
    from infra.offboard_realm import ProductionOffboardRealm

    platform: PlatformSpec | None = None
    if args.platform:
        loaded = load_stack(args.platform)
        if not isinstance(loaded, PlatformSpec):
            raise OffboardError(f"--platform {args.platform}: not a platform stack (carestack:role: platform)")
        platform = loaded
    return ProductionOffboardRealm(parse_hosts(args.hosts), kuma_login(args), platform=platform, ssh_key=args.ssh_key)


def _plan(stack: Path) -> CarePlan:
    spec = load_stack(stack)
    if not isinstance(spec, ClientSpec):
        raise OffboardError(f"{stack}: a platform stack has no sites to offboard; give a client stack")
    return build_plan(spec)


def _run(args: argparse.Namespace, fallback: RealmFactory | None, errors: tuple[type[Exception], ...]) -> int:
    try:
        plan = _plan(args.stack)
        factory = production_realm if args.hosts or fallback is None else fallback
        if factory is production_realm and not args.hosts:
            raise OffboardError("--hosts: required (the client's server, and the standby where its drills run)")
        realm = factory(args, plan)
        out = sys.stderr if args.json else sys.stdout
        outcome = offboard(realm, plan, args.out, out=out, dry_run=args.dry_run)
    except (*KNOWN_ERRORS, *errors) as exc:
        print(f"carestack offboard: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    return 0


def register(verbs: Verbs, fallback: RealmFactory | None = None, errors: tuple[type[Exception], ...] = ()) -> None:
    """`fallback` is the realm used without --hosts (the installed command's lab), `errors` what it raises."""
    parser = verbs.add_parser(
        "offboard",
        help="a leaving client: final backup, hand-over archive, sites and monitors removed, bucket kept",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", type=Path, metavar="STACK_FILE")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the hand-over goes (made 0700)")
    parser.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--hosts", metavar="HOSTS_JSON", help="production: the client's server (and the standby)")
    parser.add_argument("--ssh-key", type=Path, metavar="FILE", help="production: key for reaching the servers")
    parser.add_argument("--platform", type=Path, metavar="FILE", help="production: the platform stack (drills)")
    parser.add_argument("--credentials", type=Path, metavar="FILE", help="production: Kuma's credentials (JSON)")
    parser.add_argument("--kuma-url", metavar="URL", help="production: Kuma's URL (overrides the credentials')")
    parser.set_defaults(run=lambda args: _run(args, fallback, errors))
