"""The lab's Kuma server and alert receiver as processes: reuse, clear start-up errors, records."""

from __future__ import annotations

import json
import stat
import urllib.request
from pathlib import Path

import pytest

from lab import alert_receiver, kuma_server
from tests.kuma.conftest import BRIDGE_STAND_IN, Kuma
from tests.kuma.support import free_port


@pytest.mark.kuma
def test_start_reuses_the_running_server(kuma: Kuma) -> None:
    # The process that runs now (the history tests restart the session's Kuma, so its pid may be a later one).
    running = kuma_server.running(kuma.state_dir)
    assert running is not None and running.port == kuma.server.port
    again = kuma_server.start(kuma.state_dir, port=kuma.server.port, bridge_host=BRIDGE_STAND_IN)
    assert again == running  # reused: no second process
    assert kuma_server.running(kuma.state_dir) == running
    with pytest.raises(kuma_server.KumaServerError, match="already runs on"):
        kuma_server.start(kuma.state_dir, port=kuma.server.port)
    assert stat.S_IMODE((kuma.state_dir / "credentials.json").stat().st_mode) == 0o600
    assert kuma_server.ensure_admin(kuma.server, kuma.state_dir).password == kuma.login.password


@pytest.mark.kuma
def test_kuma_answers_on_loopback_and_through_the_relay(kuma: Kuma) -> None:
    assert kuma.server.bridge_url == f"http://{BRIDGE_STAND_IN}:{kuma.server.port}"
    for url in (kuma.server.url, kuma.server.bridge_url):
        with urllib.request.urlopen(f"{url}/api/entry-page", timeout=5) as answer:
            assert json.loads(answer.read())["type"] == "entryPage"


@pytest.mark.kuma
def test_failed_start_shows_the_log(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "kuma.db").write_text("this is not a database")
    with pytest.raises(kuma_server.KumaServerError, match=r"(?s)exited during start-up.*SQLITE_NOTADB"):
        kuma_server.start(tmp_path, port=free_port())
    assert kuma_server.running(tmp_path) is None and not (tmp_path / kuma_server.PID_FILE).exists()


@pytest.mark.kuma
def test_start_refuses_a_port_in_use(kuma: Kuma, tmp_path: Path) -> None:
    with pytest.raises(kuma_server.KumaServerError, match="already in use by another process"):
        kuma_server.start(tmp_path, port=kuma.server.port)


def test_alert_receiver_process_records_posts(tmp_path: Path) -> None:
    receiver = alert_receiver.start(tmp_path, port=free_port())
    try:
        assert alert_receiver.start(tmp_path, port=receiver.port) == receiver
        body = {"msg": "[web] [🔴 Down] timeout", "heartbeat": {"status": 0}, "monitor": {"name": "web · /"}}
        request = urllib.request.Request(
            f"{receiver.url}?client=studio&channel=sms&to=Erik",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
    finally:
        assert alert_receiver.stop(tmp_path)
    [alert] = alert_receiver.read_alerts(tmp_path)
    assert (alert.client, alert.channel, alert.to, alert.monitor, alert.status) == (
        "studio",
        "sms",
        "Erik",
        "web · /",
        "down",
    )
    assert alert.message == body["msg"]
    assert stat.S_IMODE((tmp_path / alert_receiver.ALERTS_FILE).stat().st_mode) == 0o600
    assert alert_receiver.running(tmp_path) is None
