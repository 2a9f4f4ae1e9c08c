"""One lab server: an overlay on the base image, its own identity, booted by systemd-nspawn.

Layout under `<state>/hosts/<name>/`: `upper/` and `work/` (the overlay's
writable layer: everything the server changes), `root/` (the mounted
overlay), `host.json` (address and identity), `console.log`, `supervisor.pid`.

Boot: a tiny shell supervisor runs systemd-nspawn in a loop, because a guest
`reboot` ends nspawn with exit code 133 and must start it again; any other
exit ends the supervisor. Stop: SIGTERM to the supervisor, which passes it to
nspawn (a clean guest shutdown takes about 2 s).
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from lab import cgroups, procs, system
from lab.config import LabConfig
from lab.errors import LabError
from lab.network import HostLink, netns_path
from lab.system import run

# nspawn's exit code when the guest asked for a reboot
REBOOT_EXIT = 133
STOP_TIMEOUT = 20.0
HOST_KEY_TYPES = ("ed25519", "ecdsa")
SSHD_HOST_KEYS = "".join(f"HostKey /etc/ssh/ssh_host_{kind}_key\n" for kind in HOST_KEY_TYPES)


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    dir: Path
    lab_id: str

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def upper(self) -> Path:
        return self.dir / "upper"

    @property
    def work(self) -> Path:
        return self.dir / "work"

    @property
    def supervisor_pid(self) -> Path:
        return self.dir / "supervisor.pid"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"


def host(config: LabConfig, name: str, address: str) -> Host:
    return Host(name, address, config.hosts_dir / name, config.lab_id)


def mounted(h: Host) -> bool:
    return system.mounted(h.root)


def mount(h: Host, lower: Path) -> None:
    if mounted(h):
        return
    for path in (h.upper, h.work, h.root):
        path.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={h.upper},workdir={h.work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(h.root)], what=f"mounting the overlay of {h.name}")


def unmount(h: Host) -> None:
    for _ in range(20):
        if not mounted(h):
            return
        if subprocess.run(["umount", str(h.root)], capture_output=True, check=False).returncode == 0:
            continue
        time.sleep(0.1)  # a process of the stopping guest may still hold it for a moment
    run(["umount", "--lazy", str(h.root)], what=f"unmounting {h.root}")


# -- identity -----------------------------------------------------------------------------


def machine_id(h: Host) -> str | None:
    try:
        text = (h.upper / "etc/machine-id").read_text().strip()
    except OSError:
        return None
    return text or None


def host_key(h: Host) -> str:
    """The server's ed25519 public host key (`ssh-ed25519 AAAA...`)."""
    return " ".join((h.upper / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2])


def personalize(h: Host, *, authorized_key: str, apt_proxy: str) -> bool:
    """Give a fresh overlay its own identity (once) and the lab's access (each time); True if new."""
    fresh = machine_id(h) is None
    root = h.root
    if fresh:
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
        (root / "etc/hostname").write_text(h.name + "\n")
        (root / "etc/hosts").write_text(
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{h.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        )
        for old in (root / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        # No RSA key: generating one costs about a second per server, and nothing here needs it.
        for kind in HOST_KEY_TYPES:
            key = root / f"etc/ssh/ssh_host_{kind}_key"
            run(
                ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{h.name}", "-f", str(key)],
                what=f"creating the ssh host keys of {h.name}",
            )
        _write(root / "etc/ssh/sshd_config.d/carestack-lab-hostkeys.conf", SSHD_HOST_KEYS, 0o644)
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", 0o600)
    _write(root / "etc/apt/apt.conf.d/01carestack-lab-proxy", f'Acquire::http::Proxy "{apt_proxy}";\n', 0o644)
    return fresh


def _write(path: Path, text: str, mode: int) -> None:
    if path.exists() and path.read_text() == text:
        return
    path.write_text(text)
    path.chmod(mode)


# -- boot and stop --------------------------------------------------------------------------


# The server's own network namespace gets a writable /proc/sys/net, as on a real server, so the
# common role's kernel network settings apply inside it; the rest of /proc/sys stays read-only
# (those settings belong to this machine's kernel).
NSPAWN_ENVIRONMENT = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}


def nspawn_argv(h: Host, link: HostLink) -> list[str]:
    return [
        "systemd-nspawn",
        "--quiet",
        "--register=no",
        "--keep-unit",
        f"--directory={h.root}",
        f"--machine={h.name}",
        "--boot",
        f"--network-namespace-path={netns_path(link)}",
        "--console=read-only",
        "--resolv-conf=off",
        "--timezone=off",
        # The common role manages a firewall inside the server.
        "--capability=CAP_NET_ADMIN",
        # The agent streams database dumps into restic through a FUSE file (carestack_agent.streamfs).
        "--bind=/dev/fuse",
    ]


def _supervisor_script(argv: list[str], cgroup_dirs: list[Path]) -> str:
    command = " ".join(shlex.quote(a) for a in argv)
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in NSPAWN_ENVIRONMENT.items())
    # Into the server's own cgroups first (see cgroups.py): nspawn and the guest inherit them.
    enter = "".join(
        f"mkdir -p {shlex.quote(str(d))} && echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}"
        f" || {{ echo 'carestack-lab: cannot enter the cgroup {d}' >&2; exit 1; }}\n"
        for d in cgroup_dirs
    )
    return (
        enter + exports + "trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM INT\n"
        "while :; do\n"
        f"  {command} &\n"
        "  child=$!\n"
        "  wait $child; rc=$?\n"
        f'  [ "$rc" -eq {REBOOT_EXIT} ] || {{ echo "carestack-lab: nspawn exited with $rc" >&2; exit "$rc"; }}\n'
        "done\n"
    )


def nspawn_pids(h: Host) -> list[int]:
    """nspawn processes booting this host's root, found by their command line (survives lost PID files)."""
    wanted = f"--directory={h.root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"systemd-nspawn") and wanted in argv:
            found.append(int(entry.name))
    return found


def running(h: Host) -> bool:
    return procs.running(h.supervisor_pid) is not None and bool(nspawn_pids(h))


def booted_as_wanted(h: Host, link: HostLink) -> bool:
    """The running nspawn has today's command line and environment and runs in the server's own cgroup."""
    wanted_argv = "\0".join(nspawn_argv(h, link)).encode()
    wanted_environment = {f"{name}={value}".encode() for name, value in NSPAWN_ENVIRONMENT.items()}
    own = f"/{cgroups.name(h.lab_id, h.name)}"
    for pid in nspawn_pids(h):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
            environment = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            membership = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        return argv == wanted_argv and wanted_environment <= environment and own in membership
    return False


def boot(h: Host, link: HostLink) -> None:
    script = _supervisor_script(nspawn_argv(h, link), cgroups.paths(h.lab_id, h.name))
    procs.spawn(["/bin/sh", "-c", script, f"carestack-lab-{h.name}"], pid_file=h.supervisor_pid, log_file=h.console_log)


def wait_ssh(h: Host, timeout: float = 60.0) -> float:
    """Seconds until the server's sshd accepts TCP connections."""
    started = time.monotonic()
    while True:
        try:
            with socket.create_connection((h.address, 22), timeout=1.0) as conn:
                if conn.recv(4).startswith(b"SSH-"):
                    return time.monotonic() - started
        except OSError:
            pass
        # The supervisor enters its cgroup before it starts nspawn: only both gone means the boot ended.
        if not nspawn_pids(h) and procs.running(h.supervisor_pid) is None:
            tail = h.console_log.read_text(errors="replace").strip().splitlines()[-10:]
            raise LabError(f"server {h.name} stopped while booting; {h.console_log}:\n  " + "\n  ".join(tail))
        if time.monotonic() - started > timeout:
            raise LabError(
                f"server {h.name} ({h.address}) did not answer ssh within {timeout:.0f}s; see {h.console_log}"
            )
        time.sleep(0.1)


def stop(h: Host) -> bool:
    """Shut the server down by PID (supervisor, then any nspawn left); True if it was running."""
    was_running = procs.stop_recorded(h.supervisor_pid, STOP_TIMEOUT)
    for pid in nspawn_pids(h):  # a supervisor killed in a crash leaves its nspawn behind
        record = procs.record_of(pid)
        if record is not None:
            was_running = procs.stop(record, STOP_TIMEOUT) or was_running
    orphans = guest_pids(h)  # a guest whose nspawn was killed hard keeps running on its own
    if orphans:
        _power_off(orphans)
        was_running = True
    cgroups.remove(h.lab_id, h.name)
    return was_running


def _power_off(pids: list[int]) -> None:
    """Ask the orphaned guest's systemd to power off (SIGRTMIN+4), then kill whatever is left.

    Tracked by PID and start time: PIDs wrap (pid_max may be 32768) and must never hit another process.
    """
    records = [r for pid in pids if (r := procs.record_of(pid)) is not None]
    inits = [r for r in records if procs.parent(r.pid) not in pids]
    for record in inits:
        if procs.alive(record):
            procs.signal_pid(record.pid, signal.SIGRTMIN + 4)
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(procs.alive(r) for r in records) and time.monotonic() < deadline:
        time.sleep(0.1)
    for record in records:
        if procs.alive(record):
            procs.signal_pid(record.pid, signal.SIGKILL)
    for record in records:
        procs.wait_gone(record, 5.0)


def guest_pids(h: Host) -> list[int]:
    """Processes whose root file system is this host's overlay: the guest itself."""
    upper = str(h.upper)
    return [pid for pid in procs.pids() if procs.root_upperdir(pid) == upper]


def save_record(h: Host, data: dict[str, object]) -> None:
    h.dir.mkdir(parents=True, exist_ok=True)
    (h.dir / "host.json").write_text(json.dumps(data, indent=2) + "\n")


def load_record(config: LabConfig, name: str) -> dict[str, object] | None:
    try:
        data = json.loads((config.hosts_dir / name / "host.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def host_names(config: LabConfig) -> list[str]:
    return sorted(p.name for p in config.hosts_dir.iterdir()) if config.hosts_dir.exists() else []


def remove(h: Host) -> None:
    if h.dir.exists():
        shutil.rmtree(h.dir)
