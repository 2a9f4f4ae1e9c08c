"""The production offboarding realm: the servers over ssh, the leases with the agency's AWS keys, Kuma's login.

Built from `carestack offboard`'s options: HOSTS_JSON naming the client's server
(and the standby, where the client's restore drills run), the platform stack
file when there are drills, Kuma's credentials as for `carestack monitors sync`.
The controller's own AWS credentials (the usual AWS_* environment or profile)
read the leases in the client's bucket.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infra.ansible_vars import HostAccess, drilled_sites
from infra.configure import run_playbook
from infra.failover import AgentAnswer, job_timers
from infra.failover_lease import LeaseStore
from infra.failover_realm import ssh_argv
from infra.kuma_client import KumaLogin, connect
from infra.monitors import nothing_desired, sync
from infra.offboard import OffboardError
from infra.offboard_vars import offboard_inventory
from infra.plan import CarePlan
from infra.secret_file import receive_secret
from infra.spec import PlatformSpec

DOWNLOAD_TIMEOUT = 6 * 3600


class ProductionOffboardRealm:
    def __init__(
        self,
        hosts: dict[str, HostAccess],
        kuma: KumaLogin,
        *,
        platform: PlatformSpec | None = None,
        ssh_key: Path | None = None,
    ) -> None:
        self.hosts = hosts
        self.kuma = kuma
        self.platform = platform
        self.ssh_key = ssh_key
        self._s3: Any = None

    def _host(self, server: str) -> HostAccess:
        if server not in self.hosts:
            raise OffboardError(f"--hosts: {server} is missing (it names: {', '.join(self.hosts)})")
        return self.hosts[server]

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        command = ssh_argv(self._host(server), self.ssh_key, "carestack-agent " + shlex.join(argv))
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        return AgentAnswer(done.returncode, done.stdout, done.stderr)

    def leases(self, plan: CarePlan) -> LeaseStore:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=os.environ.get("CARESTACK_S3_ADMIN_ENDPOINT") or None)
        return LeaseStore(self._s3, plan.storage.bucket)

    def stop_jobs(self, server: str, plan: CarePlan) -> None:
        timers = job_timers(plan)
        command = ssh_argv(self._host(server), self.ssh_key, f"systemctl disable --now {shlex.join(timers)}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise OffboardError(f"could not stop the jobs on {server}: {done.stderr.strip()}")

    def download(self, server: str, remote: str, local: Path) -> None:
        command = ssh_argv(self._host(server), self.ssh_key, f"cat {shlex.quote(remote)}")
        error = receive_secret(command, local, DOWNLOAD_TIMEOUT)
        if error is not None:
            raise OffboardError(f"could not fetch {remote} from {server}: {error}")

    def drill_server(self, plan: CarePlan) -> str | None:
        if not drilled_sites(plan):
            return None
        if self.platform is None:
            raise OffboardError(
                f"{plan.client.id}'s restore drills run on the standby: give --platform (the platform stack file) "
                "and the standby in --hosts"
            )
        return self.platform.stack.standby.name

    def remove_sites(self, plan: CarePlan, servers: Sequence[str], echo: Callable[[str], None]) -> None:
        for server in servers:
            self._host(server)
        result = run_playbook(
            "offboard.yml", offboard_inventory(plan, self.hosts, servers), None, {}, ssh_key=self.ssh_key, stream=None
        )
        if not result.ok:
            tail = "\n  ".join(result.output.strip().splitlines()[-15:])
            raise OffboardError(f"Ansible could not remove the sites from {', '.join(servers)}:\n  {tail}")

    def remove_monitors(self, plan: CarePlan) -> int:
        with connect(self.kuma) as session:
            return len(sync(session, nothing_desired(plan.client.id), report=None).changes)
