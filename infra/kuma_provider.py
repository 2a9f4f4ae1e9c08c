"""`pulumi up` syncs a client's monitors: a Pulumi dynamic provider around `infra.monitors.sync`.

    monitors = ClientMonitors("studio-monitors", plan_json=json.dumps(plan.to_dict()), site_addresses={})
    monitors.push_tokens   # Output (secret): {site id: {job: token}} for the agent's configuration

Stack configuration, read in `configure`:
    carestack:kuma_url             the agency's Uptime Kuma
    carestack:kuma_username
    carestack:kuma_password        (secret)
    carestack:kuma_alerting_file   the agency's alerting YAML (`infra.alerting`): its on-call
                                   (job heartbeats go there) and, if a tier mails or texts, SMTP / SMS

create/update run a sync of the client's desired state; delete removes every
monitor, notification, maintenance window and the status page carestack owns
for the client;
diff compares the inputs, and `read` (pulumi refresh) records drift, i.e.
changes a sync would make in Kuma, so the next `pulumi up` repairs hand edits.
The provider is pickled with dill: it holds only strings, never a connection.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from infra.alerting import AlertingConfig, load_alerting
from infra.kuma_client import KumaLogin, connect
from infra.monitors import DesiredState, SyncResult, desired_state, nothing_desired, sync
from infra.plan import CarePlan

INPUTS = ("plan_json", "site_addresses")


def _plan(props: Mapping[str, Any]) -> CarePlan:
    return CarePlan.from_dict(json.loads(props["plan_json"]))


class KumaMonitorsProvider(ResourceProvider):
    def __init__(self) -> None:
        super().__init__()
        # Set by configure() in the provider process, after unpickling; plain strings only.
        self.url = ""
        self.username = ""
        self.password = ""
        self.alerting_file = ""

    def configure(self, req: ConfigureRequest) -> None:
        config = req.config
        self.url = str(config.get("carestack:kuma_url") or "")
        self.username = str(config.get("carestack:kuma_username") or "")
        self.password = str(config.get("carestack:kuma_password") or "")
        self.alerting_file = str(config.get("carestack:kuma_alerting_file") or "")

    def _login(self) -> KumaLogin:
        missing = [
            f"carestack:{key}"
            for key, value in (
                ("kuma_url", self.url),
                ("kuma_username", self.username),
                ("kuma_password", self.password),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"the monitors need {', '.join(missing)} in the stack configuration")
        return KumaLogin(self.url, self.username, self.password)

    def _desired(self, props: Mapping[str, Any]) -> DesiredState:
        alerting = load_alerting(Path(self.alerting_file)) if self.alerting_file else AlertingConfig()
        return desired_state(_plan(props), alerting, props.get("site_addresses") or {})

    def _sync(self, props: Mapping[str, Any], *, dry_run: bool = False, remove: bool = False) -> SyncResult:
        login = self._login()  # missing credentials are named first
        desired = nothing_desired(_plan(props).client.id) if remove else self._desired(props)
        with connect(login) as session:
            return sync(session, desired, dry_run=dry_run, report=None)

    def _outs(self, props: Mapping[str, Any], result: SyncResult) -> dict[str, Any]:
        return {
            **{key: props[key] for key in INPUTS},
            "push_tokens": result.push_tokens,
            "drift": [str(change) for change in result.changes] if result.dry_run else [],
        }

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        try:
            _plan(news)
        except (KeyError, TypeError, ValueError) as exc:
            failures.append(CheckFailure("plan_json", f"not a care plan as CarePlan.to_dict() writes it: {exc}"))
        addresses = news.get("site_addresses") or {}
        if not isinstance(addresses, Mapping) or not all(isinstance(v, str) for v in addresses.values()):
            failures.append(CheckFailure("site_addresses", "expected a mapping of site id to base URL"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in INPUTS if (olds.get(key) or None) != (news.get(key) or None)]
        replaces = []
        if "plan_json" in changed and _plan(olds).client.id != _plan(news).client.id:
            replaces = ["plan_json"]  # another client: remove the old client's monitors, create the new ones
        drifted = bool(olds.get("drift"))
        return DiffResult(
            changes=bool(changed) or drifted,
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        result = self._sync(props)
        return CreateResult(f"kuma-monitors-{result.client_id}", self._outs(props, result))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._outs(news, self._sync(news)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, self._outs(props, self._sync(props, dry_run=True)))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self._sync(props, remove=True)


class ClientMonitors(Resource, module="carestack", name="ClientMonitors"):
    """A client's monitors in Uptime Kuma, synced from its CarePlan."""

    push_tokens: pulumi.Output[dict[str, dict[str, str]]]
    drift: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        plan_json: pulumi.Input[str],
        site_addresses: pulumi.Input[Mapping[str, str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        secret = pulumi.ResourceOptions(additional_secret_outputs=["push_tokens"])
        super().__init__(
            KumaMonitorsProvider(),
            name,
            {"plan_json": plan_json, "site_addresses": site_addresses, "push_tokens": None, "drift": None},
            pulumi.ResourceOptions.merge(opts, secret),
        )
