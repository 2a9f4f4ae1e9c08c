"""`carestack report` on the lab: real downtime (the shared outage of tests/lab/outage.py: nginx stopped
on the server of a client alone on it, through all its monitors' retries) shows up in the report's
numbers within one check interval, and inside the plan's maintenance window it is excluded. The
report reads Kuma, restic and the evidence records exactly as in production (the
lab's state written as the stack's outputs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from infra.cli import main
from infra.report.windows import inside, maintenance_windows
from lab.report_access import write_lab_outputs
from lab.state import LabState
from tests.lab.outage import Outage

pytestmark = pytest.mark.lab


def _report(lab: LabState, client: str, tmp_path: Path, start: datetime, stack: Path | None = None) -> dict[str, Any]:
    """The client's report (JSON) of the local day of `start`; from another stack file if given."""
    plan = lab.plan(client)
    outputs = write_lab_outputs(lab, client, tmp_path / f"{client}.outputs.json")
    assert lab.kuma_credentials_file is not None
    zone_day = start.astimezone(ZoneInfo(plan.client.timezone)).date()
    out = tmp_path / "report.json"
    code = main([
        "report", str(stack or lab.client(client).stack), "--from", zone_day.isoformat(),
        "--to", (zone_day + timedelta(days=1)).isoformat(), "--format", "json", "--out", str(out),
        "--outputs", str(outputs), "--credentials", str(lab.kuma_credentials_file),
    ])  # fmt: skip
    assert code == 0
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _stretch(doc: dict[str, Any], site: dict[str, Any], a: datetime, b: datetime) -> list[dict[str, Any]]:
    """The report's incidents of a site that overlap [a, b)."""
    found = []
    for incident in site["incidents"]:
        start = datetime.fromisoformat(incident["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(incident["end"].replace("Z", "+00:00"))
        if start < b and end > a:
            found.append(incident)
    return found


def test_induced_downtime_is_in_the_report_within_one_check_interval(
    lab: LabState, nginx_outage: Outage, tmp_path: Path
) -> None:
    plan = lab.plan(nginx_outage.client)
    interval = plan.monitoring.interval_seconds
    stopped, started = nginx_outage.stopped, nginx_outage.started
    day = timedelta(days=1)
    windows = maintenance_windows(plan.monitoring.maintenance, plan.client.timezone, stopped - day, started + day)
    doc = _report(lab, nginx_outage.client, tmp_path, stopped)

    assert doc["sources"]["monitoring"]["available"], doc["sources"]
    assert doc["sources"]["evidence"]["available"], doc["sources"]
    induced = (started - stopped).total_seconds() / 60
    tolerance = (interval + 5) / 60
    for site in doc["sites"]:
        up = site["uptime"]
        assert up["available"], up
        assert site["backups"]["available"], site["backups"]
        if inside(stopped, windows) and inside(started, windows):
            # Inside the update window: excluded (Kuma shows maintenance, or the plan's window covers
            # what Kuma saw as down); none of it is charged.
            assert up["minutes"]["down"] <= tolerance, up["minutes"]
            window = next(w for w in up["maintenance_windows"] if w["start"] <= stopped.strftime("%Y-%m-%dT%H:%M:%SZ"))
            assert window["minutes"] > 0
            for incident in _stretch(doc, site, stopped, started):
                assert incident["maintenance_minutes"] == pytest.approx(incident["minutes"], abs=0.01)
        elif not inside(stopped, windows) and not inside(started, windows):
            (incident,) = _stretch(doc, site, stopped, started)
            assert incident["whole_site"] and not incident["ongoing"]
            assert abs(incident["minutes"] - induced) <= tolerance, (incident, induced)
            # The day's downtime holds this stretch, and also every other outage of the day: other lab
            # tests break and restart the same sites earlier in the session.
            charged = incident["minutes"] - incident["maintenance_minutes"]
            assert up["minutes"]["down"] >= charged - tolerance, (up["minutes"], site["incidents"])
            assert incident["alerted"] is not None
        else:
            pytest.skip("the stop straddled the edge of the maintenance window; run again")


def test_the_same_downtime_inside_a_maintenance_window_is_listed_and_excluded(
    lab: LabState, nginx_outage: Outage, tmp_path: Path
) -> None:
    # The client's stack with its update window moved to open ten minutes before nginx was stopped:
    # the report reads the same Kuma history, and the plan's window now covers the outage.
    plan = lab.plan(nginx_outage.client)
    stopped, started = nginx_outage.stopped, nginx_outage.started
    opens = (stopped - timedelta(minutes=10)).astimezone(ZoneInfo(plan.client.timezone))
    window = plan.monitoring.maintenance
    stack = yaml.safe_load(lab.client(nginx_outage.client).stack.read_text(encoding="utf-8"))
    overrides = stack["config"].setdefault("carestack:overrides", {})
    overrides.setdefault("updates", {})["window"] = {
        "day": opens.strftime("%a"), "at": opens.strftime("%H:%M"), "duration": f"{window.duration_minutes}m"
    }  # fmt: skip
    moved = tmp_path / lab.client(nginx_outage.client).stack.name
    moved.write_text(yaml.safe_dump(stack, sort_keys=False), encoding="utf-8")
    if (opens + timedelta(minutes=window.duration_minutes)).astimezone(UTC) < started:
        pytest.skip("the outage outlasted the window")

    day = timedelta(days=1)
    if inside(stopped, maintenance_windows(window, plan.client.timezone, stopped - day, started + day)):
        pytest.skip("the outage fell in the client's real window: the test above covers it")
    (tmp_path / "real").mkdir()
    real = _report(lab, nginx_outage.client, tmp_path / "real", stopped)
    doc = _report(lab, nginx_outage.client, tmp_path, stopped, stack=moved)
    induced = (started - stopped).total_seconds() / 60
    tolerance = (plan.monitoring.interval_seconds + 5) / 60
    for site, before in zip(doc["sites"], real["sites"], strict=True):
        up = site["uptime"]
        (incident,) = _stretch(doc, site, stopped, started)
        assert incident["maintenance_minutes"] == pytest.approx(incident["minutes"], abs=0.01), incident
        assert abs(incident["minutes"] - induced) <= tolerance, (incident, induced)
        listed = [w for w in up["maintenance_windows"] if _at(w["start"]) <= stopped < _at(w["end"])]
        assert len(listed) == 1 and listed[0]["down_minutes"] >= induced - tolerance, up["maintenance_windows"]
        assert up["minutes"]["excluded_maintenance"] >= induced - tolerance, up["minutes"]
        # Charged downtime: the real window's report charged the outage, this one does not.
        assert before["uptime"]["minutes"]["down"] - up["minutes"]["down"] >= induced - tolerance, (
            before["uptime"]["minutes"], up["minutes"])  # fmt: skip
