"""`carestack lab fleet`: agency-sized stack files that the lab's own loader accepts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from infra.spec import ClientSpec, load_catalog, load_stack
from lab.cli import main
from lab.errors import LabError
from lab.fleet import layout, write_fleet
from lab.placement import place


def test_the_agency_fleet_has_every_tier_kind_and_hosting_mode(tmp_path: Path) -> None:
    summary = write_fleet(tmp_path, servers=20, sites=60)

    placement = place(list(summary.files))
    assert len(placement.hosts) == 20
    assert Counter(h.role for h in placement.hosts)["standby"] == 1
    assert {h.role for h in placement.hosts} == {"shared", "standby", "dedicated"}
    sites = [site for client in placement.clients for site in client.plan.sites]
    assert len(sites) == summary.sites == 60
    assert {site.kind for site in sites} == {"wordpress", "woocommerce", "php", "static"}
    assert set(summary.clients_per_tier) == {"basic", "standard", "premium"}
    assert summary.monitors == sum(len(s.checks) + len(s.jobs) for s in sites)
    # every shared host carries sites, and only shared-tier clients
    for host in placement.hosts:
        if host.role == "shared":
            assert host.clients
            assert all(c.plan.hosting.mode == "shared" for c in placement.clients if c.id in host.clients)


def test_each_site_checks_as_many_pages_as_its_tier_allows(tmp_path: Path) -> None:
    catalog = load_catalog()
    summary = write_fleet(tmp_path, servers=8, sites=20)
    for path in summary.files:
        spec = load_stack(path, catalog)
        if isinstance(spec, ClientSpec):
            allowed = catalog.tiers[spec.stack.tier].monitoring.pages_per_site
            assert all(1 <= len(site.checks) <= allowed for site in spec.stack.sites)


def test_the_same_arguments_write_the_same_files(tmp_path: Path) -> None:
    first = write_fleet(tmp_path / "a", servers=10, sites=25)
    second = write_fleet(tmp_path / "b", servers=10, sites=25)
    assert [p.name for p in first.files] == [p.name for p in second.files]
    assert [p.read_text() for p in first.files] == [p.read_text() for p in second.files]


@pytest.mark.parametrize(("servers", "sites"), [(2, 1), (3, 2), (5, 4), (20, 60), (50, 200)])
def test_the_layout_has_exactly_the_servers_and_sites_asked_for(servers: int, sites: int) -> None:
    fleet = layout(servers, sites)
    assert (fleet.servers, fleet.sites) == (servers, sites)


def test_too_few_servers_or_sites_is_refused_naming_the_option() -> None:
    with pytest.raises(LabError, match=r"--servers 1: .*at least 2 servers"):
        layout(1, 10)
    with pytest.raises(LabError, match=r"--sites 3: 5 servers need at least 4 sites"):
        layout(5, 3)


def test_a_smaller_fleet_replaces_the_larger_one_it_was_written_over(tmp_path: Path) -> None:
    write_fleet(tmp_path, servers=10, sites=30)
    smaller = write_fleet(tmp_path, servers=4, sites=6)
    assert sorted(tmp_path.iterdir()) == sorted(smaller.files)


def test_stack_files_it_did_not_write_are_never_touched(tmp_path: Path) -> None:
    own = tmp_path / "Pulumi.bakery.yaml"
    own.write_text("config: {}\n")
    with pytest.raises(LabError, match=r"did not write: Pulumi.bakery.yaml"):
        write_fleet(tmp_path, servers=4, sites=6)
    assert sorted(tmp_path.iterdir()) == [own]
    assert own.read_text() == "config: {}\n"


def test_the_command_writes_the_fleet_and_says_how_to_bring_it_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lab", "fleet", "--servers", "6", "--sites", "12", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "6 servers, 12 sites" in out
    assert f"carestack lab up {tmp_path}/Pulumi.*.yaml" in out

    assert main(["lab", "fleet", "--servers", "6", "--sites", "2", "--out", str(tmp_path / "x")]) == 1
    assert "--sites 2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
