"""The example catalog with one agency key changed, and the studio example client's plan and host
variables built from it: what the tests of the agency's settings (feeds, checksums, ACME) start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.ansible_vars import Client, ClientSecrets, HostAccess, Realization, check_realization
from infra.ansible_vars import inventory as build_inventory
from infra.plan import CarePlan, build_plan
from infra.spec import CATALOG_PATH, ClientSpec, load_catalog, parse_stack

STUDIO_STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.studio.yaml"


def catalog_with(tmp_path: Path, key: str, value: Any) -> Path:
    """A copy of the example catalog whose `agency.<key>` is `value`."""
    document = yaml.safe_load(CATALOG_PATH.read_text())
    document["agency"][key] = value
    path = tmp_path / "tiers.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def studio_plan(catalog: Path | None = None) -> CarePlan:
    document = yaml.safe_load(STUDIO_STACK.read_text())
    config = {k.split(":", 1)[1]: v for k, v in document["config"].items() if k.startswith("carestack:")}
    spec = parse_stack("studio", config, load_catalog(catalog) if catalog else None)
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def studio_host_vars(plan: CarePlan, vulnerability_feed: str | None = None) -> dict[str, Any]:
    """The host variables of the plan's server, after the checks a run makes before anything changes."""
    realization = Realization(
        hosts={plan.hosting.server: HostAccess("10.77.0.10")},
        s3_endpoint="http://10.77.0.1:9000",
        vulnerability_feed=vulnerability_feed,
    )
    clients = [Client(plan, ClientSecrets("pw", "key", "secret"))]
    check_realization(clients, realization)
    found: dict[str, Any] = build_inventory(clients, realization)["all"]["children"]["carestack"]["hosts"][
        plan.hosting.server
    ]
    return found
