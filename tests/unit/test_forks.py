"""Ansible's forks follow the number of servers a converge touches, within the controller's means."""

from __future__ import annotations

from infra.configure import MAX_FORKS, forks_for


def test_every_server_of_a_small_fleet_is_converged_at_once() -> None:
    assert [forks_for(n, cpus=2) for n in (1, 3, 20)] == [1, 3, 20]


def test_a_large_fleet_is_bounded_by_the_controllers_cpus_and_a_ceiling() -> None:
    assert forks_for(60, cpus=2) == 20
    assert forks_for(60, cpus=4) == 40
    assert forks_for(300, cpus=32) == MAX_FORKS
    assert forks_for(0, cpus=2) == 1
