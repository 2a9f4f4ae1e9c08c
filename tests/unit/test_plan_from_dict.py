"""CarePlan.from_dict is the exact inverse of to_dict, through JSON (what the Pulumi provider receives)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, example_stacks, load_stack

CLIENT_STACKS = [p for p in example_stacks() if isinstance(load_stack(p), ClientSpec)]


@pytest.mark.parametrize("stack", CLIENT_STACKS, ids=lambda p: p.name)
def test_plan_survives_json(stack: Path) -> None:
    spec = load_stack(stack)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    assert CarePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
