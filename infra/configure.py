"""`carestack configure`: converge a client's servers from its CarePlan with Ansible.

    carestack configure STACK_FILE --hosts HOSTS_JSON --s3-endpoint URL --push-base-url URL

HOSTS_JSON maps server name -> {"address": ip, "ssh_user": "admin"} (JSON text
or a file; an optional "memory_mb" where the OS reports more memory than the
server may use, as in a container). Secrets come only from the environment
(CARESTACK_RESTIC_PASSWORD, CARESTACK_S3_ACCESS_KEY_ID,
CARESTACK_S3_SECRET_ACCESS_KEY, CARESTACK_PUSH_TOKENS = JSON
site_id -> job -> token); they reach ansible-playbook through a 0600 vars file
in a 0700 directory that is removed afterwards, never through argv, and are
stripped from its environment. Every job of every site needs its push token
(`pulumi stack output --show-secrets --json push_tokens`): a run without them
is refused, since an agent without heartbeats looks down to Kuma.

The lab and the tests call `converge()` directly, several clients in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from infra.agent_wheel import WheelError, build_agent_wheel
from infra.ansible_vars import (
    Client,
    ClientSecrets,
    HostAccess,
    Realization,
    RealizationError,
    check_realization,
    inventory,
    secret_vars,
)
from infra.command import Verbs
from infra.plan import build_plan
from infra.spec import ClientSpec, SpecError, load_stack

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = REPO / "ansible"
SECRET_ENV = (
    "CARESTACK_RESTIC_PASSWORD",
    "CARESTACK_S3_ACCESS_KEY_ID",
    "CARESTACK_S3_SECRET_ACCESS_KEY",
    "CARESTACK_PUSH_TOKENS",
)
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)"
)


class ConfigureError(Exception):
    pass


@dataclass(frozen=True)
class ConvergeResult:
    returncode: int
    recap: dict[str, dict[str, int]]
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(not r["failed"] and not r["unreachable"] for r in self.recap.values())

    @property
    def changed(self) -> int:
        return sum(r["changed"] for r in self.recap.values())

    def changed_tasks(self) -> list[str]:
        """The tasks that reported a change, for telling a user (or a test) what a run did."""
        tasks: list[str] = []
        task = ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line[line.index("[") + 1 : line.rindex("]")]
            elif line.startswith("changed: ") and task and task not in tasks:
                tasks.append(task)
        return tasks


# --- inputs ------------------------------------------------------------------


def secrets_from_env(environ: Mapping[str, str]) -> ClientSecrets:
    """The client's secrets; errors name the variable, never its value."""
    missing = [name for name in SECRET_ENV[:3] if not environ.get(name)]
    if missing:
        raise ConfigureError(f"environment: {', '.join(missing)} must be set (secrets are read only from there)")
    tokens: Any = {}
    if environ.get("CARESTACK_PUSH_TOKENS"):
        try:
            tokens = json.loads(environ["CARESTACK_PUSH_TOKENS"])
        except json.JSONDecodeError:
            raise ConfigureError("CARESTACK_PUSH_TOKENS: must be JSON: {site_id: {job: token}}") from None
        if not isinstance(tokens, dict) or not all(isinstance(jobs, dict) for jobs in tokens.values()):
            raise ConfigureError("CARESTACK_PUSH_TOKENS: must be a JSON object {site_id: {job: token}}")
    return ClientSecrets(
        restic_password=environ["CARESTACK_RESTIC_PASSWORD"],
        s3_access_key_id=environ["CARESTACK_S3_ACCESS_KEY_ID"],
        s3_secret_access_key=environ["CARESTACK_S3_SECRET_ACCESS_KEY"],
        push_tokens=tokens,
    )


def parse_hosts(value: str) -> dict[str, HostAccess]:
    """HOSTS_JSON as text, or the path of a file holding it."""
    text = value if value.lstrip().startswith("{") else _read(Path(value), "--hosts")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigureError(f"--hosts: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigureError('--hosts: must be an object {"server": {"address": ip, "ssh_user": "admin"}}')
    hosts = {}
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise ConfigureError(f'--hosts: {name} must be {{"address": ip, "ssh_user": user}}')
        hosts[name] = HostAccess(entry["address"], str(entry.get("ssh_user") or "root"), entry.get("memory_mb"))
    return hosts


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigureError(f"{option}: cannot read {path}: {exc.strerror}") from None


# --- the run -----------------------------------------------------------------


@contextmanager
def private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="carestack-configure-"))  # mkdtemp makes it 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, data: Any) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    return path


def _ansible_playbook() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if not found:
        raise ConfigureError("ansible-playbook not found (install ansible-core into the environment carestack runs in)")
    return found


# Forks: one controller process (tens of MB) and one SSH connection per server converged at once. A
# fleet's servers are independent, so all of them at once up to what the controller can drive.
FORKS_PER_CPU = 10
MAX_FORKS = 50


# The roles of site.yml, each tagged with its name: `--only` converges those alone.
ROLES = ("common", "web", "site", "agent")


def forks_for(servers: int, cpus: int | None = None) -> int:
    """Ansible's forks for a run over `servers` servers: every one at once, within the controller's means."""
    means = max(FORKS_PER_CPU, FORKS_PER_CPU * (cpus or os.cpu_count() or 1))
    return max(1, min(servers, means, MAX_FORKS))


def converge(
    clients: Sequence[Client],
    realization: Realization,
    *,
    ssh_config: Path | None = None,
    ssh_key: Path | None = None,
    verbosity: int = 0,
    stream: TextIO | None = sys.stdout,
    limit: Sequence[str] = (),
    only: Sequence[str] = (),
) -> ConvergeResult:
    """Run the playbook for these clients' servers; the output goes to `stream` as it comes.

    `only` names roles (ROLES) to converge alone, on servers a whole converge has built before.
    """
    unknown = [role for role in only if role not in ROLES]
    if unknown:
        raise ConfigureError(f"--only: {', '.join(unknown)} is not a role; valid: {', '.join(ROLES)}")
    check_realization(clients, realization)
    inv = inventory(clients, realization)
    return run_playbook(
        "site.yml",
        inv,
        secret_vars(clients, realization),
        {"carestack_agent_wheel": str(build_agent_wheel())},
        ssh_config=ssh_config,
        ssh_key=ssh_key,
        verbosity=verbosity,
        stream=stream,
        limit=limit,
        tags=only,
    )


def run_playbook(
    playbook_name: str,
    inv: dict[str, Any],
    secrets: dict[str, Any] | None,
    group_vars: dict[str, Any],
    *,
    ssh_config: Path | None = None,
    ssh_key: Path | None = None,
    verbosity: int = 0,
    stream: TextIO | None = sys.stdout,
    limit: Sequence[str] = (),
    tags: Sequence[str] = (),
) -> ConvergeResult:
    """One of carestack's playbooks over this inventory; secrets only through a 0600 vars file."""
    playbook = _ansible_playbook()
    started = time.monotonic()
    with private_dir() as workdir:
        group = inv["all"]["children"]["carestack"]
        group["vars"] = {**group_vars, **_ssh_vars(ssh_config, ssh_key)}
        inventory_file = write_private(workdir / "inventory.json", inv)
        cmd = [playbook, str(ANSIBLE_DIR / playbook_name), "-i", str(inventory_file)]
        if secrets is not None:
            cmd += ["-e", f"@{write_private(workdir / 'secrets.json', secrets)}"]
        cmd += ["-" + "v" * verbosity] if verbosity else []
        cmd += ["--limit", ",".join(limit)] if limit else []
        cmd += ["--tags", ",".join(tags)] if tags else []
        servers = len(limit) if limit else len(group["hosts"])
        cmd += ["--forks", str(forks_for(servers))]
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        env |= {"ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
        returncode, output = _run(cmd, env, stream.write if stream else None)
    recap = {
        m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        for m in map(RECAP.match, output.splitlines())
        if m
    }
    return ConvergeResult(returncode, recap, time.monotonic() - started, output)


def _ssh_vars(ssh_config: Path | None, ssh_key: Path | None) -> dict[str, str]:
    # With the lab's own ssh config its host-key policy applies; otherwise a new
    # server's key is learned on first contact and enforced afterwards.
    ssh: dict[str, str] = {
        "ansible_ssh_common_args": f"-F {ssh_config}" if ssh_config else "-o StrictHostKeyChecking=accept-new"
    }
    if ssh_key:
        ssh["ansible_ssh_private_key_file"] = str(ssh_key)
    return ssh


def _run(cmd: list[str], env: dict[str, str], emit: Callable[[str], Any] | None) -> tuple[int, str]:
    lines: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if emit:
                emit(line)
    return proc.returncode, "".join(lines)


# --- the verb ----------------------------------------------------------------


def _configure(args: argparse.Namespace) -> int:
    try:
        spec = load_stack(args.stack)
        if not isinstance(spec, ClientSpec):
            raise ConfigureError(f"{args.stack}: a platform stack has no sites to configure; give a client stack")
        client = Client(build_plan(spec), secrets_from_env(os.environ))
        realization = Realization(
            hosts=parse_hosts(args.hosts),
            s3_endpoint=args.s3_endpoint,
            push_base_url=args.push_base_url,
            admin_cidrs=tuple(args.admin_cidr),
            admin_keys=tuple(line for path in args.admin_key for line in _public_keys(path)),
            trusted_addresses=tuple(args.trusted_address),
        )
        result = converge(
            [client],
            realization,
            ssh_config=args.ssh_config,
            ssh_key=args.ssh_key,
            verbosity=args.verbose,
            only=args.only,
        )
    except (SpecError, ConfigureError, RealizationError, WheelError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0 if result.ok else 1


def _public_keys(path: Path) -> list[str]:
    keys = [line.strip() for line in _read(path, "--admin-key").splitlines() if line.strip()]
    if not keys or not all(line.startswith(("ssh-", "ecdsa-", "sk-")) for line in keys):
        raise ConfigureError(f"--admin-key: {path} must hold OpenSSH public keys (ssh-ed25519 AAAA...)")
    return keys


def register(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "configure",
        help="converge a client's servers with Ansible (secrets from CARESTACK_* environment variables)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", type=Path, metavar="STACK_FILE")
    parser.add_argument(
        "--hosts", required=True, metavar="HOSTS_JSON", help='{"server": {"address": ip, "ssh_user": "admin"}}'
    )
    parser.add_argument("--s3-endpoint", required=True, metavar="URL", help="S3 endpoint the servers reach")
    parser.add_argument(
        "--push-base-url",
        required=True,
        metavar="URL",
        help="Kuma push base URL, e.g. https://status.agency.example/api/push",
    )
    parser.add_argument(
        "--admin-cidr", action="append", default=[], metavar="CIDR", help="also allow SSH from here (repeatable)"
    )
    parser.add_argument(
        "--trusted-address",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="never ban this address or network for failed logins: the controller, the monitors (repeatable)",
    )
    parser.add_argument(
        "--admin-key", action="append", default=[], type=Path, metavar="FILE", help="admin user's public keys"
    )
    parser.add_argument("--ssh-config", type=Path, metavar="FILE", help="ssh config for reaching the servers")
    parser.add_argument("--ssh-key", type=Path, metavar="FILE", help="private key for reaching the servers")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=ROLES,
        metavar="ROLE",
        help=f"converge only this role ({', '.join(ROLES)}; repeatable) on servers converged before",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="ansible-playbook verbosity (-v..-vvvv)")
    parser.set_defaults(run=_configure)
