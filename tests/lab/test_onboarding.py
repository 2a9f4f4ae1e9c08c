"""After `lab up` every example client is onboarded: its sites answer, it has a backup, Kuma watches it."""

from __future__ import annotations

import pytest

from lab.state import LabState
from lab.status import http_status, last_backup, monitor_counts

pytestmark = pytest.mark.lab


def test_every_page_the_plan_checks_answers_on_the_clients_server(lab: LabState) -> None:
    for client in lab.clients:
        address = lab.host(client.server).address
        for site in lab.plan(client.id).sites:
            for check in site.checks:
                assert http_status(address, site.domain, check.path) == check.status, (site.domain, check.path)


def test_every_site_has_a_first_backup_in_its_clients_bucket(lab: LabState) -> None:
    for client in lab.clients:
        for site in lab.plan(client.id).sites:
            assert last_backup(lab, client.id, site.id) is not None, site.id


def test_kuma_watches_every_client(lab: LabState) -> None:
    counts = monitor_counts(lab)
    for client in lab.clients:
        plan = lab.plan(client.id)
        expected = sum(len(site.checks) + len(site.jobs) for site in plan.sites)
        assert sum(counts[client.id].values()) == expected, counts
