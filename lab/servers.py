"""All the lab's servers at once: bring the placed ones up, take any others down.

Each step checks before it acts, so a running server is left alone (the no-op
`lab up`), and whatever a crashed run left half-done — a namespace without its
veth, a mount without its guest, a guest without its supervisor — is repaired.
Addresses are kept per server across runs (`host.json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lab import access, hosts, image, network
from lab.config import LabConfig
from lab.errors import LabError
from lab.placement import PlacedHost
from lab.state import LabState


@dataclass(frozen=True)
class ServerReport:
    endpoints: list[access.Endpoint]
    booted: list[str]
    recovered: list[str]  # servers whose previous run had left them half up
    restarted: list[str]  # servers booted again with the lab's current nspawn settings
    removed: list[str]


def _addresses(config: LabConfig, placed: Sequence[PlacedHost]) -> dict[str, str]:
    """Each server's address: the one it had, else the lowest free one in order."""
    kept: dict[str, str] = {}
    for host in placed:
        record = hosts.load_record(config, host.name)
        if record and isinstance(record.get("address"), str):
            kept[host.name] = str(record["address"])
    taken = set(kept.values())
    index = 0
    for host in placed:
        if host.name in kept:
            continue
        while config.host_address(index) in taken:
            index += 1
        kept[host.name] = config.host_address(index)
        taken.add(kept[host.name])
    return kept


def host_link(config: LabConfig, h: hosts.Host) -> network.HostLink:
    return network.host_link(config, h.name, h.address)


def take_down(config: LabConfig, name: str, *, remove_data: bool) -> bool:
    """Stop a server and remove its mount and network; True if it was running."""
    record = hosts.load_record(config, name) or {}
    h = hosts.host(config, name, str(record.get("address", "0.0.0.0")))
    was_running = hosts.stop(h)
    hosts.unmount(h)
    if "address" in record:
        network.remove_host_network(host_link(config, h))
    if remove_data:
        hosts.remove(h)
    return was_running


def bring_up(config: LabConfig, placed: Sequence[PlacedHost], image_root: Path, public_key: str) -> ServerReport:
    addresses = _addresses(config, placed)
    wanted = {host.name for host in placed}
    removed = [name for name in hosts.host_names(config) if name not in wanted]
    for name in removed:  # from an earlier `lab up` with other stacks
        take_down(config, name, remove_data=True)

    apt_proxy = f"http://{config.bridge_address}:{config.apt_port}"
    booting: list[hosts.Host] = []
    recovered: list[str] = []
    restarted: list[str] = []
    endpoints: list[access.Endpoint] = []
    for placed_host in placed:
        h = hosts.host(config, placed_host.name, addresses[placed_host.name])
        rebuilt_network = network.host_network_up(config, host_link(config, h))
        hosts.mount(h, image_root)
        fresh = hosts.personalize(h, authorized_key=public_key, apt_proxy=apt_proxy)
        link = host_link(config, h)
        if hosts.running(h) and (rebuilt_network or not hosts.booted_as_wanted(h, link)):
            hosts.stop(h)  # its namespace was rebuilt under it, or the lab boots servers differently now
            restarted.append(h.name)
        if not hosts.running(h):
            if not fresh and h.name not in restarted:  # it existed but did not run: a crash or a reboot
                recovered.append(h.name)
            hosts.stop(h)  # leftovers of a crashed run: orphaned guest, lone nspawn
            hosts.boot(h, link)
            booting.append(h)
        machine_id = hosts.machine_id(h)
        if machine_id is None:
            raise LabError(f"server {h.name}: no machine-id in {h.upper}")
        hosts.save_record(h, {"name": h.name, "address": h.address, "role": placed_host.role})
        endpoints.append(access.Endpoint(h.name, h.address, placed_host.role, placed_host.clients, hosts.host_key(h)))
    for h in booting:
        hosts.wait_ssh(h)
    return ServerReport(endpoints, [h.name for h in booting], recovered, restarted, removed)


def machine_ids(config: LabConfig, names: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in names:
        record = hosts.load_record(config, name) or {}
        machine_id = hosts.machine_id(hosts.host(config, name, str(record.get("address", ""))))
        if machine_id:
            found[name] = machine_id
    return found


def power_off(config: LabConfig, name: str) -> bool:
    """Stop one server entirely, as when it is lost (its disk and network stay); True if it was running."""
    record = hosts.load_record(config, name)
    if record is None:
        raise LabError(f"no lab server {name!r}")
    return hosts.stop(hosts.host(config, name, str(record["address"])))


def power_on(config: LabConfig, name: str) -> float:
    """Boot a stopped server again with its disk as it was; seconds until it answers ssh."""
    record = hosts.load_record(config, name)
    if record is None:
        raise LabError(f"no lab server {name!r}")
    h = hosts.host(config, name, str(record["address"]))
    if not hosts.running(h):
        hosts.boot(h, host_link(config, h))
    return hosts.wait_ssh(h)


def rebuild_fresh(config: LabConfig, state: LabState, name: str) -> LabState:
    """`name` as a new cloud server comes: its disk removed, booted again from the cached base image and
    never converged (no packages, no agent). The lab's records follow it (its ssh host key and machine
    id); its clients' next converge, or the next `lab up`, starts it from nothing."""
    cached = image.cached(config)
    if cached is None:
        raise LabError("no cached base image to rebuild a server from (run `carestack lab up` first)")
    if name not in {h.name for h in state.hosts}:
        raise LabError(f"no lab server {name!r}")
    take_down(config, name, remove_data=True)
    placed = [PlacedHost(h.name, h.role, h.clients) for h in state.hosts]
    report = bring_up(config, placed, cached.root, access.ensure_key(config))
    access.write_files(config, report.endpoints)
    machine_id = machine_ids(config, [name])[name]
    rebuilt = replace(
        state, hosts=tuple(replace(h, machine_id=machine_id) if h.name == name else h for h in state.hosts)
    )
    rebuilt.save()
    return rebuilt
