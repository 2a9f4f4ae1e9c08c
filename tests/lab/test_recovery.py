"""`lab up` repairs the lab's own services: whatever died is started again and named; ours is never a conflict.

Each test kills or stops services of the session's lab and leaves them running again (through `lab up`).
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import alert_receiver, aptproxy, kuma_server, procs, s3, s3_gateway, services, storage
from lab.config import LabConfig, load_config
from lab.state import LabState
from lab.status import summary
from lab.up import lab_up, preflight

pytestmark = pytest.mark.lab


@pytest.fixture
def config(lab: LabState) -> LabConfig:
    return load_config(lab.state_dir)


def kill(pid_file: Path) -> int:
    """SIGKILL the recorded process (as the kernel's OOM killer or a crash would) and wait until it is gone."""
    record = procs.running(pid_file)
    assert record is not None, f"{pid_file}: not running before the test"
    os.kill(record.pid, signal.SIGKILL)
    assert procs.wait_gone(record, 10.0)
    return record.pid


def up(config: LabConfig) -> str:
    out = io.StringIO()
    lab_up(config, out=out)
    return out.getvalue()


def test_lab_up_restarts_every_service_that_died_and_says_so(config: LabConfig) -> None:
    moto_before = s3.recorded_pid(storage.s3_dir(config))
    kuma_relay = services.kuma_dir(config) / kuma_server.RELAY_PID_FILE
    relay_before = procs.running(kuma_relay)
    kill(services.kuma_dir(config) / kuma_server.PID_FILE)  # Kuma dies, its relay lives on and holds the port
    kill(services.alerts_dir(config) / alert_receiver.PID_FILE)
    kill(aptproxy.pid_file(config))
    kill(storage.s3_dir(config) / s3_gateway.PID_FILE)

    preflight(config)  # the lab's own relay on Kuma's port is no conflict
    told = up(config)

    assert "restarted Kuma (it had stopped), the alert receiver (it had stopped)" in told
    assert "restarted (it had stopped) on " + aptproxy.url(config) in told
    assert "restarted the S3 gateway (it had stopped)" in told
    assert services.kuma_running(config) and services.receiver_running(config) and aptproxy.running(config)
    assert storage.gateway_running(config)
    assert s3.recorded_pid(storage.s3_dir(config)) == moto_before, "moto (and every backup in it) was kept"
    assert relay_before is not None and procs.running(kuma_relay) is not None
    report = summary(LabState.load(config.state_dir), config)
    assert all(service["running"] for service in report.services.values()), report.services


def test_a_dead_kuma_relay_is_restarted_alone(config: LabConfig) -> None:
    kuma_before = procs.running(services.kuma_dir(config) / kuma_server.PID_FILE)
    kill(services.kuma_dir(config) / kuma_server.RELAY_PID_FILE)

    told = up(config)

    assert "restarted Kuma's relay on the bridge (it had stopped)" in told
    assert procs.running(services.kuma_dir(config) / kuma_server.PID_FILE) == kuma_before, "Kuma itself kept running"
    assert services.kuma_running(config)


@pytest.fixture
def stopped_moto(config: LabConfig) -> Iterator[int]:
    """moto frozen (SIGSTOP): as unresponsive as a server under heavy load; thawed afterwards whatever happens."""
    pid = s3.recorded_pid(storage.s3_dir(config))
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_busy_s3_is_neither_dead_nor_a_port_conflict(config: LabConfig, stopped_moto: int) -> None:
    time.sleep(1.5)  # longer than any one-second answer would take
    server = storage.running(config)
    assert server is not None and server.pid == stopped_moto, "a live S3 read as dead"
    assert storage.gateway_running(config)  # what `lab status` reads as the S3 service running
    preflight(config)  # its port is ours, not in use by someone else
