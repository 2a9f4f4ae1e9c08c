"""The report of a lab client against what was done to it: an update applied, one rolled back, one that
failed, and a backup missed because the server could not reach S3, each in `carestack report` as it
happened (same site, versions, cause and time); and the client's HTML report as a person sees it, in
Debian's headless chromium (charts drawn, nothing wider than A4). The report reads Kuma, restic and
the evidence records exactly as in production (tests/lab/test_report.py's `_report`)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.cli import main
from lab import storage
from lab.config import load_config
from lab.report_access import write_lab_outputs
from tests.lab.test_report import _at, _report
from tests.report_browser import laid_out, screenshots
from tests.updates import artifacts
from tests.updates.conftest import CLIENT, TEST_ROOT, UpdatesLab

pytestmark = pytest.mark.lab

ROLLED_BACK = 6  # carestack-agent's exit code (README)


def _since(entries: list[dict[str, Any]], key: str, since: datetime, site: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["site"] == site and _at(e[key]) >= since]


def _journaled_end(updates: UpdatesLab, job: str, site: str) -> dict[str, Any]:
    return next(
        r
        for r in reversed(updates.server.journal())
        if r.get("event") == "end" and r.get("job") == job and r.get("site") == site
    )


def test_the_report_shows_each_update_and_the_missed_backup_as_they_happened(
    updates: UpdatesLab, tmp_path: Path
) -> None:
    server, web = updates.server, updates.web
    lab = server.lab
    since = datetime.now(UTC).replace(microsecond=0)  # records keep whole seconds
    updates.forget_failed()
    updates.configure({web.id: ["wordpress"]})

    updates.offer_plugin("1.1")
    good = server.agent("update", web.id)
    assert good.returncode == 0, good.stdout + good.stderr

    updates.offer_plugin("1.2")  # breaks the site's pages
    bad = server.agent("update", web.id)
    assert bad.returncode == ROLLED_BACK, bad.stdout + bad.stderr
    bad_run = _journaled_end(updates, "update", web.id)
    broke = bad_run["figures"]["broke"]

    index = f"{TEST_ROOT}/feed/index.json"
    server.sh(f"mv {index} {index}.away")  # the feed cannot be read: the run cannot even check
    try:
        failed = server.agent("update", web.id)
    finally:
        server.sh(f"mv {index}.away {index}")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    failed_update = _journaled_end(updates, "update", web.id)

    config = load_config(lab.state_dir)
    assert storage.stop_gateway(config)  # the servers' only way to S3
    try:
        missed = server.agent("backup", web.id, "--reason", "scheduled")
    finally:
        assert storage.start_gateway(config)
    assert missed.returncode != 0, missed.stdout + missed.stderr
    missed_backup = _journaled_end(updates, "backup", web.id)
    check = server.agent("check", web.id)  # its record lands with the site's next job
    assert check.returncode == 0, check.stdout + check.stderr
    until = datetime.now(UTC)

    doc = _report(lab, CLIENT, tmp_path, since)
    section = doc["updates"]
    assert section["available"], section
    plugin = f"plugin {artifacts.PLUGIN_FILE}"
    applied = _since(section["applied"], "when", since, web.id)
    assert [(c["component"], c["from"], c["to"]) for c in applied] == [(plugin, "1.0", "1.1")]
    rolled_back = _since(section["rolled_back"], "when", since, web.id)
    assert [(c["component"], c["from"], c["to"], c["broke"]) for c in rolled_back] == [(plugin, "1.1", "1.2", broke)]
    assert web.domain in broke  # what broke names the page that failed
    runs = _since(section["runs"], "ended", since, web.id)
    assert [(r["job"], r["result"]) for r in runs] == [("update", "ok"), ("update", "failed"), ("update", "failed")]
    assert runs[2]["message"] == failed_update["message"] and "wordpress feed" in runs[2]["message"]
    assert "still rolled back" in runs[2]["message"]  # a run that could not check still names the open rollback
    assert all(since <= _at(r["started"]) <= _at(r["ended"]) <= until for r in runs)
    # The version that broke the site stays held back until an operator clears it.
    assert any(c["component"] == plugin and c["to"] == "1.2" for c in section["pending"] if c["site"] == web.id)

    site = next(s for s in doc["sites"] if s["id"] == web.id)
    backups = site["backups"]
    assert backups["available"], backups
    failed_backups = [r["message"] for r in backups["failed_runs"] if _at(r["ended"]) >= since]
    assert failed_backups == [missed_backup["message"]]
    # The newest complete snapshot is the rolled-back update's own (the plan's keep rules may have
    # dropped the earlier one of the day); the missed backup and the run that could not check made none.
    bad_end = _at(bad_run["ts"])
    made = [_at(t) for t in backups["snapshots"] if since <= _at(t) <= until]
    assert made and bad_end - timedelta(seconds=bad_run["duration"] + 1) <= max(made) <= bad_end, made
    if shutil.which("chromium") is None:
        pytest.skip("needs Debian's chromium for the report's pictures")
    outputs = write_lab_outputs(lab, CLIENT, tmp_path / "html.outputs.json")
    assert lab.kuma_credentials_file is not None
    day = doc["period"]["first_day"]
    html_file = tmp_path / "report.html"
    code = main([
        "report", str(lab.client(CLIENT).stack), "--from", day,
        "--to", (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat(), "--format", "html",
        "--out", str(html_file), "--outputs", str(outputs), "--credentials", str(lab.kuma_credentials_file),
    ])  # fmt: skip
    assert code == 0
    html = html_file.read_text(encoding="utf-8")
    assert missed_backup["message"] in html.replace("&#x27;", "'").replace("&quot;", '"')
    probe, dom = laid_out(html, tmp_path)
    assert probe["scroll"] <= probe["width"] and probe["wide"] == [], probe
    sites = len(doc["sites"])
    assert dom.count('class="chart"') == 3 * sites  # daily uptime, response times, backups for each site
    assert dom.count('class="bar"') == sites  # one day: one uptime bar per site
    for shot in screenshots(html, tmp_path, f"lab-{CLIENT}-report"):
        assert shot.read_bytes().startswith(b"\x89PNG")
