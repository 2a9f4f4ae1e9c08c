"""The lab's network: a bridge, one network namespace per host, firewall rules.

    machine ── csbr0 10.77.0.1/24 ──┬── veth ── netns csbr0-shared-1: eth0 10.77.0.10, default via .1
                                    └── veth ── netns csbr0-standby-1: eth0 10.77.0.11 ...

Hosts reach the machine's lab services on the bridge address and each other;
nothing else. Two iptables chains of our own hold the rules (so removing them
is exact): `<LAB>-FWD` rejects anything forwarded out of or into the bridge,
`<LAB>-IN` lets hosts reach only the lab's service ports on the machine.
Forwarding is switched on for the bridge alone, after the rules are in place,
so a host's packet to the outside meets our REJECT (and an answer) rather
than vanishing; the machine's global forwarding setting is left alone.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig
from lab.system import ip_json, mounted, run

NETNS_DIR = Path("/run/netns")
# A carestack lab's jump rule (`-i csbr0 -j CSBR0-FWD`): it only concerns that lab's bridge.
_LAB_JUMP = re.compile(r"^-[io] (?P<bridge>\S+) -j (?P=bridge)-(FWD|IN)$", re.IGNORECASE)
GUEST_IFACE = "eth0"


@dataclass(frozen=True)
class HostLink:
    netns: str
    veth: str
    address: str


def host_link(config: LabConfig, name: str, address: str) -> HostLink:
    octet = address.rsplit(".", 1)[1]
    return HostLink(netns=f"{config.lab_id}-{name}", veth=f"{config.lab_id}h{octet}", address=address)


def _chain(config: LabConfig, kind: str) -> str:
    return f"{config.lab_id.upper()}-{kind}"


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


# -- bridge and firewall ------------------------------------------------------------------


def bridge_up(config: LabConfig) -> bool:
    """Create the bridge with its address; True if anything had to be done."""
    bridge, prefix = config.bridge, config.network.prefixlen
    what = f"creating the lab bridge {bridge}"
    changed = False
    if not _link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"], what=what)
        changed = True
    addresses = [a["local"] for link in ip_json("-4", "addr", "show", "dev", bridge) for a in link["addr_info"]]
    if config.bridge_address not in addresses:
        run(["ip", "addr", "add", f"{config.bridge_address}/{prefix}", "dev", bridge], what=what)
        changed = True
    if not _flag_up(bridge):
        run(["ip", "link", "set", bridge, "up"], what=what)
        changed = True
    return changed


def _flag_up(link: str) -> bool:
    return bool(int(Path(f"/sys/class/net/{link}/flags").read_text(), 16) & 0x1)  # IFF_UP


def bridge_present(config: LabConfig) -> bool:
    return _link_exists(config.bridge)


def remove_bridge(config: LabConfig) -> None:
    if _link_exists(config.bridge):
        run(["ip", "link", "del", config.bridge], what=f"removing the lab bridge {config.bridge}")


def _iptables(*args: str) -> str:
    return run(["iptables", "-w", *args], what="setting the lab's firewall rules")


def _iptables_ok(*args: str) -> bool:
    """True if iptables succeeds: `-C` (rule exists) and `-L` (chain exists) answer by exit status."""
    return subprocess.run(["iptables", "-w", *args], capture_output=True, check=False).returncode == 0


def _jumps(config: LabConfig) -> list[tuple[str, list[str]]]:
    bridge = config.bridge
    fwd, inp = _chain(config, "FWD"), _chain(config, "IN")
    return [
        ("FORWARD", ["-i", bridge, "-j", fwd]),
        ("FORWARD", ["-o", bridge, "-j", fwd]),
        ("INPUT", ["-i", bridge, "-j", inp]),
    ]


def firewall_rules(config: LabConfig, service_ports: Sequence[int]) -> list[list[str]]:
    """Each chain's rules, as iptables arguments after `-A`."""
    fwd, inp = _chain(config, "FWD"), _chain(config, "IN")
    ports = ",".join(str(p) for p in sorted(service_ports))
    return [
        # Traffic between two hosts stays on the bridge and is never routed; anything routed is refused.
        [fwd, "-j", "REJECT"],
        # Replies to the machine's own connections to hosts (ssh, Kuma's checks) arrive here too.
        [inp, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
        [inp, "-d", config.bridge_address, "-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "ACCEPT"],
        [inp, "-d", config.bridge_address, "-p", "icmp", "-j", "ACCEPT"],
        [inp, "-j", "REJECT"],
    ]


def _rules_of(chain: str) -> list[str]:
    """A chain's rules as `iptables -S` prints them, without the `-A <chain> ` prefix."""
    return [line.split(" ", 2)[2] for line in _iptables("-S", chain).splitlines() if line.startswith("-A ")]


def _firewall_in_place(config: LabConfig, rules: list[list[str]]) -> bool:
    """Both chains hold exactly our rules, and our jumps come first in FORWARD and INPUT."""
    for chain in (_chain(config, "FWD"), _chain(config, "IN")):
        if not _iptables_ok("-n", "-L", chain) or len(_rules_of(chain)) != sum(r[0] == chain for r in rules):
            return False
    if not all(_iptables_ok("-C", *rule) for rule in rules):
        return False
    for builtin in ("FORWARD", "INPUT"):
        ours = {" ".join(spec) for chain, spec in _jumps(config) if chain == builtin}
        # Only other labs' jumps (which match their own bridge alone) may come before ours.
        ahead = [rule for rule in _rules_of(builtin) if not _LAB_JUMP.match(rule)]
        first = [rule for rule in _rules_of(builtin) if rule in ours or rule in ahead][: len(ours)]
        if set(first) != ours:
            return False
    return True


def firewall_up(config: LabConfig, service_ports: Sequence[int]) -> bool:
    """Write both chains and hook them in first place unless they are so already; True if changed."""
    rules = firewall_rules(config, service_ports)
    if _firewall_in_place(config, rules):
        return False
    for chain in (_chain(config, "FWD"), _chain(config, "IN")):
        if not _iptables_ok("-n", "-L", chain):
            _iptables("-N", chain)
        _iptables("-F", chain)
    for rule in rules:
        _iptables("-A", *rule)
    for chain, spec in _jumps(config):
        while _iptables_ok("-C", chain, *spec):  # re-hook in first place
            _iptables("-D", chain, *spec)
        _iptables("-I", chain, "1", *spec)
    # Only now, with the REJECT in place, may packets from the bridge be routed at all.
    Path(f"/proc/sys/net/ipv4/conf/{config.bridge}/forwarding").write_text("1\n")
    return True


def firewall_present(config: LabConfig) -> list[str]:
    """Our chains and jump rules that exist, for status and the nothing-left-behind check."""
    marker = _chain(config, "")
    return [line for line in _iptables("-S").splitlines() if marker in line]


def firewall_down(config: LabConfig) -> None:
    for chain, spec in _jumps(config):
        while _iptables_ok("-C", chain, *spec):
            _iptables("-D", chain, *spec)
    for chain in (_chain(config, "FWD"), _chain(config, "IN")):
        if _iptables_ok("-n", "-L", chain):
            _iptables("-F", chain)
            _iptables("-X", chain)


# -- per-host namespaces ---------------------------------------------------------------------


def netns_path(link: HostLink) -> Path:
    return NETNS_DIR / link.netns


def netns_present(link: HostLink) -> bool:
    return mounted(netns_path(link))


def _link_ok(config: LabConfig, link: HostLink) -> bool:
    if not netns_present(link) or not _link_exists(link.veth):
        return False
    master = Path(f"/sys/class/net/{link.veth}/master")
    if not master.exists() or master.resolve().name != config.bridge:
        return False
    inside = ip_json("-n", link.netns, "-4", "addr", "show", "dev", GUEST_IFACE)
    have = [a["local"] for entry in inside for a in entry.get("addr_info", [])]
    routes = ip_json("-n", link.netns, "-4", "route", "show", "default")
    return have == [link.address] and any(r.get("gateway") == config.bridge_address for r in routes)


def host_network_up(config: LabConfig, link: HostLink) -> bool:
    """Give the host its namespace, veth and address; True if anything had to be (re)built."""
    if _link_ok(config, link):
        return False
    remove_host_network(link)  # half-built or stale from a crash: start clean
    what = f"creating the network of {link.netns}"
    prefix = config.network.prefixlen
    run(["ip", "netns", "add", link.netns], what=what)
    run(["ip", "link", "add", link.veth, "type", "veth", "peer", "name", GUEST_IFACE, "netns", link.netns], what=what)
    run(["ip", "link", "set", link.veth, "master", config.bridge, "up"], what=what)
    inside = ["ip", "-n", link.netns]
    run([*inside, "link", "set", "lo", "up"], what=what)
    run([*inside, "addr", "add", f"{link.address}/{prefix}", "dev", GUEST_IFACE], what=what)
    run([*inside, "link", "set", GUEST_IFACE, "up"], what=what)
    run([*inside, "route", "add", "default", "via", config.bridge_address], what=what)
    return True


def remove_host_network(link: HostLink) -> None:
    if _link_exists(link.veth):
        run(["ip", "link", "del", link.veth], what=f"removing {link.veth}")
    remove_netns(link.netns)


def remove_netns(name: str) -> None:
    path = NETNS_DIR / name
    if mounted(path):
        run(["ip", "netns", "del", name], what=f"removing the network namespace {name}")
    elif path.exists():  # a namespace file left without its mount (e.g. after a reboot)
        path.unlink()


def lab_netns(config: LabConfig) -> list[str]:
    """Namespaces of this lab that exist (by name prefix), for down and status."""
    if not NETNS_DIR.exists():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(f"{config.lab_id}-"))


def lab_links(config: LabConfig) -> list[str]:
    prefix = f"{config.lab_id}h"
    return sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith(prefix))
