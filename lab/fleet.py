"""`carestack lab fleet`: an agency-sized set of valid stack files for the lab.

One platform stack (shared hosts and the standby) and client stacks of every tier:
premium clients on their own servers (WooCommerce and WordPress shops), standard and
basic clients on the shared hosts (WordPress, plain PHP and static sites), each site
with the checks an agency would set up for its kind. The layout is derived from the
two numbers alone, so the same arguments always write the same files, and every file
is validated and placed with the lab's own loader before the command says it is done.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.spec import Catalog, load_catalog
from lab.errors import LabError

PLATFORM_FILE = "Pulumi.platform.yaml"
# The examples' documentation range: the lab sets its own addresses; production validation warns.
ADMIN_CIDR = "198.51.100.0/28"
PLATFORM_STACK = "agency/carestack/platform"
TIME_ZONES = ("Europe/Berlin", "Europe/Amsterdam", "Europe/Vienna", "Europe/Copenhagen")

# Short company words for client ids (a letter, then up to 11 letters or digits).
_CLIENT_WORDS = (
    "alder", "birch", "cedar", "dune", "elm", "fjord", "grove", "heath", "iris", "juniper",
    "kelp", "linden", "maple", "nettle", "oak", "pine", "quartz", "rowan", "sage", "thistle",
    "umber", "violet", "willow", "yarrow", "zinnia", "amber", "basalt", "clover", "delta", "ember",
)  # fmt: skip

# Per kind: the pages an agency checks (path, keyword), most important first.
_CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "woocommerce": (
        ("/", "Fresh from our workshop"),
        ("/cart/", "Your cart is currently empty"),
        ("/checkout/", "Billing details"),
    ),
    "wordpress": (("/", "Welcome to our studio"), ("/contact/", "Write to us")),
    "php": (("/", "Customer portal"), ("/health.php", "OK")),
    "static": (("/", "Opening hours"),),
}
# Site names (the site id's second half) per position within a client.
_SITE_NAMES = ("web", "shop", "portal", "docs", "blog", "events")
# The kinds a client's sites cycle through, per tier.
_KINDS = {
    "premium": ("woocommerce", "wordpress"),
    "standard": ("wordpress", "php", "static"),
    "basic": ("wordpress", "static"),
}
# Shared clients fill a shared host in this order of sizes (sites per client) and tiers.
_SHARED_PATTERN = ((3, "standard"), (1, "basic"), (2, "standard"), (1, "basic"))


@dataclass(frozen=True)
class FleetClient:
    id: str
    tier: str
    kinds: tuple[str, ...]
    shared_host: str | None  # None: its own server


@dataclass(frozen=True)
class FleetLayout:
    shared_hosts: tuple[str, ...]
    clients: tuple[FleetClient, ...] = field(default_factory=tuple)

    @property
    def servers(self) -> int:
        return len(self.shared_hosts) + 1 + sum(1 for c in self.clients if c.shared_host is None)

    @property
    def sites(self) -> int:
        return sum(len(c.kinds) for c in self.clients)


def _client_ids() -> Iterator[str]:
    round_ = 0
    while True:
        for word in _CLIENT_WORDS:
            yield word if round_ == 0 else f"{word}{round_ + 1}"
        round_ += 1


def layout(servers: int, sites: int) -> FleetLayout:
    """Which clients, tiers and sites a fleet of `servers` servers and `sites` sites has.

    One server is the standby; of the rest, two thirds are premium clients' own servers
    and one third shared hosts. Every premium client has a site, and so has every shared host;
    half the premium clients get a second site when there are sites to spare.
    """
    if servers < 2:
        raise LabError(f"--servers {servers}: a fleet needs at least 2 servers (a shared host and the standby)")
    placeable = servers - 1
    dedicated = placeable * 2 // 3 if placeable >= 3 else 0
    shared = placeable - dedicated
    if sites < dedicated + shared:
        raise LabError(
            f"--sites {sites}: {servers} servers need at least {dedicated + shared} sites "
            f"(one per premium client's server and one per shared host)"
        )
    spare = sites - dedicated - shared
    second_sites = min(dedicated // 2, max(0, spare - 2 * shared))
    ids = _client_ids()
    clients: list[FleetClient] = []
    for n in range(dedicated):
        count = 2 if n < second_sites else 1
        clients.append(FleetClient(next(ids), "premium", _kinds("premium", n, count), None))
    shared_names = tuple(f"shared-{n + 1}" for n in range(shared))
    shared_sites = sites - dedicated - second_sites
    per_host = [shared_sites // shared + (1 if n < shared_sites % shared else 0) for n in range(shared)]
    position = 0
    per_tier = {"standard": 0, "basic": 0}  # so each tier's clients cycle through its kinds
    for host, budget in zip(shared_names, per_host, strict=True):
        while budget > 0:
            size, tier = _SHARED_PATTERN[position % len(_SHARED_PATTERN)]
            size = min(size, budget)
            clients.append(FleetClient(next(ids), tier, _kinds(tier, per_tier[tier], size), host))
            per_tier[tier] += size
            budget -= size
            position += 1
    return FleetLayout(shared_names, tuple(clients))


def _kinds(tier: str, offset: int, count: int) -> tuple[str, ...]:
    cycle = _KINDS[tier]
    return tuple(cycle[(offset + n) % len(cycle)] for n in range(count))


def platform_stack(fleet: FleetLayout) -> dict[str, Any]:
    return {
        "config": {
            "aws:region": "eu-central-1",
            "carestack:role": "platform",
            "carestack:admin_cidr": ADMIN_CIDR,
            "carestack:shared_hosts": [
                {"name": name, "instance_type": "t3.large", "volume_gb": 80} for name in fleet.shared_hosts
            ],
            "carestack:standby": {"name": "standby-1", "instance_type": "t3.large", "volume_gb": 200},
        }
    }


def client_stack(client: FleetClient, number: int, pages_per_site: int) -> dict[str, Any]:
    title = client.id.rstrip("0123456789").capitalize()
    domain = f"{client.id}.example"
    sites = []
    for n, kind in enumerate(client.kinds):
        name = _SITE_NAMES[n % len(_SITE_NAMES)]
        host = f"www.{domain}" if n == 0 else f"{name}.{domain}"
        sites.append(
            {
                "domain": host,
                "name": name,
                "kind": kind,
                "checks": [{"path": path, "keyword": keyword} for path, keyword in _CHECKS[kind][:pages_per_site]],
            }
        )
    config: dict[str, Any] = {
        "aws:region": "eu-central-1",
        "carestack:client": {"id": client.id, "name": f"{title} {('Studio', 'Shop', 'Works')[number % 3]}"},
        "carestack:tier": client.tier,
        "carestack:timezone": TIME_ZONES[number % len(TIME_ZONES)],
        "carestack:admin_cidr": ADMIN_CIDR,
    }
    if client.shared_host is not None:
        config["carestack:platform_stack"] = PLATFORM_STACK
        config["carestack:shared_host"] = client.shared_host
    config["carestack:fee"] = {
        "monthly": {"basic": 60, "standard": 180, "premium": 650}[client.tier],
        "currency": "EUR",
    }
    config["carestack:contacts"] = [
        {
            "name": f"{title} owner",
            "role": "owner",
            "email": f"owner@{domain}",
            "phone": f"+49305550{number:03d}",
            "webhook": f"https://alerts.{domain}/hooks/carestack",
        }
    ]
    config["carestack:sites"] = sites
    return {"config": config}


def stack_files(fleet: FleetLayout, catalog: Catalog) -> dict[str, str]:
    """File name -> YAML text of every stack of the fleet; each site checks as many of its kind's
    pages as its tier allows."""
    missing = sorted({c.tier for c in fleet.clients} - set(catalog.tiers))
    if missing:
        raise LabError(
            f"{catalog.source}: the fleet needs the tiers {', '.join(missing)}; the catalog has "
            f"{', '.join(catalog.tiers)}"
        )
    header = "# Written by `carestack lab fleet`: a generated lab fleet, not a real client.\n"
    files = {PLATFORM_FILE: header + yaml.safe_dump(platform_stack(fleet), sort_keys=False, allow_unicode=True)}
    for number, client in enumerate(fleet.clients):
        pages = catalog.tiers[client.tier].monitoring.pages_per_site
        text = yaml.safe_dump(client_stack(client, number, pages), sort_keys=False, allow_unicode=True)
        files[f"Pulumi.{client.id}.yaml"] = header + text
    return files


@dataclass(frozen=True)
class FleetSummary:
    servers: int
    sites: int
    clients_per_tier: dict[str, int]
    monitors: int
    files: tuple[Path, ...]


def write_fleet(out: Path, servers: int, sites: int) -> FleetSummary:
    """Write the fleet's stacks into `out`, checked first with the lab's own loader and placement.

    `out` may be new or hold an earlier fleet (its files are replaced, stale ones removed); stack
    files this command did not write are never touched, and their presence is an error.
    """
    from lab.placement import place

    fleet = layout(servers, sites)
    files = stack_files(fleet, load_catalog())
    with tempfile.TemporaryDirectory() as scratch:
        for name, text in files.items():
            (Path(scratch) / name).write_text(text)
        placement = place(sorted(Path(scratch).iterdir()))
    existing = list(out.glob("Pulumi.*.yaml")) if out.is_dir() else []
    foreign = sorted(p.name for p in existing if not _generated(p))
    if foreign:
        raise LabError(f"{out}: holds stack files carestack lab fleet did not write: {', '.join(foreign)}")
    out.mkdir(parents=True, exist_ok=True)
    for stale in existing:
        if stale.name not in files:
            stale.unlink()
    paths = []
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        paths.append(path)
    tiers: dict[str, int] = {}
    for client in fleet.clients:
        tiers[client.tier] = tiers.get(client.tier, 0) + 1
    monitors = sum(len(site.checks) + len(site.jobs) for c in placement.clients for site in c.plan.sites)
    return FleetSummary(len(placement.hosts), fleet.sites, tiers, monitors, tuple(paths))


def _generated(path: Path) -> bool:
    with path.open() as handle:
        return handle.readline().startswith("# Written by `carestack lab fleet`")
