"""Real Uptime Kuma servers for the monitor tests: every test runs on each supported version.

One server per version and test session, on a free loopback port: the npm
2.0.0-dev.0 package the lab uses (`lab.kuma_server`), and 1.23.16 and
2.5.3 built from their upstream source tarballs (`lab.kuma_sources`, from the
directory CARESTACK_KUMA_SOURCES names), each installed once into the machine's
cache dir. Each starts in a temporary state directory with a relay on 127.0.0.2
standing in for the lab bridge address. The alert receiver runs in a thread and
records every notification Kuma sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.kuma_client import KumaLogin, KumaSession, connect
from lab import alert_receiver, kuma_server
from lab.kuma_sources import KumaSourceError, ensure_source_install, install_dir, sources_dir
from tests.kuma.support import free_port

BRIDGE_STAND_IN = "127.0.0.2"
KUMA_VERSIONS = (kuma_server.KUMA_VERSION, "1.23.16", "2.5.3")


@dataclass(frozen=True)
class Kuma:
    version: str
    server: kuma_server.KumaServer
    state_dir: Path
    login: KumaLogin


@dataclass(frozen=True)
class Receiver:
    url: str
    state_dir: Path

    def alerts(self, client_id: str) -> list[alert_receiver.Alert]:
        return [a for a in alert_receiver.read_alerts(self.state_dir) if a.client == client_id]


def installed(version: str) -> Path | None:
    """The Kuma of `version` to run (None: the lab's npm package); skipped where its sources are not given."""
    if version == kuma_server.KUMA_VERSION:
        return None
    cache_dir = kuma_server.default_cache_dir()
    if sources_dir() is None and not install_dir(version, cache_dir).exists():
        pytest.skip(f"Uptime Kuma {version}: set CARESTACK_KUMA_SOURCES to the directory of its source tarball")
    try:
        return ensure_source_install(version, cache_dir)
    except KumaSourceError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session", params=KUMA_VERSIONS)
def kuma(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kuma]:
    version = str(request.param)
    package = installed(version)
    state_dir = tmp_path_factory.mktemp(f"kuma-{version}")
    server = kuma_server.start(state_dir, port=free_port(), bridge_host=BRIDGE_STAND_IN, package=package)
    try:
        yield Kuma(version, server, state_dir, kuma_server.ensure_admin(server, state_dir))
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
