"""When `lab up` converges a client again: its fingerprint. A client whose restore drills run on the
standby depends on the standby too, so a standby rebuilt from the image gets its drills back."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from infra.ansible_vars import ClientSecrets, drilled_sites
from lab.onboard import _fingerprint
from lab.placement import place
from lab.state import LabHost, LabState
from lab.up import example_stacks

SECRETS = ClientSecrets("restic-password", "key-id", "secret-key")


def lab_state() -> LabState:
    placement = place(example_stacks())
    hosts = tuple(
        LabHost(h.name, f"10.77.0.{10 + i}", h.role, h.clients, f"{i:032x}") for i, h in enumerate(placement.hosts)
    )
    return LabState(
        state_dir=Path("/nonexistent"), subnet="10.77.0.0/24", bridge="csbr0", bridge_address="10.77.0.1",
        standby=placement.standby, hosts=hosts, clients=(), ssh_key=Path("k"), ssh_config=Path("c"),
        known_hosts=Path("h"), inventory=Path("i"), server_memory_mb=512,
    )  # fmt: skip


def test_a_new_standby_converges_the_clients_whose_drills_run_there_and_no_other() -> None:
    state = lab_state()
    clients = place(example_stacks()).clients
    before = {c.id: _fingerprint(state, c, SECRETS, "code") for c in clients}
    rebuilt = replace(
        state,
        hosts=tuple(replace(h, machine_id="f" * 32) if h.name == state.standby else h for h in state.hosts),
    )
    after = {c.id: _fingerprint(rebuilt, c, SECRETS, "code") for c in clients}
    drilled = {c.id for c in clients if drilled_sites(c.plan)}
    assert drilled == {"shop"}  # the premium example: monthly drills on the standby
    assert {cid for cid in before if before[cid] != after[cid]} == drilled


def test_a_clients_own_server_rebuilt_converges_it_again() -> None:
    state = lab_state()
    [bakery] = [c for c in place(example_stacks()).clients if c.id == "bakery"]
    rebuilt = replace(
        state, hosts=tuple(replace(h, machine_id="e" * 32) if h.name == bakery.server else h for h in state.hosts)
    )
    assert _fingerprint(state, bakery, SECRETS, "code") != _fingerprint(rebuilt, bakery, SECRETS, "code")
