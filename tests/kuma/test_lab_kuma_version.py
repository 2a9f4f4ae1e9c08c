"""The lab's monitoring services run the Kuma version its settings name (Kuma alone: no servers, no bridge).

A loopback subnet stands in for the lab's: its "bridge address" 127.0.1.1 is where the
relay listens, as it would on the lab bridge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.kuma_client import connect, read_login
from lab import kuma_server, services
from lab.config import LabConfig
from lab.kuma_sources import SUPPORTED_VERSIONS, install_dir, sources_dir
from tests.kuma.support import free_port

pytestmark = pytest.mark.kuma


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_lab_runs_the_kuma_version_of_its_settings(version: str, tmp_path: Path) -> None:
    built = install_dir(version, kuma_server.default_cache_dir()).exists()
    if version != kuma_server.KUMA_VERSION and sources_dir() is None and not built:
        pytest.skip(f"Uptime Kuma {version}: set CARESTACK_KUMA_SOURCES to the directory of its source tarball")
    config = LabConfig(
        tmp_path / "lab", subnet="127.0.1.0/24", kuma_port=free_port(), alert_port=free_port(), kuma_version=version
    )
    try:
        monitoring = services.bring_up(config)
        assert monitoring.push_base_url == f"http://127.0.1.1:{config.kuma_port}/api/push"
        with connect(read_login(monitoring.credentials_file), timeout=30) as session:
            assert str(session.version) == version  # what the running server announces
    finally:
        services.stop(config)
    assert not services.kuma_running(config)
