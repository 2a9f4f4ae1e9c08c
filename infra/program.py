"""The Pulumi program: one stack file in, AWS resources and stack outputs out.

`__main__.py` calls `run(stack_file(pulumi.get_stack()))`. Everything that can be
wrong with the input (the stack's spec, the deployment settings in Pulumi config)
is checked before the first resource is declared, so a bad stack changes nothing.

Deployment settings (Pulumi config, not part of the care plan):
  aws:region               every client's bucket and servers live there
  carestack:ssh_public_key the agency's admin key, for servers this stack creates
                           (dedicated tier, platform); Ansible connects with it
  carestack:kuma_url       the agency's Uptime Kuma (clients); the agent pushes to
                           <kuma_url>/api/push/<token>; the monitors provider reads it with
                           carestack:kuma_username and the secret carestack:kuma_password
  carestack:kuma_alerting_file  the agency's alerting file (`infra.alerting`): its on-call (job
                           heartbeats and site alerts go there) and, when the tier mails or
                           texts a contact, SMTP / SMS; the environment variables it names
                           must be set where `pulumi up` runs

Every one of them is checked here, before the first resource: a stack that
lacks one fails with its name instead of half-way, after the bucket and the
server exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.alerting import AlertingError, load_alerting
from infra.aws.bucket import BackupBucket
from infra.aws.hosting import (
    SHARED_HOSTS_OUTPUT,
    STANDBY_OUTPUT,
    DedicatedHost,
    Hosting,
    SharedHostPool,
    SharedPlacement,
)
from infra.aws.onboarding import Onboarding
from infra.monitors.desired import routed_notifications
from infra.plan import CarePlan, build_plan
from infra.spec import NAMESPACE, STACKS_DIR, ClientSpec, PlatformSpec, SpecError, StackSpec, load_stack

KUMA_PUSH_PATH = "/api/push"
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( \S.*)?$")


@dataclass(frozen=True)
class Deployment:
    """Where and with what this stack is deployed; validated before anything is declared."""

    region: str
    ssh_public_key: str | None
    kuma_url: str | None

    @property
    def admin_key(self) -> str:
        return _checked(self.ssh_public_key, "ssh_public_key")

    @property
    def push_base_url(self) -> str:
        """Where the agent sends heartbeats: GET <this>/<token> (Uptime Kuma's push API)."""
        return _checked(self.kuma_url, "kuma_url").rstrip("/") + KUMA_PUSH_PATH

    @property
    def s3_endpoint(self) -> str:
        return f"https://s3.{self.region}.amazonaws.com"

    def repository(self, bucket: str) -> str:
        """restic's repository base for the bucket (each site adds /<site id>)."""
        return f"s3:s3.{self.region}.amazonaws.com/{bucket}"


def _checked(value: str | None, key: str) -> str:
    # read_deployment() refuses a stack that needs the setting and lacks it.
    if value is None:
        raise RuntimeError(f"{NAMESPACE}:{key} is needed here but was not required by read_deployment()")
    return value


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def read_deployment(spec: StackSpec) -> Deployment:
    """The deployment settings this stack needs, from Pulumi config; every problem at once."""
    config = pulumi.Config(NAMESPACE)
    region = aws.config.region
    ssh_public_key = config.get("ssh_public_key")
    kuma_url = config.get("kuma_url")
    problems: list[str] = []
    if not region:
        problems.append("aws:region: is required (pulumi config set aws:region eu-central-1)")
    needs_server = isinstance(spec, PlatformSpec) or spec.tier.hosting.mode == "dedicated"
    if needs_server and not ssh_public_key:
        problems.append(
            f"{NAMESPACE}:ssh_public_key: is required to create servers "
            f'(pulumi config set {NAMESPACE}:ssh_public_key "$(cat ~/.ssh/id_ed25519.pub)")'
        )
    elif ssh_public_key and not _SSH_KEY.match(ssh_public_key.strip()):
        problems.append(f"{NAMESPACE}:ssh_public_key: expected an OpenSSH public key such as 'ssh-ed25519 AAAA...'")
    if isinstance(spec, ClientSpec):
        if not kuma_url:
            problems.append(f"{NAMESPACE}:kuma_url: is required: the agency's Uptime Kuma, e.g. https://status.example")
        elif not _URL.match(kuma_url):
            problems.append(f"{NAMESPACE}:kuma_url: expected an http(s) URL, got {kuma_url!r}")
        if not config.get("kuma_username"):
            problems.append(f"{NAMESPACE}:kuma_username: is required: the monitors log in to Kuma as this user")
        if config.get_secret("kuma_password") is None:
            problems.append(
                f"{NAMESPACE}:kuma_password: is required: the Kuma user's password "
                f"(pulumi config set --secret {NAMESPACE}:kuma_password)"
            )
        problems += alerting_problems(build_plan(spec), config.get("kuma_alerting_file"))
        if spec.tier.hosting.mode == "shared" and not spec.stack.platform_stack:
            problems.append(
                f"{NAMESPACE}:platform_stack: tier {spec.tier_name} places sites on the platform's shared hosts; "
                "name the platform stack, e.g. agency/carestack/platform"
            )
    if problems:
        raise SpecError(spec.source, problems)
    return Deployment(str(region), ssh_public_key.strip() if ssh_public_key else None, kuma_url)


def alerting_problems(plan: CarePlan, alerting_file: str | None) -> list[str]:
    """What the monitors provider would fail on when it builds the client's notifications:
    a missing alerting file, a bad one, a recipient the plan routes alerts to that it cannot reach,
    or an environment variable it names that is not set."""
    key = f"{NAMESPACE}:kuma_alerting_file"
    if not alerting_file:
        return [
            f"{key}: is required: the plan sends job heartbeats and site alerts to the agency's on-call, which "
            f"the alerting file names (its agency section), with the SMTP server or SMS gateway a tier that mails "
            f"or texts needs (pulumi config set {key} agency-alerting.yaml; see docs/alerting.md)"
        ]
    try:
        config = load_alerting(Path(alerting_file))
    except AlertingError as exc:
        return [f"{key}: {exc}"]
    problems: list[str] = []
    routed_notifications(plan, config, problems)
    return [f"{key}: {alerting_file}: {problem}" for problem in problems]


@dataclass(frozen=True)
class ClientDeployment:
    plan: CarePlan
    bucket: BackupBucket
    hosting: Hosting
    onboarding: Onboarding
    outputs: dict[str, Any]


@dataclass(frozen=True)
class PlatformDeployment:
    pool: SharedHostPool
    outputs: dict[str, Any]


def build_client(spec: ClientSpec, deployment: Deployment) -> ClientDeployment:
    """Bucket, hosting and onboarding for one client, and the stack outputs."""
    plan = build_plan(spec)
    client = plan.client.id
    tags = {"carestack-client": client, "carestack-tier": plan.client.tier}
    bucket = BackupBucket(client, plan.storage, tags)
    hosting: Hosting
    if plan.hosting.mode == "dedicated":
        hosting = DedicatedHost(plan.hosting, deployment.admin_key, tags)
    else:
        hosting = SharedPlacement(plan.hosting)
    onboarding = Onboarding(
        client, plan, Path(spec.source), hosting, bucket, deployment.s3_endpoint, deployment.push_base_url
    )
    outputs = {
        "client": client,
        "tier": plan.client.tier,
        "bucket": bucket.name,
        "repository": bucket.name.apply(deployment.repository),
        "s3_endpoint": deployment.s3_endpoint,
        "server": plan.hosting.server,
        "server_address": hosting.address,
        "hosts": onboarding.hosts,
        "s3_access_key_id": bucket.access_key_id,
        "s3_secret_access_key": bucket.secret_access_key,
        "restic_password": bucket.restic_password,
        "push_tokens": onboarding.push_tokens,
    }
    return ClientDeployment(plan, bucket, hosting, onboarding, outputs)


def build_platform(spec: PlatformSpec, deployment: Deployment) -> PlatformDeployment:
    """The shared hosts and the standby, and the outputs client stacks reference."""
    pool = SharedHostPool("platform", spec.stack, deployment.admin_key, {"carestack-role": "platform"})
    outputs = {
        SHARED_HOSTS_OUTPUT: pool.shared_hosts,
        STANDBY_OUTPUT: pool.standby_record,
        "hosts": pool.hosts_inventory,
    }
    return PlatformDeployment(pool, outputs)


def build(spec: StackSpec) -> ClientDeployment | PlatformDeployment:
    deployment = read_deployment(spec)
    if isinstance(spec, PlatformSpec):
        return build_platform(spec, deployment)
    return build_client(spec, deployment)


def run(path: Path) -> ClientDeployment | PlatformDeployment:
    """Load and validate the stack file, declare its resources, export its outputs."""
    built = build(load_stack(path))
    for name, value in built.outputs.items():
        pulumi.export(name, value)
    return built
