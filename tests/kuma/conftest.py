"""A real Uptime Kuma for the monitor tests: one server per test session, on a free loopback port.

The server is the npm package the lab uses (`lab.kuma_server`; installed
once into the machine's cache dir), started in a temporary state directory
with a relay on 127.0.0.2 standing in for the lab bridge address. The alert
receiver runs in a thread and records every notification Kuma sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.kuma_client import KumaLogin, KumaSession, connect
from lab import alert_receiver, kuma_server
from tests.kuma.support import free_port

BRIDGE_STAND_IN = "127.0.0.2"


@dataclass(frozen=True)
class Kuma:
    server: kuma_server.KumaServer
    state_dir: Path
    login: KumaLogin


@dataclass(frozen=True)
class Receiver:
    url: str
    state_dir: Path

    def alerts(self, client_id: str) -> list[alert_receiver.Alert]:
        return [a for a in alert_receiver.read_alerts(self.state_dir) if a.client == client_id]


@pytest.fixture(scope="session")
def kuma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kuma]:
    state_dir = tmp_path_factory.mktemp("kuma")
    server = kuma_server.start(state_dir, port=free_port(), bridge_host=BRIDGE_STAND_IN)
    try:
        yield Kuma(server, state_dir, kuma_server.ensure_admin(server, state_dir))
    finally:
        kuma_server.stop(state_dir)


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    state_dir = tmp_path_factory.mktemp("alerts")
    with alert_receiver.serve(state_dir) as running:
        yield Receiver(running.url, state_dir)


@pytest.fixture
def session(kuma: Kuma) -> Iterator[KumaSession]:
    with connect(kuma.login) as opened:
        yield opened
