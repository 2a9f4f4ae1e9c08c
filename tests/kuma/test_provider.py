"""The Pulumi dynamic provider's methods, called directly against the real Kuma (under mocks create() never runs)."""

from __future__ import annotations

import json
from pathlib import Path

import dill  # type: ignore[import-untyped]
import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.dynamic.dynamic import serialize_provider

from infra.kuma_client import connect
from infra.kuma_provider import KumaMonitorsProvider
from tests.kuma.conftest import Kuma, Receiver
from tests.kuma.support import client_plan, loopback, owned, write_yaml

pytestmark = pytest.mark.kuma


@pytest.fixture
def provider(kuma: Kuma, receiver: Receiver, tmp_path: Path) -> KumaMonitorsProvider:
    alerting = write_yaml(tmp_path / "alerting.yaml", {"receiver_url": receiver.url})
    raw = {
        "carestack:kuma_url": kuma.login.url,
        "carestack:kuma_username": kuma.login.username,
        "carestack:kuma_password": kuma.login.password,
        "carestack:kuma_alerting_file": str(alerting),
    }
    # What the engine does: unpickle the provider, then configure it.
    unpickled: KumaMonitorsProvider = dill.loads(dill.dumps(KumaMonitorsProvider(), recurse=True))
    unpickled.configure(ConfigureRequest(Config(raw, "carestack")))
    return unpickled


def props(client_id: str, **change: object) -> dict[str, object]:
    plan = client_plan("studio", client_id, (lambda c: c.update(change)) if change else None)
    return {"plan_json": json.dumps(plan.to_dict()), "site_addresses": loopback(plan)}


def test_provider_lifecycle(kuma: Kuma, provider: KumaMonitorsProvider) -> None:
    inputs = props("pulumi")
    assert provider.check({}, inputs).failures == []

    created = provider.create(inputs)
    assert created.id == "kuma-monitors-pulumi" and created.outs is not None
    outs = created.outs
    tokens = outs["push_tokens"]
    with connect(kuma.login) as session:
        monitors = owned(session, "pulumi")
    assert {(site, job): token for site, jobs in tokens.items() for job, token in jobs.items()} == {
        (m["name"].split(" · ")[0], key.split(" job ")[1]): m["pushToken"]
        for key, m in monitors.items()
        if " job " in key
    }

    assert provider.diff(created.id, outs, inputs).changes is False
    upgraded = props("pulumi", tier="premium")
    diff = provider.diff(created.id, outs, upgraded)
    assert diff.changes is True and not diff.replaces
    assert provider.diff(created.id, outs, props("other")).replaces == ["plan_json"]

    updated = provider.update(created.id, outs, upgraded)
    assert updated.outs is not None
    new_tokens = updated.outs["push_tokens"]
    for site, jobs in tokens.items():  # tokens survive updates; premium adds its standby's restore drill
        assert {job: new_tokens[site][job] for job in jobs} == jobs
        assert set(new_tokens[site]) - set(jobs) == {"drill"}
    with connect(kuma.login) as session:
        after = owned(session, "pulumi")
    assert {m["id"] for m in monitors.values()} <= {m["id"] for m in after.values()}
    assert {key for key in after if key not in monitors} == {f"{site} job drill" for site in tokens}

    # A monitor deleted by hand is drift: refresh (read) records it, the next up repairs it.
    with connect(kuma.login) as session:
        session.api.delete_monitor(next(iter(after.values()))["id"])
    read = provider.read(created.id, updated.outs)
    assert read.outs is not None and read.outs["drift"]
    assert provider.diff(created.id, read.outs, upgraded).changes is True
    repaired = provider.update(created.id, read.outs, upgraded)
    assert repaired.outs is not None and repaired.outs["drift"] == []
    assert provider.read(created.id, repaired.outs).outs == repaired.outs

    provider.delete(created.id, repaired.outs)
    with connect(kuma.login) as session:
        assert owned(session, "pulumi") == {}
        assert not [n for n in session.notifications() if n["name"].startswith("carestack pulumi · ")]
        assert not [m for m in session.maintenances() if m["title"].startswith("carestack pulumi · ")]
        assert session.status_page("carestack-pulumi") is None


def test_provider_check_names_bad_inputs(provider: KumaMonitorsProvider) -> None:
    failures = provider.check({}, {"plan_json": "{}", "site_addresses": ["not", "a", "mapping"]}).failures
    assert [f.property for f in failures] == ["plan_json", "site_addresses"]


def test_configured_provider_still_pickles(provider: KumaMonitorsProvider) -> None:
    assert serialize_provider(provider)  # only strings held: no socket, no session
    assert not [v for v in vars(provider).values() if not isinstance(v, str)]


def test_provider_without_credentials_says_which_keys(receiver: Receiver) -> None:
    bare = KumaMonitorsProvider()
    bare.configure(ConfigureRequest(Config({"carestack:kuma_url": "http://127.0.0.1:9"}, "carestack")))
    with pytest.raises(ValueError, match="carestack:kuma_username, carestack:kuma_password"):
        bare.create(props("nocreds"))
