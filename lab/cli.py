"""`carestack lab up | status | fleet | failover | stop | start | down | install`, and the `carestack` command.

`main` is the console script: infra's production commands (`infra.cli.COMMANDS`)
plus `lab`, registered the same way as every other command module. The lab's
modules (beyond its config) are imported when a lab verb runs, so infra's verbs
do not load them and run without the `lab` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from functools import partial
from pathlib import Path

from infra import cli as infra_cli
from infra import failover_cli, offboard_cli
from infra.command import Register, Verbs
from infra.failover import FailoverError, Realm
from infra.offboard import OffboardError, OffboardRealm
from infra.plan import CarePlan
from lab.config import STATE_DIR_ENV, LabConfig, load_config
from lab.errors import LabError
from lab.kuma_sources import SOURCES_ENV, SUPPORTED_VERSIONS


def _up(args: argparse.Namespace) -> int:
    config = load_config(
        subnet=args.subnet,
        bridge=args.bridge,
        apt_port=args.apt_port,
        s3_port=args.s3_port,
        kuma_port=args.kuma_port,
        alert_port=args.alert_port,
        acme_port=args.acme_port,
        image_cache=str(args.image_dir.resolve()) if args.image_dir else None,
        server_memory_mb=args.server_memory_mb,
        kuma_version=args.kuma_version,
    )
    from lab.services import check_kuma_available
    from lab.up import lab_up

    check_kuma_available(config)  # a missing source tarball is told before anything changes

    lab_up(config, args.stacks)
    return 0


def _status(args: argparse.Namespace) -> int:
    from lab.state import LabState
    from lab.status import render_summary, summary

    config = load_config()
    state = LabState.load(config.state_dir)
    report = summary(state, config)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_summary(report))
    return 0 if all(s.running and s.ssh for s in report.servers) else 1


def _failover(args: argparse.Namespace) -> int:
    from lab.failover import failover

    report = failover(load_config(), args.client, out=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    return 0


def _power(args: argparse.Namespace) -> int:
    from lab import servers

    config = load_config()
    if args.lab_verb == "stop":
        print(f"{args.server}: {'stopped' if servers.power_off(config, args.server) else 'was not running'}")
    else:
        print(f"{args.server}: answers ssh after {servers.power_on(config, args.server):.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    from lab.down import lab_down

    lab_down(load_config(), keep_image=args.keep_image)
    return 0


def _install(args: argparse.Namespace) -> int:
    from lab import kuma_server

    print(f"Uptime Kuma: {kuma_server.ensure_installed()}")
    return 0


def _fleet(args: argparse.Namespace) -> int:
    from lab.fleet import write_fleet

    try:
        summary = write_fleet(args.out, args.servers, args.sites)
    except LabError as exc:
        print(f"carestack lab fleet: error: {exc}", file=sys.stderr)
        return 1
    tiers = ", ".join(f"{count} {tier}" for tier, count in summary.clients_per_tier.items())
    print(
        f"{args.out}: {len(summary.files)} stack files: {summary.servers} servers, {summary.sites} sites, "
        f"clients {tiers}, {summary.monitors} monitors\n"
        f"bring it up with: carestack lab up {args.out}/Pulumi.*.yaml"
    )
    return 0


def _guarded(verb: argparse.Namespace) -> int:
    from lab.system import require_root

    try:
        require_root()  # first: without root even reading the lab's state may fail obscurely
        result: int = verb.lab_run(verb)
    except LabError as exc:
        print(f"carestack lab {verb.lab_verb}: error: {exc}", file=sys.stderr)
        return 1
    return result


def register(verbs: Verbs) -> None:
    lab = verbs.add_parser(
        "lab",
        help="the whole care stack on this machine (servers, S3, Kuma)",
        description=f"State directory: /var/lib/carestack-lab, or ${STATE_DIR_ENV}.",
    )
    lab_verbs = lab.add_subparsers(dest="lab_verb", required=True)

    defaults = {f.name: f.default for f in fields(LabConfig)}
    up = lab_verbs.add_parser("up", help="build or repair the lab and onboard the clients (idempotent)")
    up.add_argument(
        "stacks", nargs="*", type=Path, metavar="STACK_FILE", help="stack files (default: the example stacks)"
    )
    up.add_argument("--subnet", help=f"the lab's IPv4 subnet (default {defaults['subnet']})")
    up.add_argument("--bridge", help=f"the lab bridge's name (default {defaults['bridge']})")
    for name in ("apt", "s3", "kuma", "alert", "acme"):
        default = defaults[f"{name}_port"]
        up.add_argument(f"--{name}-port", type=int, help=f"port of the {name} service (default {default})")
    up.add_argument(
        "--server-memory-mb",
        type=int,
        help=f"memory each server sizes PHP and MariaDB for (default {defaults['server_memory_mb']})",
    )
    up.add_argument(
        "--kuma-version",
        choices=SUPPORTED_VERSIONS,
        help=f"the Uptime Kuma to run (default {defaults['kuma_version']}, from npm; the others from their "
        f"source tarball in ${SOURCES_ENV})",
    )
    up.add_argument("--image-dir", type=Path, help="where the base image is cached (default: in the state directory)")
    up.set_defaults(run=_guarded, lab_run=_up)

    install = lab_verbs.add_parser("install", help="install what the lab needs from package registries (Kuma)")
    install.set_defaults(run=_guarded, lab_run=_install)

    status = lab_verbs.add_parser("status", help="what runs and answers; changes nothing")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_guarded, lab_run=_status)

    fail = lab_verbs.add_parser(
        "failover", help="restore a client's sites onto the standby and check its pages (the standby restore drill)"
    )
    fail.add_argument("client", metavar="CLIENT", help="a client id of the lab (standard and premium tiers)")
    fail.add_argument("--json", action="store_true", help="print the report as JSON")
    fail.set_defaults(run=_guarded, lab_run=_failover)

    fleet = lab_verbs.add_parser(
        "fleet", help="write an agency-sized set of stack files (every tier, shared and dedicated) for lab up"
    )
    fleet.add_argument("--servers", type=int, default=20, help="servers, the standby included (default 20)")
    fleet.add_argument("--sites", type=int, default=60, help="sites over all clients (default 60)")
    fleet.add_argument(
        "--out", type=Path, default=Path("fleet"), help="directory for the stack files (default ./fleet)"
    )
    fleet.set_defaults(run=_fleet)

    for verb, text in (("stop", "stop one server entirely, as when it is lost"), ("start", "boot a stopped server")):
        power = lab_verbs.add_parser(verb, help=text)
        power.add_argument("server", metavar="SERVER", help="a lab server, e.g. shop-1")
        power.set_defaults(run=_guarded, lab_run=_power)

    down = lab_verbs.add_parser("down", help="stop everything and remove what the lab created")
    down.add_argument("--keep-image", action="store_true", help="keep the cached base image and package cache")
    down.set_defaults(run=_guarded, lab_run=_down)


def _lab_realm(args: argparse.Namespace, plan: CarePlan) -> Realm:
    """`carestack failover|failback` without production options: the running lab is the realm."""
    from lab.realm import LabRealm
    from lab.state import LabState
    from lab.system import require_root

    require_root()
    config = load_config()
    try:
        state = LabState.load(config.state_dir)
        state.client(plan.client.id)
    except (LabError, KeyError) as exc:
        raise FailoverError(f"no production options (--hosts ...) and no lab to fail over in: {exc}") from None
    return LabRealm(config, state)


def _lab_offboard_realm(args: argparse.Namespace, plan: CarePlan) -> OffboardRealm:
    """`carestack offboard` without production options: the running lab is the realm."""
    from lab.realm import LabRealm
    from lab.state import LabState
    from lab.system import require_root

    require_root()
    config = load_config()
    try:
        state = LabState.load(config.state_dir)
    except LabError as exc:
        raise OffboardError(f"no production options (--hosts ...) and no lab to offboard from: {exc}") from None
    # Not the client's entry: a rerun after a complete offboard finds it gone from the lab, as it should.
    if plan.hosting.server not in {host.name for host in state.hosts}:
        raise OffboardError(f"no production options (--hosts ...), and the lab has no server {plan.hosting.server}")
    return LabRealm(config, state)


def _commands() -> tuple[Register, ...]:
    lab_backed = (failover_cli.register, offboard_cli.register)
    production = tuple(c for c in infra_cli.COMMANDS if c not in lab_backed)
    return (
        *production,
        partial(failover_cli.register, fallback=_lab_realm, errors=(LabError,)),
        partial(offboard_cli.register, fallback=_lab_offboard_realm, errors=(LabError,)),
        register,
    )


def main(argv: list[str] | None = None) -> int:
    return infra_cli.main(argv, _commands())


if __name__ == "__main__":
    sys.exit(main())
