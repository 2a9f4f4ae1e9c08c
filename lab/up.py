"""`carestack lab up`: the whole care stack on this machine, step by step.

Every step first looks at what exists and only does what is missing, so a
second run changes nothing, and a run after a crash repairs what was left
half-done. All checks that can fail on bad input or a busy machine run before
anything is changed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from infra import agent_config
from infra.spec import example_stacks
from lab import (
    access,
    acme_server,
    aptproxy,
    certificates,
    hosts,
    image,
    network,
    onboard,
    procs,
    s3,
    s3_gateway,
    servers,
    services,
    storage,
    system,
)
from lab.config import LabConfig, save_config
from lab.errors import LabError
from lab.lock import exclusive
from lab.mirror import DebianMirror, debian_mirror
from lab.placement import Placement, place
from lab.progress import Progress
from lab.state import LabClient, LabHost, LabState
from lab.status import render_summary, summary


def service_ports(config: LabConfig) -> list[int]:
    """The machine's ports the servers may reach on the bridge address."""
    return [config.apt_port, config.s3_port, config.kuma_port, config.acme_port]


def own_pids(config: LabConfig) -> set[int]:
    """Every process the lab started and recorded (services, their relays), with its children."""
    records = [
        aptproxy.pid_file(config),
        storage.s3_dir(config) / s3_gateway.PID_FILE,
        *services.pid_files(config),
    ]
    pids = {record.pid for path in records if (record := procs.running(path)) is not None}
    moto = s3.recorded_pid(storage.s3_dir(config))
    pids |= {moto} if moto is not None else set()
    return set(procs.descendants(sorted(pids)))


def preflight(config: LabConfig) -> None:
    """Everything that would make `lab up` fail half-way, checked before it changes anything."""
    system.require_tools()
    users = system.subnet_users(config.subnet, config.bridge)
    if users:
        raise LabError(
            f"the lab's subnet {config.subnet} is already in use ({'; '.join(users)}); "
            "choose another with `carestack lab up --subnet 10.x.y.0/24`"
        )
    # A port held by a process the lab itself started is no conflict, alive, hung or half-dead:
    # its service's start() reuses or replaces it.
    ours = own_pids(config)
    ports = [
        ("apt", config.apt_port, config.bridge_address),
        ("s3", config.s3_port, config.bridge_address),
        ("s3", config.s3_port, storage.LOOPBACK),
        ("kuma", config.kuma_port, "127.0.0.1"),
        ("kuma", config.kuma_port, config.bridge_address),
        ("alert", config.alert_port, "127.0.0.1"),
        *(("acme", port, config.bridge_address) for port in services.acme_ports(config).all()),
    ]
    for name, port, address in ports:
        taken = system.port_taken(address, port)
        if taken and not system.port_holders(address, port) & ours:
            raise LabError(f"port {port} ({name}) is already in use ({taken}); choose another with --{name}-port")


def _state(config: LabConfig, placement: Placement, report: servers.ServerReport) -> LabState:
    ids = servers.machine_ids(config, [e.name for e in report.endpoints])
    return LabState(
        state_dir=config.state_dir,
        subnet=config.subnet,
        bridge=config.bridge,
        bridge_address=config.bridge_address,
        standby=placement.standby,
        hosts=tuple(LabHost(e.name, e.address, e.role, e.clients, ids[e.name]) for e in report.endpoints),
        clients=tuple(
            LabClient(
                c.id,
                c.stack,
                c.server,
                c.plan.storage.bucket,
                None,
                storage.restic_password_file(config, c.id),
            )
            for c in placement.clients
        ),
        ssh_key=access.key_path(config),
        ssh_config=access.ssh_config_path(config),
        known_hosts=access.known_hosts_path(config),
        inventory=access.inventory_path(config),
        server_memory_mb=config.server_memory_mb,
        platform_stack=placement.platform,
    )


def _outlived_s3(config: LabConfig) -> list[str]:
    """Servers whose agent state refers to backups of an S3 server that is gone.

    moto keeps everything in memory: when it is not running, the servers' backups are lost, and an
    agent that finds an update of its site interrupted could not roll it back. Such servers are
    rebuilt from the image, so every server the lab hands out matches its backups; a server the
    agent never ran on (the standby, a lab without clients) is recovered as it is.
    """
    if storage.running(config) is not None:
        return []
    agent_state = agent_config.STATE_DIR.lstrip("/")
    return [name for name in hosts.host_names(config) if (config.hosts_dir / name / "upper" / agent_state).exists()]


def _verify_ssh(config: LabConfig, names: Sequence[str]) -> None:
    """Log in to every server at once (this also opens the shared control connections)."""
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        results = list(pool.map(lambda name: (name, access.ssh(config, name, "true", timeout=30)), names))
    for name, done in results:
        if done.returncode != 0:
            raise LabError(f"server {name} answers but the lab's key does not log in: {done.stderr.strip()}")


@dataclass(frozen=True)
class UpResult:
    state: LabState
    changed: list[str]  # titles of the steps that had to do something; empty: the run was a no-op
    seconds: float


def lab_up(config: LabConfig, stacks: Sequence[Path] = (), out: TextIO = sys.stdout) -> UpResult:
    progress = Progress(out)
    system.require_root()
    with exclusive(config.state_dir):
        with progress.step("checks: tools, stacks, subnet, ports") as step:
            preflight(config)
            mirror: DebianMirror = debian_mirror()
            placement = place(list(stacks) or example_stacks())
            save_config(config)
            config.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            step.note(f"{len(placement.clients)} clients on {len(placement.hosts)} servers; mirror {mirror.url}")

        with progress.step("base image (debootstrap minbase, built once)") as step:
            was_cached = image.cached(config) is not None
            if not was_cached and any(config.hosts_dir.glob("*/upper")):
                # Overlays are only valid on the image they were made on.
                for name in hosts.host_names(config):
                    servers.take_down(config, name, remove_data=True)
            base = image.build(config, mirror)
            step.note(f"{'cached' if was_cached else 'built'} at {base.root}", changed=not was_cached)

        with progress.step(f"network: bridge {config.bridge} {config.bridge_address}, firewall") as step:
            changed = network.bridge_up(config)
            changed = network.firewall_up(config, service_ports(config)) or changed
            step.note(f"servers reach only {config.bridge_address} ports {service_ports(config)}", changed=changed)

        with progress.step("apt proxy (apt-cacher-ng)") as step:
            died = aptproxy.died(config)
            started = aptproxy.start(config, mirror)
            how = ("restarted (it had stopped)" if died else "started") if started else "running"
            step.note(f"{how} on {aptproxy.url(config)}", changed=started)

        with progress.step("servers (systemd-nspawn)") as step:
            stale = _outlived_s3(config)
            for name in stale:
                servers.take_down(config, name, remove_data=True)
            public_key = access.ensure_key(config)
            report = servers.bring_up(config, placement.hosts, base.root, public_key)
            files_changed = access.write_files(config, report.endpoints)
            _verify_ssh(config, [e.name for e in report.endpoints])
            state = _state(config, placement, report)
            state.save()
            parts = [", ".join(f"{e.name} {e.address}" for e in report.endpoints)]
            parts += [f"booted {', '.join(report.booted)}"] if report.booted else ["all were running"]
            parts += [f"recovered {', '.join(report.recovered)}"] if report.recovered else []
            parts += [f"restarted with new settings {', '.join(report.restarted)}"] if report.restarted else []
            parts += [f"removed {', '.join(report.removed)}"] if report.removed else []
            parts += [f"rebuilt {', '.join(stale)} (S3 had stopped and their backups with it)"] if stale else []
            step.note("; ".join(parts), changed=bool(report.booted or report.removed or files_changed))

        with progress.step("S3 (moto, IAM enforced, behind its gateway)") as step:
            stored = storage.bring_up(config, placement.clients)
            clients = tuple(
                LabClient(c.id, c.stack, c.server, c.bucket, stored.clients[c.id].env_file, c.restic_password_file)
                for c in state.clients
            )
            state = replace(
                state, clients=clients, s3_endpoint=stored.endpoint, s3_admin_env_file=stored.admin_env_file
            )
            state.save()
            buckets = ", ".join(c.bucket for c in stored.clients.values())
            again = f"; restarted {', '.join(stored.restarted)}" if stored.restarted else ""
            step.note(
                f"{'started' if stored.started else 'running'} at {stored.endpoint}; buckets: {buckets}{again}",
                changed=stored.started or bool(stored.restarted),
            )

        with progress.step("certificate authority (pebble, Let's Encrypt's test CA)") as step:
            ca = services.start_acme(config)
            root = acme_server.root_pem(ca)
            forgot = certificates.reissue_under(config, state, root)
            acme_server.resolve(ca, certificates.site_names(state, placement.clients))
            state = replace(
                state,
                acme_directory=ca.directory,
                acme_endpoint_ca_file=ca.endpoint_ca_file,
                acme_root_file=certificates.save_root(config, root),
            )
            state.save()
            again = f"; its root is new: {', '.join(forgot)} order their certificates again" if forgot else ""
            step.note(f"{'started' if ca.fresh else 'running'} at {ca.directory}{again}", changed=ca.fresh)

        with progress.step("Uptime Kuma and the alert receiver") as step:
            monitoring = services.bring_up(config, root)
            state = replace(
                state,
                kuma_url=monitoring.kuma_url,
                kuma_push_base_url=monitoring.push_base_url,
                kuma_credentials_file=monitoring.credentials_file,
                alert_url=monitoring.alert_url,
                alert_log=monitoring.alert_log,
            )
            state.save()
            launched = [
                name
                for name, yes in (("Kuma", monitoring.kuma_started), ("receiver", monitoring.receiver_started))
                if yes
            ]
            told = f"; restarted {', '.join(monitoring.restarted)}" if monitoring.restarted else ""
            told = told or (f"; started {', '.join(launched)}" if launched else "")
            step.note(
                f"Kuma at {monitoring.kuma_url} (servers push to {monitoring.push_base_url}); "
                f"alerts to {monitoring.alert_url}{told}",
                changed=bool(launched or monitoring.restarted),
            )

        with progress.step("onboarding: monitors in Kuma") as step:
            tokens, changes = onboard.sync_monitors(state, placement.clients)
            counts = ", ".join(f"{client} {n}" for client, n in changes.items())
            step.note(f"changes per client: {counts}", changed=any(changes.values()))

        with progress.step("onboarding: Ansible converges the servers") as step:
            # A fleet's first converge would have every server ask the apt proxy for the same indexes at once.
            missed: list[str] = []
            ran = onboard.converge_clients(
                config,
                state,
                placement.clients,
                tokens,
                progress.line,
                before=lambda servers: missed.extend(aptproxy.update_lists(state, servers)),
            )
            unwarmed = f"; apt-get update failed on {'; '.join(missed)}" if missed else ""
            step.note(
                f"converged {', '.join(ran.clients)}: {ran.changed} tasks changed in {ran.seconds:.0f}s{unwarmed}"
                if ran.clients
                else "every client's servers are converged for this plan and code",
                changed=ran.changed > 0,
            )

        with progress.step("onboarding: first backup of each site") as step:
            backed_up = onboard.first_backups(state, placement.clients)
            step.note(
                f"backed up {', '.join(backed_up)}" if backed_up else "every site has a backup", changed=bool(backed_up)
            )

        print(render_summary(summary(state, config)), file=out)
        verdict = f"changed: {', '.join(progress.changed)}" if progress.changed else "nothing to do (no-op)"
        print(f"lab up: {progress.total:.1f}s; {verdict}", file=out)
    return UpResult(state, progress.changed, progress.total)
