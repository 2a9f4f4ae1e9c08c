"""The production failover realm: the servers over ssh, the bucket and Route 53 with the agency's AWS keys.

Built from what `carestack configure` takes (HOSTS_JSON naming the standby and
the client's own server, the S3 endpoint, Kuma's push URL, the client's
secrets in CARESTACK_* variables) plus the platform stack file (the standby's
size). The controller's own AWS credentials (the usual AWS_* environment or
profile) write the leases and evidence and change Route 53.

One limit: converging the standby needs every placed client's secrets, and
this realm holds one client's. A standby that already carries another
client's sites is therefore refused (fail that client back first).
"""

from __future__ import annotations

import http.client
import os
import re
import shlex
import ssl
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infra.ansible_vars import Client, ClientSecrets, HostAccess, Realization, drilled_sites
from infra.configure import converge, run_playbook
from infra.failover import AgentAnswer, FailoverError, Standby, on_server
from infra.failover_lease import LeaseStore
from infra.failover_room import capacity
from infra.offboard_vars import offboard_inventory
from infra.plan import CarePlan, SitePlan
from infra.spec import PlatformSpec
from infra.traffic.base import TrafficSwitch
from infra.traffic.manual import ManualSwitch
from infra.traffic.route53 import Route53Switch, route53_client

HTTP_TIMEOUT = 15
_VALIDATED = re.compile(r"\(\d+ site\(s\): (.*)\)\s*$")  # `carestack-agent validate`'s line


def ssh_argv(host: HostAccess, ssh_key: Path | None, command: str) -> list[str]:
    """ssh to a server as its admin user, the command run as root (sudo unless the user is root)."""
    argv = ["ssh", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]
    argv += ["-i", str(ssh_key)] if ssh_key else []
    sudo = "" if host.ssh_user == "root" else "sudo -n "
    return [*argv, f"{host.ssh_user}@{host.address}", sudo + command]


class ProductionRealm:
    def __init__(
        self,
        platform: PlatformSpec,
        hosts: dict[str, HostAccess],
        realization: Realization,
        secrets: ClientSecrets,
        *,
        confirm: bool,
        ssh_key: Path | None = None,
    ) -> None:
        self.platform = platform
        self.hosts = hosts
        self.realization = realization
        self.secrets = secrets
        self.confirm = confirm
        self.ssh_key = ssh_key
        self._s3: Any = None

    def standby(self) -> Standby:
        host = self.platform.stack.standby
        return Standby(host.name, capacity(host.instance_type, host.volume_gb))

    def _host(self, server: str) -> HostAccess:
        if server not in self.hosts:
            raise FailoverError(f"--hosts: {server} is missing (it names: {', '.join(self.hosts)})")
        return self.hosts[server]

    def address(self, server: str) -> str:
        return self._host(server).address

    def placed_on(self, server: str, exclude: str) -> list[CarePlan]:
        listed = self.agent(server, ["validate"], timeout=60)
        found = _VALIDATED.search(listed.stdout) if listed.returncode == 0 else None
        sites = [s for s in (found[1].split(", ") if found else []) if s != "none"]
        others = [s for s in sites if not s.startswith(exclude + "-")]
        if others:
            raise FailoverError(
                f"standby {server} already carries other clients' sites ({', '.join(others)}); "
                "fail them back first (converging it needs every placed client's secrets)"
            )
        return []

    def bucket_client(self, plan: CarePlan) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=os.environ.get("CARESTACK_S3_ADMIN_ENDPOINT") or None)
        return self._s3

    def leases(self, plan: CarePlan) -> LeaseStore:
        return LeaseStore(self.bucket_client(plan), plan.storage.bucket)

    def converge(self, server: str, plans: Sequence[CarePlan], echo: Callable[[str], None]) -> None:
        if not plans:
            return
        result = converge(
            [Client(plan, self.secrets) for plan in plans], self.realization, ssh_key=self.ssh_key, limit=[server]
        )
        if not result.ok:
            raise FailoverError(f"Ansible could not converge {server} (exit {result.returncode}); see its output above")

    def _ssh(self, server: str, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = ssh_argv(self._host(server), self.ssh_key, command)
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        answer = self._ssh(server, "carestack-agent " + shlex.join(argv), timeout)
        return AgentAnswer(answer.returncode, answer.stdout, answer.stderr)

    def clear_standby(self, server: str, plan: CarePlan, sites: Sequence[SitePlan]) -> None:
        placed = on_server(plan, server, sites)
        result = run_playbook(
            "offboard.yml", offboard_inventory(placed, self.hosts, [server]), None, {}, ssh_key=self.ssh_key,
            stream=None,
        )  # fmt: skip
        if not result.ok:
            tail = " | ".join(result.output.strip().splitlines()[-5:])
            raise FailoverError(f"could not remove {plan.client.id}'s sites from {server}: {tail}")
        if drilled_sites(plan):  # the removal took the client's drill config and secrets along
            self.converge(server, [plan], lambda _: None)

    def fetch(self, server: str, domain: str, path: str) -> tuple[int | None, str]:
        # By address with the site's name (Host and SNI): DNS still points elsewhere. The standby's
        # certificate is not verified here; the page and its keyword are what is checked.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = _SniConnection(self.address(server), domain, context, HTTP_TIMEOUT)
        try:
            conn.request("GET", path, headers={"Host": domain})
            answer = conn.getresponse()
            return answer.status, answer.read().decode("utf-8", "replace")
        except OSError:
            return None, ""
        finally:
            conn.close()

    def switch(self, plan: CarePlan) -> TrafficSwitch:
        assert plan.sla.failover is not None
        if plan.sla.failover.traffic == "route53":
            return Route53Switch(route53_client(), plan.sla.failover.hosted_zone_id)
        return ManualSwitch(self.confirm)


class _SniConnection(http.client.HTTPSConnection):
    """HTTPS to an address, presenting the site's name in SNI."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, 443, timeout=timeout, context=context)
        self.server_name = server_name
        self.ssl_context = context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self.ssl_context.wrap_socket(self.sock, server_hostname=self.server_name)
