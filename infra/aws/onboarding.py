"""The onboarding steps `pulumi up` runs once the client's server and bucket exist.

1. Monitors: `infra.kuma_provider.ClientMonitors` (a dynamic provider) syncs the
   client's Uptime Kuma monitors from the plan and returns the push tokens.
2. Ansible: `carestack configure` (the same entry point the lab uses) configures
   the client's server from the plan, through a `pulumi_command` local command.

Both get their inputs from the CarePlan only. Secrets reach Ansible only through
the command's environment (never its argv, which Pulumi stores and shows).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

import pulumi
from pulumi_command import local

from infra.aws.bucket import BackupBucket
from infra.aws.hosting import Hosting
from infra.aws.server import inventory_entry
from infra.converge_sources import converge_fingerprint
from infra.kuma_provider import ClientMonitors
from infra.plan import CarePlan
from infra.spec import STACKS_DIR

PROJECT_ROOT = STACKS_DIR.parent
# Relative to PROJECT_ROOT, so the command (stored in the state) is the same on
# every operator's machine. Pulumi.yaml puts the program's virtualenv there.
CARESTACK = ".venv/bin/carestack"

RESTIC_PASSWORD_ENV = "CARESTACK_RESTIC_PASSWORD"
S3_ACCESS_KEY_ID_ENV = "CARESTACK_S3_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY_ENV = "CARESTACK_S3_SECRET_ACCESS_KEY"
PUSH_TOKENS_ENV = "CARESTACK_PUSH_TOKENS"


def plan_json(plan: CarePlan) -> str:
    """The plan as canonical JSON: what the monitors receive and what the Ansible trigger hashes."""
    return json.dumps(plan.to_dict(), sort_keys=True, ensure_ascii=False)


def plan_digest(plan: CarePlan) -> str:
    return hashlib.sha256(plan_json(plan).encode()).hexdigest()


def hosts_inventory(server: str, address: str) -> dict[str, dict[str, str]]:
    """HOSTS_JSON of `carestack configure`: server name -> how Ansible reaches it."""
    return {server: inventory_entry(address)}


def stack_file_argument(stack_file: Path) -> str:
    """The stack file as the command names it: relative to the project when inside it."""
    path = stack_file.resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def configure_command(stack_file: Path, hosts: dict[str, Any], s3_endpoint: str, push_base_url: str) -> str:
    """The shell command that runs Ansible for one client. No secret goes in here."""
    argv = [
        CARESTACK,
        "configure",
        stack_file_argument(stack_file),
        "--hosts",
        json.dumps(hosts, sort_keys=True),
        "--s3-endpoint",
        s3_endpoint,
        "--push-base-url",
        push_base_url,
    ]
    return shlex.join(argv)


def pending_site_addresses(plan: CarePlan, address: str) -> dict[str, str]:
    """Base URLs of the sites whose DNS does not point at their server yet: that server, over HTTP
    (no CA signs a certificate for a name that points elsewhere)."""
    return {site.id: f"http://{address}" for site in plan.sites if site.dns == "pending"}


class Onboarding(pulumi.ComponentResource):
    """The client's monitors, then Ansible on its server with the bucket's credentials."""

    def __init__(
        self,
        name: str,
        plan: CarePlan,
        stack_file: Path,
        hosting: Hosting,
        bucket: BackupBucket,
        s3_endpoint: str,
        push_base_url: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("carestack:aws:Onboarding", name, None, opts)
        document = plan_json(plan)
        self.monitors = ClientMonitors(
            f"{name}-monitors",
            plan_json=document,
            # A live site is checked at its public URL (`check.url`, through DNS and TLS, as
            # visitors see it); a site whose DNS is pending on its server's address.
            site_addresses=hosting.address.apply(lambda address: pending_site_addresses(plan, address)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hosting]),
        )
        # The provider marks the tokens secret; say so here too, whatever it does.
        # A stack output too, so a by-hand `carestack configure` can hand the same tokens on.
        self.push_tokens: pulumi.Output[dict[str, dict[str, str]]] = pulumi.Output.secret(self.monitors.push_tokens)
        push_tokens: pulumi.Output[str] = self.push_tokens.apply(lambda t: json.dumps(t, sort_keys=True))
        self.hosts: pulumi.Output[dict[str, dict[str, str]]] = hosting.address.apply(
            lambda address: hosts_inventory(hosting.server, address)
        )
        self.ansible = local.Command(
            f"{name}-ansible",
            create=self.hosts.apply(lambda hosts: configure_command(stack_file, hosts, s3_endpoint, push_base_url)),
            dir=str(PROJECT_ROOT),
            environment={
                RESTIC_PASSWORD_ENV: bucket.restic_password,
                S3_ACCESS_KEY_ID_ENV: bucket.access_key_id,
                S3_SECRET_ACCESS_KEY_ENV: bucket.secret_access_key,
                PUSH_TOKENS_ENV: push_tokens,
            },
            # A changed plan, a new server or bucket, or changed roles or agent (an upgraded
            # carestack) runs Ansible again.
            triggers=[plan_digest(plan), hosting.instance_id, bucket.name, converge_fingerprint()],
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[hosting, bucket, self.monitors]),
        )
        self.register_outputs({"hosts": self.hosts})
