"""`carestack monitors sync STACK_FILE [--dry-run]`: the client's monitors in Uptime Kuma.

Where Kuma is and how alerts go out, first match wins:
- Kuma: --credentials FILE (JSON: url, username, password), else the
  environment (CARESTACK_KUMA_URL, CARESTACK_KUMA_USERNAME,
  CARESTACK_KUMA_PASSWORD), else the running lab; --kuma-url overrides the URL.
- Alerts: --alerting FILE (the agency's SMTP/SMS settings, `infra.alerting`),
  else the lab's alert receiver.
- Site addresses: --site-address SITE_ID=URL, else (in the lab) the address of
  the lab server the client's sites run on; otherwise each page's public URL.

Push tokens are never printed: --push-tokens-out FILE writes them (0600) as
{site id: {job: token}} for the agent's configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.alerting import AlertingConfig, AlertingError, lab_alerting, load_alerting
from infra.kuma_client import KumaError, KumaLogin, connect
from infra.lab.errors import LabError
from infra.lab.kuma_server import read_credentials
from infra.lab.state import LabState, write_secret
from infra.monitors import KumaPlanError, desired_state, sync
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, SpecError, load_stack

ENV_URL, ENV_USER, ENV_PASSWORD = "CARESTACK_KUMA_URL", "CARESTACK_KUMA_USERNAME", "CARESTACK_KUMA_PASSWORD"


class _UsageError(Exception):
    pass


def _lab() -> LabState | None:
    try:
        return LabState.load()
    except LabError:
        return None


def _login(args: argparse.Namespace, lab: LabState | None) -> KumaLogin:
    if args.credentials:
        creds = read_credentials(args.credentials)
        login = KumaLogin(creds.url, creds.username, creds.password)
    elif os.environ.get(ENV_URL) or os.environ.get(ENV_PASSWORD):
        missing = [name for name in (ENV_URL, ENV_USER, ENV_PASSWORD) if not os.environ.get(name)]
        if missing:
            raise _UsageError(f"set {', '.join(missing)} as well (or give --credentials FILE)")
        login = KumaLogin(os.environ[ENV_URL], os.environ[ENV_USER], os.environ[ENV_PASSWORD])
    elif lab is not None and lab.kuma_credentials_file is not None:
        creds = read_credentials(lab.kuma_credentials_file)
        login = KumaLogin(lab.kuma_url or creds.url, creds.username, creds.password)
    else:
        raise _UsageError(
            f"where is Uptime Kuma? give --credentials FILE, set {ENV_URL}/{ENV_USER}/{ENV_PASSWORD}, "
            "or start the lab (carestack lab up)"
        )
    return KumaLogin(args.kuma_url, login.username, login.password) if args.kuma_url else login


def _alerting(args: argparse.Namespace, lab: LabState | None) -> AlertingConfig:
    if args.alerting:
        return load_alerting(args.alerting)
    if lab is not None and lab.alert_url:
        return lab_alerting(lab.alert_url)
    raise _UsageError("how do alerts go out? give --alerting FILE (the agency's SMTP/SMS settings) or start the lab")


def _site_addresses(args: argparse.Namespace, plan: CarePlan, lab: LabState | None) -> dict[str, str]:
    addresses: dict[str, str] = {}
    if lab is not None and not args.alerting:  # lab mode: the sites answer on their lab server
        try:
            server = lab.host(lab.client(plan.client.id).server)
            addresses = {site.id: f"http://{server.address}" for site in plan.sites}
        except KeyError:
            pass  # the client is not in the lab: its public URLs
    for item in args.site_address:
        site_id, sep, url = item.partition("=")
        if not sep:
            raise _UsageError(
                f"--site-address: expected SITE_ID=URL such as studio-web=http://10.77.0.10, got {item!r}"
            )
        addresses[site_id] = url
    return addresses


def _sync(args: argparse.Namespace) -> int:
    try:
        spec = load_stack(args.stack)
        if not isinstance(spec, ClientSpec):
            raise _UsageError(f"{args.stack}: a platform stack has no monitors; give a client stack")
        plan = build_plan(spec)
        lab = _lab() if not (args.credentials and args.alerting) else None
        desired = desired_state(plan, _alerting(args, lab), _site_addresses(args, plan, lab))
        with connect(_login(args, lab)) as session:
            result = sync(session, desired, dry_run=args.dry_run)
    except (SpecError, _UsageError, AlertingError, KumaPlanError, KumaError, LabError) as exc:
        print(f"carestack monitors sync: {exc}", file=sys.stderr)
        return 1
    if args.push_tokens_out:
        write_secret(args.push_tokens_out, json.dumps(result.push_tokens, indent=2, sort_keys=True) + "\n")
    return 0


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    monitors = verbs.add_parser("monitors", help="the clients' monitors in Uptime Kuma")
    actions = monitors.add_subparsers(dest="action", required=True)
    sync_cmd = actions.add_parser("sync", help="reconcile Kuma with a client's care plan and print the changes")
    sync_cmd.add_argument("stack", type=Path, metavar="STACK_FILE")
    sync_cmd.add_argument("--dry-run", action="store_true", help="print the changes, change nothing")
    sync_cmd.add_argument("--kuma-url", help="Kuma's URL (overrides the credentials' URL)")
    sync_cmd.add_argument("--credentials", type=Path, metavar="FILE", help="JSON with url, username, password")
    sync_cmd.add_argument("--alerting", type=Path, metavar="FILE", help="the agency's alerting settings (YAML)")
    sync_cmd.add_argument(
        "--site-address",
        action="append",
        default=[],
        metavar="SITE_ID=URL",
        help="check a site at this address with its domain as Host header (repeatable)",
    )
    sync_cmd.add_argument("--push-tokens-out", type=Path, metavar="FILE", help="write the push tokens here (0600)")
    sync_cmd.set_defaults(run=_sync)
