"""`carestack failover STACK_FILE [--site SITE] [--dry-run]` and `carestack failback STACK_FILE`.

In production the realm comes from the options (the same inputs as
`carestack configure`, plus the platform stack for the standby):

    carestack failover stacks/Pulumi.shop.yaml --platform stacks/Pulumi.platform.yaml \\
        --hosts hosts.json --s3-endpoint https://s3.eu-central-1.amazonaws.com \\
        --push-base-url https://status.agency.example/api/push

(secrets from CARESTACK_* variables as for `configure`; the agency's AWS
credentials from the usual AWS_* environment write the leases and evidence
and change Route 53). The installed `carestack` adds the lab: without
`--hosts` the running lab is the realm (`lab.realm`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from infra.ansible_vars import Realization
from infra.command import Verbs
from infra.configure import ConfigureError, parse_hosts, secrets_from_env
from infra.failover import FailoverError, Realm, failback, failover
from infra.failover_lease import LeaseError
from infra.failover_room import RoomError
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, PlatformSpec, SpecError, load_stack

KNOWN_ERRORS: tuple[type[Exception], ...] = (SpecError, FailoverError, ConfigureError, LeaseError, RoomError)
RealmFactory = Callable[[argparse.Namespace, CarePlan], Realm]


def production_realm(args: argparse.Namespace, plan: CarePlan) -> Realm:
    from infra.failover_realm import ProductionRealm

    missing = [
        f"--{name.replace('_', '-')}" for name in ("hosts", "platform", "s3_endpoint") if not getattr(args, name)
    ]
    if missing:
        raise FailoverError(f"production failover needs {', '.join(missing)} (see `carestack failover --help`)")
    platform = load_stack(args.platform)
    if not isinstance(platform, PlatformSpec):
        raise FailoverError(f"--platform {args.platform}: not a platform stack (carestack:role: platform)")
    hosts = parse_hosts(args.hosts)
    realization = Realization(
        hosts=hosts,
        s3_endpoint=args.s3_endpoint,
        push_base_url=args.push_base_url,
        standby=platform.stack.standby.name,  # the client's restore drills are placed there again after a failback
    )
    return ProductionRealm(
        platform, hosts, realization, secrets_from_env(os.environ), confirm=args.confirm, ssh_key=args.ssh_key
    )


def _plan(stack: Path) -> CarePlan:
    spec = load_stack(stack)
    if not isinstance(spec, ClientSpec):
        raise FailoverError(f"{stack}: a platform stack has no sites to fail over; give a client stack")
    return build_plan(spec)


def _run(args: argparse.Namespace, fallback: RealmFactory | None, errors: tuple[type[Exception], ...]) -> int:
    try:
        plan = _plan(args.stack)
        factory = production_realm if args.hosts or fallback is None else fallback
        realm = factory(args, plan)
        out = sys.stderr if args.json else sys.stdout
        if args.verb == "failover":
            outcome = failover(realm, plan, args.site, out=out, dry_run=args.dry_run)
        else:
            outcome = failback(realm, plan, out=out, dry_run=args.dry_run)
    except (*KNOWN_ERRORS, *errors) as exc:
        print(f"carestack {args.verb}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    return 0


def register(verbs: Verbs, fallback: RealmFactory | None = None, errors: tuple[type[Exception], ...] = ()) -> None:
    """The two verbs; `fallback` is the realm used without --hosts (the installed command's lab), `errors`
    what its failures raise."""
    for verb, text in (
        ("failover", "restore a client's sites onto the standby, switch traffic, fence the old server"),
        ("failback", "bring a failed-over client back onto its own server with the data written meanwhile"),
    ):
        parser = verbs.add_parser(
            verb, help=text, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        parser.add_argument("stack", type=Path, metavar="STACK_FILE")
        if verb == "failover":
            parser.add_argument(
                "--site", action="append", default=[], metavar="SITE", help="only this site (repeatable)"
            )
        parser.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
        parser.add_argument("--confirm", action="store_true", help="manual traffic switch: the records are changed")
        parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
        parser.add_argument("--platform", type=Path, metavar="FILE", help="production: the platform stack file")
        parser.add_argument("--hosts", metavar="HOSTS_JSON", help="production: the standby and the client's server")
        parser.add_argument("--s3-endpoint", metavar="URL", help="production: the S3 endpoint the servers reach")
        parser.add_argument("--push-base-url", metavar="URL", help="production: Kuma's push base URL")
        parser.add_argument("--ssh-key", type=Path, metavar="FILE", help="production: key for reaching the servers")
        parser.set_defaults(run=lambda args: _run(args, fallback, errors))
