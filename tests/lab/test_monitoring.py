"""The lab's Uptime Kuma and alert receiver: they answer, the admin login works, servers can push."""

from __future__ import annotations

import json
import urllib.request

import pytest
from uptime_kuma_api import UptimeKumaApi

from lab.state import LabState

pytestmark = pytest.mark.lab


def test_kuma_answers_and_the_admin_login_works(lab: LabState) -> None:
    assert lab.kuma_url is not None and lab.kuma_credentials_file is not None
    assert lab.kuma_credentials_file.stat().st_mode & 0o077 == 0
    with urllib.request.urlopen(f"{lab.kuma_url}/api/entry-page", timeout=10) as response:
        assert response.status == 200
    credentials = json.loads(lab.kuma_credentials_file.read_text())
    api = UptimeKumaApi(lab.kuma_url, timeout=30)
    try:
        token = api.login(credentials["username"], credentials["password"])["token"]
        assert token
        assert isinstance(api.get_monitors(), list)
    finally:
        api.disconnect()


def test_the_servers_reach_kumas_push_endpoint(lab: LabState) -> None:
    assert lab.kuma_push_base_url is not None and lab.bridge_address in lab.kuma_push_base_url
    for host in lab.hosts:
        done = lab.ssh(host.name, f"curl -s --max-time 10 {lab.kuma_push_base_url}/no-such-token?status=up")
        # Kuma answers an unknown push token with a JSON error: the request went all the way through.
        assert json.loads(done.stdout)["ok"] is False, done.stdout + done.stderr


def test_the_alert_receiver_records_what_is_posted(lab: LabState) -> None:
    assert lab.alert_url is not None and lab.alert_log is not None
    body = json.dumps({"msg": "lab test notification"}).encode()
    request = urllib.request.Request(
        f"{lab.alert_url}?client=labtest&channel=webhook&to=tester",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)
    records = [json.loads(line) for line in lab.alert_log.read_text().splitlines()]
    assert any("lab test notification" in json.dumps(record) for record in records)
