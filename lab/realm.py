"""The lab as a failover realm: its state supplies what production takes from the stacks' outputs.

`carestack failover STACK_FILE` without production options (and `lab status`)
use it: the standby and the servers are the lab's, the standby's size is the
platform stack's (as in production), the controller writes leases and
evidence with the lab's S3 admin keys, the agent runs over the lab's ssh, and
the traffic switch is the lab's (`lab.traffic`).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from infra.ansible_vars import Client, drilled_sites
from infra.configure import run_playbook
from infra.failover import AgentAnswer, Standby, job_timers, on_server
from infra.failover_lease import LeaseStore
from infra.failover_room import capacity
from infra.kuma_client import connect
from infra.monitors import nothing_desired, sync
from infra.offboard_vars import offboard_inventory
from infra.plan import CarePlan, SitePlan
from infra.secret_file import receive_secret
from infra.spec import PlatformSpec, SpecError, example_stacks, load_stack
from infra.traffic.base import TrafficSwitch
from lab import onboard
from lab.config import LabConfig
from lab.errors import LabError
from lab.placement import PlacedClient
from lab.state import LabState
from lab.status import fetch_page
from lab.traffic import LabSwitch

AGENT_TIMEOUT = 1800


class LabRealm:
    def __init__(self, config: LabConfig, state: LabState) -> None:
        self.config = config
        self.state = state

    # --- where things are -----------------------------------------------------

    def standby(self) -> Standby:
        platform = self._platform()
        host = platform.stack.standby
        return Standby(self.state.standby, capacity(host.instance_type, host.volume_gb))

    def _platform(self) -> PlatformSpec:
        candidates = [self.state.platform_stack] if self.state.platform_stack else example_stacks()
        for path in candidates:
            try:
                spec = load_stack(path)
            except SpecError as exc:
                raise LabError(f"the lab's platform stack no longer loads: {exc}") from None
            if isinstance(spec, PlatformSpec):
                return spec
        raise LabError("the lab has no platform stack (bring it up again with `carestack lab up`)")

    def address(self, server: str) -> str:
        return self.state.host(server).address

    def plan(self, client_id: str) -> CarePlan:
        return self.state.plan(client_id)

    def placed_on(self, server: str, exclude: str) -> list[CarePlan]:
        placed = []
        for client in self.state.clients:
            if client.id == exclude:
                continue
            plan = self.state.plan(client.id)
            if plan.hosting.server == server:
                placed.append(plan)
                continue
            if plan.sla.failover is None:
                continue
            held = {lease.site for lease in self.leases(plan).active() if lease.holder == server}
            if held:
                placed.append(on_server(plan, server, [s for s in plan.sites if s.id in held]))
        return placed

    # --- S3 -------------------------------------------------------------------

    def bucket_client(self, plan: CarePlan) -> Any:
        if self.state.s3_endpoint is None:
            raise LabError("the lab has no S3 (its step of `carestack lab up` did not run)")
        key_id, secret = self.state.s3_admin_credentials()
        return boto3.client(
            "s3",
            endpoint_url=self.state.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def leases(self, plan: CarePlan) -> LeaseStore:
        return LeaseStore(self.bucket_client(plan), plan.storage.bucket)

    # --- the servers ----------------------------------------------------------

    def _placed_client(self, plan: CarePlan) -> PlacedClient:
        return PlacedClient(self.state.client(plan.client.id).stack, plan)

    def resync(self, plan: CarePlan) -> dict[str, dict[str, str]]:
        """The client's monitors as its traffic now goes (`lab.traffic`); its push tokens."""
        home = self.state.plan(plan.client.id)  # monitors cover every site, wherever each one runs
        tokens, _ = onboard.sync_monitors(self.state, [self._placed_client(home)])
        return tokens[plan.client.id]

    def converge(self, server: str, plans: Sequence[CarePlan], echo: Callable[[str], None]) -> None:
        clients = [
            Client(plan, onboard.client_secrets(self.state, plan.client.id, self.resync(plan))) for plan in plans
        ]
        if not clients:
            return
        onboard.converge_servers(self.config, self.state, clients, [server], echo, "failover.log")

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        answer = self.state.ssh(server, "carestack-agent " + shlex.join(argv), timeout=min(timeout, AGENT_TIMEOUT))
        return AgentAnswer(answer.returncode, answer.stdout, answer.stderr)

    def clear_standby(self, server: str, plan: CarePlan, sites: Sequence[SitePlan]) -> None:
        self._run_offboarding(on_server(plan, server, sites), [server])
        if drilled_sites(plan):  # the removal took the client's drill config and secrets along
            self.converge(server, [self.state.plan(plan.client.id)], lambda _: None)

    def stop_jobs(self, server: str, plan: CarePlan) -> None:
        timers = job_timers(plan)
        answer = self.state.ssh(server, f"systemctl disable --now {shlex.join(timers)}", timeout=120)
        if answer.returncode != 0:
            raise LabError(f"could not stop the jobs on {server}: {answer.stderr.strip()}")

    def fetch(self, server: str, domain: str, path: str) -> tuple[int | None, str]:
        return fetch_page(self.address(server), domain, path)

    # --- offboarding (`carestack offboard` without production options) -------------

    def download(self, server: str, remote: str, local: Path) -> None:
        argv = ["ssh", "-F", str(self.state.ssh_config), server, f"cat {shlex.quote(remote)}"]
        error = receive_secret(argv, local, AGENT_TIMEOUT)
        if error is not None:
            raise LabError(f"could not fetch {remote} from {server}: {error}")

    def drill_server(self, plan: CarePlan) -> str | None:
        standby = onboard.realization(self.state).standby
        return standby if standby and drilled_sites(plan) else None

    def remove_sites(self, plan: CarePlan, servers: Sequence[str], echo: Callable[[str], None]) -> None:
        self._run_offboarding(plan, servers)
        # The lab no longer carries the client: `lab status` stops checking it, `lab up` would onboard it anew.
        hosts = tuple(
            dataclasses.replace(h, clients=tuple(c for c in h.clients if c != plan.client.id)) for h in self.state.hosts
        )
        clients = tuple(c for c in self.state.clients if c.id != plan.client.id)
        self.state = dataclasses.replace(self.state, hosts=hosts, clients=clients)
        self.state.save()

    def _run_offboarding(self, plan: CarePlan, servers: Sequence[str]) -> None:
        """`ansible/offboard.yml` for the plan's sites on these servers."""
        log = self.config.run_dir / "offboard.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        inventory = offboard_inventory(plan, onboard.realization(self.state).hosts, servers)
        with open(log, "w") as out:
            result = run_playbook("offboard.yml", inventory, None, {}, ssh_config=self.state.ssh_config,
                                  ssh_key=self.state.ssh_key, stream=out)  # fmt: skip
        if not result.ok:
            tail = "\n  ".join(result.output.strip().splitlines()[-15:])
            raise LabError(
                f"Ansible could not remove {plan.client.id}'s sites from {', '.join(servers)}; {log}:\n  {tail}"
            )

    def remove_monitors(self, plan: CarePlan) -> int:
        with connect(self.state.kuma_login()) as session:
            return len(sync(session, nothing_desired(plan.client.id), report=None).changes)

    def switch(self, plan: CarePlan) -> TrafficSwitch:
        return LabSwitch(self.state, plan, self.resync)
