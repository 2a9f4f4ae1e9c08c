"""`carestack monitors sync STACK_FILE [--dry-run]`: the client's monitors in Uptime Kuma.

Every input is explicit, first match wins:
- Kuma: --credentials FILE (JSON: url, username, password), else the
  environment (CARESTACK_KUMA_URL, CARESTACK_KUMA_USERNAME,
  CARESTACK_KUMA_PASSWORD); --kuma-url overrides the URL.
- Alerts: --alerting FILE (the agency's SMTP/SMS settings, `infra.alerting`).
- Site addresses: --site-address SITE_ID=URL, else each page's public URL.

Push tokens are never printed: --push-tokens-out FILE writes them (0600) as
{site id: {job: token}} for the agent's configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from infra.alerting import AlertingConfig, AlertingError, load_alerting
from infra.command import Verbs
from infra.kuma_client import KumaError, KumaLogin, connect, read_login
from infra.monitors import KumaPlanError, desired_state, sync
from infra.plan import build_plan
from infra.secret_file import write_secret
from infra.spec import ClientSpec, SpecError, load_stack

ENV_URL, ENV_USER, ENV_PASSWORD = "CARESTACK_KUMA_URL", "CARESTACK_KUMA_USERNAME", "CARESTACK_KUMA_PASSWORD"


class KumaUsageError(Exception):
    pass


def kuma_login(args: argparse.Namespace) -> KumaLogin:
    """Kuma from --credentials, else the CARESTACK_KUMA_* environment; --kuma-url overrides the URL."""
    if args.credentials:
        login = read_login(args.credentials)
    elif os.environ.get(ENV_URL) or os.environ.get(ENV_PASSWORD):
        missing = [name for name in (ENV_URL, ENV_USER, ENV_PASSWORD) if not os.environ.get(name)]
        if missing:
            raise KumaUsageError(f"set {', '.join(missing)} as well (or give --credentials FILE)")
        login = KumaLogin(os.environ[ENV_URL], os.environ[ENV_USER], os.environ[ENV_PASSWORD])
    else:
        raise KumaUsageError(
            f"where is Uptime Kuma? give --credentials FILE or set {ENV_URL}/{ENV_USER}/{ENV_PASSWORD}"
        )
    return KumaLogin(args.kuma_url, login.username, login.password) if args.kuma_url else login


def _alerting(args: argparse.Namespace) -> AlertingConfig:
    if args.alerting:
        return load_alerting(args.alerting)
    raise KumaUsageError("how do alerts go out? give --alerting FILE (the agency's SMTP/SMS settings)")


def _site_addresses(args: argparse.Namespace) -> dict[str, str]:
    addresses: dict[str, str] = {}
    for item in args.site_address:
        site_id, sep, url = item.partition("=")
        if not sep:
            raise KumaUsageError(
                f"--site-address: expected SITE_ID=URL such as studio-web=http://10.77.0.10, got {item!r}"
            )
        addresses[site_id] = url
    return addresses


def _sync(args: argparse.Namespace) -> int:
    try:
        spec = load_stack(args.stack)
        if not isinstance(spec, ClientSpec):
            raise KumaUsageError(f"{args.stack}: a platform stack has no monitors; give a client stack")
        plan = build_plan(spec)
        desired = desired_state(plan, _alerting(args), _site_addresses(args))
        with connect(kuma_login(args)) as session:
            result = sync(session, desired, dry_run=args.dry_run)
    except (SpecError, KumaUsageError, AlertingError, KumaPlanError, KumaError) as exc:
        print(f"carestack monitors sync: {exc}", file=sys.stderr)
        return 1
    if args.push_tokens_out:
        write_secret(args.push_tokens_out, json.dumps(result.push_tokens, indent=2, sort_keys=True) + "\n")
    return 0


def register(verbs: Verbs) -> None:
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
