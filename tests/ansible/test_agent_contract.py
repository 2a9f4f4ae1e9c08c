"""The contract between the controller and the agent: the agent.toml `carestack configure` renders.

For every example client stack the controller renders the agent's config and
the agent's own parser reads it back: no errors, the plan's values in the
settings the agent runs on, and each value from one source (the controller
writes no key the agent has a default for).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from carestack_agent.config import AgentSettings, Config, Site, keys_of, parse

from infra import agent_config
from infra.plan import CarePlan, build_plan
from infra.spec import STACKS_DIR, ClientSpec, load_stack

S3 = "http://10.77.0.1:9000"
PUSH = "http://10.77.0.1:3001/api/push"


def client_plans() -> list[CarePlan]:
    specs = [load_stack(path) for path in sorted(STACKS_DIR.glob("Pulumi.*.yaml"))]
    return [build_plan(spec) for spec in specs if isinstance(spec, ClientSpec)]


PLANS = client_plans()


def rendered(plan: CarePlan) -> dict[str, Any]:
    text = agent_config.header(plan.hosting.server) + agent_config.client_fragment(
        plan, S3, {site.id: PUSH for site in plan.sites}
    )
    return tomllib.loads(text)


def as_toml(value: Any) -> Any:
    """A settings value as TOML spells it (Path as a string, tuples as arrays, settings objects as tables)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_toml(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [as_toml(item) for item in value]
    return str(value) if isinstance(value, Path) else value


def differences(written: dict[str, Any], read: dict[str, Any], path: str) -> list[str]:
    """Each key the controller wrote whose value the agent reads differently."""
    found = []
    for key, value in written.items():
        if isinstance(value, dict):
            found += differences(value, read[key], f"{path}.{key}")
        elif as_toml(read[key]) != value:
            found.append(f"{path}.{key}: wrote {value!r}, the agent reads {as_toml(read[key])!r}")
    return found


def test_every_example_client_stack_is_checked() -> None:
    assert {plan.client.id for plan in PLANS} >= {"bakery", "studio", "shop"}


@pytest.mark.parametrize("plan", PLANS, ids=[plan.client.id for plan in PLANS])
def test_the_agent_reads_back_every_value_the_controller_renders(plan: CarePlan) -> None:
    document = rendered(plan)
    config = parse(document)  # raises with every error otherwise
    read = {"agent": as_toml(config.agent), "sites": {i: as_toml(s) for i, s in config.sites.items()}}
    assert differences(document, read, "") == []
    assert set(config.sites) == {site.id for site in plan.sites}


@pytest.mark.parametrize("plan", PLANS, ids=[plan.client.id for plan in PLANS])
def test_the_agent_runs_on_the_plans_values(plan: CarePlan) -> None:
    config: Config = parse(rendered(plan))
    assert config.agent.host == plan.hosting.server
    for site in plan.sites:
        got = config.site(site.id)
        assert (got.domain, got.kind, str(got.root)) == (site.domain, site.kind, site.root)
        assert got.repository == f"s3:{S3}/{site.repository_path}"
        assert (got.database.name if got.database else None) == site.database
        assert {f"keep_{kind}": count for kind, count in plan.backup.keep.items()}.items() <= vars(
            got.retention
        ).items()
        jobs = got.jobs
        for job in ("backup", "check", "prune", "update", "scan", "perf"):
            assert getattr(jobs, f"{job}_timeout_seconds") == site.job(job).timeout_seconds, job
        assert jobs.restore_timeout_seconds == plan.backup.restore_timeout_seconds
        assert jobs.check_read_data_subsets == plan.backup.check_read_data_subsets
        updates = got.updates
        assert updates.providers == site.providers
        assert (updates.apt_policy, updates.wordpress_policy) == (
            plan.updates.apt_policy,
            plan.updates.wordpress_policy,
        )
        assert (updates.rollback, updates.probe_slowdown_limit) == (
            plan.updates.rollback,
            plan.updates.probe_slowdown_limit,
        )
        perf = plan.performance
        assert (got.perf.requests_per_page, got.perf.limit_percent, got.perf.floor_ms) == (
            perf.requests_per_page,
            perf.limit_percent,
            perf.floor_ms,
        )
        assert (got.perf.baseline_weeks, got.perf.keep_days) == (perf.baseline_weeks, perf.keep_days)
        assert [(c.path, c.keyword, c.status) for c in got.checks] == [
            (c.path, c.keyword, c.status) for c in site.checks
        ]


def _keys(cls: type, table: dict[str, Any], path: str) -> list[str]:
    """The keys of a rendered table the agent has a default for (None: the key is optional, not defaulted)."""
    found = []
    for k in keys_of(cls):
        if k.name not in table:
            continue
        if k.subtable is not None and not k.is_array:
            found += _keys(k.subtable, table[k.name], f"{path}.{k.name}")
        elif k.subtable is not None:
            for i, item in enumerate(table[k.name]):
                found += _keys(k.subtable, item, f"{path}.{k.name}[{i}]")
        elif not k.required and k.default is not None:
            found.append(f"{path}.{k.name}")
    return found


@pytest.mark.parametrize("plan", PLANS, ids=[plan.client.id for plan in PLANS])
def test_the_controller_restates_no_agent_default(plan: CarePlan) -> None:
    """One source per value: a key with an agent-side default is the agent's; the controller leaves it out."""
    document = rendered(plan)
    restated = _keys(AgentSettings, document["agent"], "agent")
    for site_id, table in document["sites"].items():
        restated += _keys(Site, table, f"sites.{site_id}")
    assert restated == []
