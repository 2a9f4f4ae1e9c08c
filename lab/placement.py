"""Which servers the lab boots, from the stacks: the same placement as production.

The platform stack's shared hosts and its standby, and one server per client
whose plan says dedicated (`plan.hosting.server`). A shared client's server
must be one of the platform's shared hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, PlatformSpec, SpecError, load_catalog, load_stack
from lab.errors import LabError


@dataclass(frozen=True)
class PlacedHost:
    name: str
    role: str  # "shared" | "standby" | "dedicated"
    clients: tuple[str, ...]


@dataclass(frozen=True)
class PlacedClient:
    stack: Path
    plan: CarePlan

    @property
    def id(self) -> str:
        return self.plan.client.id

    @property
    def server(self) -> str:
        return self.plan.hosting.server


@dataclass(frozen=True)
class Placement:
    platform: Path
    hosts: tuple[PlacedHost, ...]
    clients: tuple[PlacedClient, ...]
    standby: str


def load_stacks(paths: Sequence[Path]) -> tuple[PlatformSpec, list[ClientSpec]]:
    """Validate every stack file (all errors at once) and split platform from clients."""
    catalog = load_catalog()
    errors: list[str] = []
    platforms: list[PlatformSpec] = []
    clients: list[ClientSpec] = []
    for path in paths:
        try:
            spec = load_stack(Path(path), catalog)
        except SpecError as exc:
            errors.append(str(exc))
            continue
        if isinstance(spec, PlatformSpec):
            platforms.append(spec)
        else:
            clients.append(spec)
    if errors:
        raise LabError("invalid stack files:\n" + "\n".join(errors))
    if len(platforms) != 1:
        found = ", ".join(p.source for p in platforms) or "none"
        raise LabError(
            f"the lab needs exactly one platform stack (carestack:role: platform) among the stack files; found {found}"
        )
    return platforms[0], clients


def place(paths: Sequence[Path]) -> Placement:
    platform, specs = load_stacks(paths)
    plans = [(Path(spec.source), build_plan(spec)) for spec in specs]
    shared_names = [h.name for h in platform.stack.shared_hosts]
    standby = platform.stack.standby.name
    problems: list[str] = []
    seen: dict[str, Path] = {}
    for source, plan in plans:
        client = plan.client.id
        if client in seen:
            problems.append(f"{source}: carestack:client.id: {client!r} is already the client of {seen[client]}")
        seen.setdefault(client, source)
        server = plan.hosting.server
        if plan.hosting.mode == "shared" and server not in shared_names:
            problems.append(
                f"{source}: carestack:shared_host: {server!r} is not a shared host of {platform.source} "
                f"(shared hosts: {', '.join(shared_names)})"
            )
        if plan.hosting.mode == "dedicated" and server in [*shared_names, standby]:
            problems.append(f"{source}: the dedicated server {server!r} has the name of a platform host")
    if problems:
        raise LabError("the stacks do not fit together:\n  " + "\n  ".join(problems))

    def clients_on(name: str) -> tuple[str, ...]:
        return tuple(plan.client.id for _, plan in plans if plan.hosting.server == name)

    hosts = [PlacedHost(name, "shared", clients_on(name)) for name in shared_names]
    hosts.append(PlacedHost(standby, "standby", ()))
    hosts += [
        PlacedHost(plan.hosting.server, "dedicated", (plan.client.id,))
        for _, plan in plans
        if plan.hosting.mode == "dedicated"
    ]
    return Placement(Path(platform.source), tuple(hosts), tuple(PlacedClient(s, p) for s, p in plans), standby)
