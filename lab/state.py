"""What a running lab offers its users (tests, Ansible, the demo): `LabState`.

`carestack lab up` writes it to `<state dir>/lab.json` as soon as the servers
answer and again when the services and onboarding are done; `LabState.load()`
reads it. Secrets are never in it: it names the 0600 files that hold them.

    lab = LabState.load()                      # CARESTACK_LAB_DIR or /var/lib/carestack-lab
    lab.host("shared-1").address               # "10.77.0.10"
    lab.inventory, lab.ssh_config              # for ansible -i / ssh -F / testinfra
    lab.ssh("shared-1", "hostname").stdout
    lab.s3_endpoint, lab.s3_credentials("bakery")
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.kuma_client import KumaError, KumaLogin, read_login
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, SpecError, load_stack
from lab.config import default_state_dir
from lab.errors import LabError

STATE_FILE = "lab.json"


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    role: str  # "shared" | "standby" | "dedicated"
    clients: tuple[str, ...]
    machine_id: str


@dataclass(frozen=True)
class LabClient:
    id: str
    stack: Path
    server: str  # the lab host its sites run on (plan.hosting.server)
    bucket: str
    s3_env_file: Path | None  # AWS_ACCESS_KEY_ID=... / AWS_SECRET_ACCESS_KEY=..., mode 0600
    restic_password_file: Path  # mode 0600


@dataclass(frozen=True)
class LabState:
    state_dir: Path
    subnet: str
    bridge: str
    bridge_address: str
    standby: str
    hosts: tuple[LabHost, ...]
    clients: tuple[LabClient, ...]
    ssh_key: Path
    ssh_config: Path
    known_hosts: Path
    inventory: Path
    server_memory_mb: int  # what each server sizes PHP-FPM and MariaDB for (they share one machine)
    s3_endpoint: str | None = None  # the same URL works from this machine and from the servers
    s3_admin_env_file: Path | None = None
    kuma_url: str | None = None  # on this machine (loopback)
    kuma_push_base_url: str | None = None  # where the servers' agents push heartbeats (bridge address)
    kuma_credentials_file: Path | None = None  # JSON {url, username, password}, mode 0600
    alert_url: str | None = None  # the webhook Kuma notifies
    alert_log: Path | None = None  # every notification received, one JSON object per line
    platform_stack: Path | None = None  # the platform stack the lab was placed from (the standby's size)
    acme_directory: str | None = None  # the lab CA's ACME directory (bridge address), where servers order
    acme_endpoint_ca_file: Path | None = None  # PEM: the CA of that HTTPS endpoint
    acme_root_file: Path | None = None  # PEM: the root the lab CA issues the sites' certificates under

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(f"no lab host {name!r} (hosts: {', '.join(h.name for h in self.hosts)})")

    def kuma_login(self) -> KumaLogin:
        """The lab's Kuma on this machine, with the admin login from its credentials file."""
        if self.kuma_url is None or self.kuma_credentials_file is None:
            raise LabError("the lab has no Kuma yet (its step of `carestack lab up` did not run)")
        try:
            saved = read_login(self.kuma_credentials_file)
        except KumaError as exc:
            raise LabError(str(exc)) from None
        return KumaLogin(self.kuma_url, saved.username, saved.password)

    def client(self, client_id: str) -> LabClient:
        for client in self.clients:
            if client.id == client_id:
                return client
        raise KeyError(f"no lab client {client_id!r} (clients: {', '.join(c.id for c in self.clients)})")

    def plan(self, client_id: str) -> CarePlan:
        """The client's CarePlan, from the stack file the lab was brought up with."""
        stack = self.client(client_id).stack
        try:
            spec = load_stack(stack)
        except SpecError as exc:
            raise LabError(
                f"the lab was brought up with {stack}, which no longer loads ({exc}); "
                "bring it up again with `carestack lab up [STACK_FILE...]`, or take it down with `carestack lab down`"
            ) from None
        if not isinstance(spec, ClientSpec):
            raise LabError(f"{stack}: not a client stack")
        return build_plan(spec)

    def s3_credentials(self, client_id: str) -> tuple[str, str]:
        """(access key id, secret access key) of the client's scoped S3 user."""
        env_file = self.client(client_id).s3_env_file
        if env_file is None:
            raise LabError(f"the lab has no S3 credentials for {client_id} (S3 step not run)")
        return _env_pair(env_file)

    def s3_admin_credentials(self) -> tuple[str, str]:
        if self.s3_admin_env_file is None:
            raise LabError("the lab has no S3 admin credentials (S3 step not run)")
        return _env_pair(self.s3_admin_env_file)

    def ssh(self, host: str, command: str, *, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a lab server as root."""
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), host, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def save(self) -> None:
        path = self.state_dir / STATE_FILE
        text = json.dumps(_jsonable(dataclasses.asdict(self)), indent=2) + "\n"
        if path.exists() and path.read_text() == text:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)

    @classmethod
    def load(cls, state_dir: Path | None = None) -> LabState:
        state_dir = Path(state_dir or default_state_dir())
        path = state_dir / STATE_FILE
        try:
            return _from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise LabError(f"no lab in {state_dir}: run `carestack lab up` first") from None
        except (ValueError, KeyError, TypeError) as exc:
            # From another version of the lab, or cut short: `lab up` writes it anew.
            raise LabError(f"{path}: unreadable ({exc!r}); run `carestack lab up` again") from None


def _env_pair(path: Path) -> tuple[str, str]:
    values = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    return values["AWS_ACCESS_KEY_ID"].strip(), values["AWS_SECRET_ACCESS_KEY"].strip()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _from_json(data: dict[str, Any]) -> LabState:
    hosts = tuple(
        LabHost(h["name"], h["address"], h["role"], tuple(h["clients"]), h["machine_id"]) for h in data["hosts"]
    )
    clients = tuple(
        LabClient(
            c["id"],
            Path(c["stack"]),
            c["server"],
            c["bucket"],
            _path(c["s3_env_file"]),
            Path(c["restic_password_file"]),
        )
        for c in data["clients"]
    )
    return LabState(
        state_dir=Path(data["state_dir"]),
        subnet=data["subnet"],
        bridge=data["bridge"],
        bridge_address=data["bridge_address"],
        standby=data["standby"],
        hosts=hosts,
        clients=clients,
        ssh_key=Path(data["ssh_key"]),
        ssh_config=Path(data["ssh_config"]),
        known_hosts=Path(data["known_hosts"]),
        inventory=Path(data["inventory"]),
        server_memory_mb=int(data["server_memory_mb"]),
        s3_endpoint=data.get("s3_endpoint"),
        s3_admin_env_file=_path(data.get("s3_admin_env_file")),
        kuma_url=data.get("kuma_url"),
        kuma_push_base_url=data.get("kuma_push_base_url"),
        kuma_credentials_file=_path(data.get("kuma_credentials_file")),
        alert_url=data.get("alert_url"),
        alert_log=_path(data.get("alert_log")),
        platform_stack=_path(data.get("platform_stack")),
        acme_directory=data.get("acme_directory"),
        acme_endpoint_ca_file=_path(data.get("acme_endpoint_ca_file")),
        acme_root_file=_path(data.get("acme_root_file")),
    )
