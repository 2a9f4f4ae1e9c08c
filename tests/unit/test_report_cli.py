"""`carestack report` end to end on the example stacks: named errors, the JSON document's stable keys,
--all's overview, and the snapshot list read from a real restic repository."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra import report_cli
from infra.cli import main
from infra.kuma_client import KumaError, KumaLogin
from infra.report.access import load_access
from infra.report.snapshots import read_snapshots
from infra.report.text import TEXT

ROOT = Path(__file__).resolve().parents[2]
STUDIO = str(ROOT / "stacks" / "Pulumi.studio.yaml")
TOP_KEYS = {
    "schema",
    "generated",
    "period",
    "client",
    "targets",
    "sources",
    "sites",
    "integrity_checks",
    "immutability",
    "updates",
    "drills",
    "failovers",
    "security_scans",
    "performance",
    "support",
    "credits",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--month", "2026-13"], "--month: '2026-13' is not a month; expected YYYY-MM"),
        (["--month", "2099-01"], "--month: 2099-01 has not begun yet in Europe/Berlin"),
        (["--from", "2026-11-10", "--to", "2026-11-01"], "--from 2026-11-10 is not before --to 2026-11-01"),
        (["--from", "2026-11-01"], "--from and --to go together"),
        ([], "which period? give --month YYYY-MM"),
        (["--month", "2026-11", "--from", "2026-11-01", "--to", "2026-11-02"], "either --month or --from/--to"),
        (["--month", "2026-11", "--format", "pdf"], "--format pdf needs --out PATH"),
    ],
)
def test_bad_periods_and_options_are_named(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, STUDIO, *argv)
    assert code == 2 and message in err and out == ""


def test_a_ledger_row_with_a_bad_date_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.csv"
    ledger.write_text("date,minutes,kind\n2026-11-31,30,request\n", encoding="utf-8")
    code, _, err = run(capsys, STUDIO, "--month", "2026-11", "--ledger", str(ledger))
    assert code == 1
    assert f"{ledger}" in err and "row 1 (line 2), column date: expected a date YYYY-MM-DD, got '2026-11-31'" in err


def test_without_sources_every_section_says_what_was_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, STUDIO, "--month", "2026-11", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == TOP_KEYS and doc["schema"] == 1
    assert doc["period"]["start"] == "2026-10-31T23:00:00Z" and doc["period"]["end"] == "2026-11-30T23:00:00Z"
    for site in doc["sites"]:
        assert site["uptime"] == {"available": False, "note": doc["sources"]["monitoring"]["note"]}
        assert not site["backups"]["available"] and "--outputs FILE" in site["backups"]["note"]
    assert not doc["updates"]["available"] and not doc["credits"]["available"]
    assert doc["support"]["available"]  # the example ledger beside the stack
    assert doc["support"]["time_bank"]["month"] == "2026-11"


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_both_languages_render(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    _, en, _ = run(capsys, STUDIO, "--month", "2026-11", "--format", fmt)
    _, nl, _ = run(capsys, STUDIO, "--month", "2026-11", "--format", fmt, "--lang", "nl")
    assert "Service report" in en and "Servicerapport" in nl and "Urenbank" in nl


def test_all_writes_a_report_per_client_and_the_overview(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "--all", "--month", "2026-11", "--stacks", str(ROOT / "stacks"), "--out", str(tmp_path))
    assert code == 0, err
    clients = {"bakery", "shop", "studio"}
    assert {p.stem for p in tmp_path.glob("*.html")} == clients | {"index"}
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{c}.html"' in index for c in clients)
    assert "no monitoring data" in index  # nothing read: every site is flagged, not shown as fine


def test_all_needs_an_output_directory(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--all")
    assert code == 2 and "give --out DIR" in err


def test_an_outputs_file_others_can_read_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    outputs = tmp_path / "studio.outputs.json"
    outputs.write_text("{}", encoding="utf-8")
    outputs.chmod(0o644)
    code, _, err = run(capsys, STUDIO, "--month", "2026-11", "--outputs", str(outputs))
    assert code == 1
    assert "readable by others (mode 644); chmod 600 it" in err and "restic_password: missing" in err


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, Path]:
    """A real restic repository for studio's first site with a complete and an incomplete snapshot."""
    if shutil.which("restic") is None:
        pytest.skip("needs restic")
    base = tmp_path / "repos"
    repo = base / "studio-web"
    env = {**os.environ, "RESTIC_PASSWORD": "report-test-password"}
    data = tmp_path / "data"
    data.mkdir()
    (data / "index.php").write_text("<?php echo 'hi';", encoding="utf-8")
    subprocess.run(["restic", "-r", str(repo), "init"], env=env, check=True, capture_output=True)
    for tag in ("complete", "incomplete"):
        subprocess.run(
            ["restic", "-r", str(repo), "backup", "--tag", tag, "--tag", "site:studio-web", str(data)],
            env=env,
            check=True,
            capture_output=True,
        )
    outputs = tmp_path / "studio.outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "repository": str(base),
                "bucket": "studio-backups",
                "s3_access_key_id": "unused-for-a-local-repository",
                "s3_secret_access_key": "unused",
                "restic_password": "report-test-password",
            }
        )
    )
    outputs.chmod(0o600)
    return base, outputs


def test_snapshots_are_read_from_a_real_repository(repository: tuple[Path, Path]) -> None:
    _, outputs = repository
    snapshots = read_snapshots(load_access(outputs), "studio-web")
    assert [(s.complete, s.incomplete) for s in snapshots] == [(True, False), (False, True)]


def test_an_unreadable_repository_is_a_note_in_its_section(
    capsys: pytest.CaptureFixture[str], repository: tuple[Path, Path]
) -> None:
    _, outputs = repository
    code, out, _ = run(
        capsys, STUDIO, "--from", "2026-11-01", "--to", "2026-12-01", "--format", "json", "--outputs", str(outputs)
    )
    assert code == 0
    web, plans = json.loads(out)["sites"]
    assert web["backups"]["available"] and web["backups"]["called_for"] == 720
    assert not plans["backups"]["available"]
    assert "studio-plans: restic snapshots failed" in plans["backups"]["note"]
    assert "report-test-password" not in out
    evidence = json.loads(out)["sources"]["evidence"]
    assert not evidence["available"] and "s3_endpoint" in evidence["note"]


def test_both_languages_have_every_word() -> None:
    assert set(TEXT["en"]) == set(TEXT["nl"])


def test_a_bad_branding_file_is_named_key_by_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    branding = tmp_path / "branding.yaml"
    branding.write_text("name: ''\nlogo: logo.gif\naccent: blue\ncolour: red\n", encoding="utf-8")
    code, _, err = run(capsys, STUDIO, "--month", "2026-11", "--branding", str(branding))
    assert code == 1
    for problem in (
        "colour: unknown key",
        "name: the agency's name is required",
        'accent: expected a colour like "#1565c0"',
        "logo: 'logo.gif' must be one of .svg, .png, .jpg, .jpeg",
    ):
        assert problem in err, err
    branding.write_text("name: Example Agency\nlogo: missing.svg\n", encoding="utf-8")
    code, _, err = run(capsys, STUDIO, "--month", "2026-11", "--branding", str(branding))
    assert code == 1 and "missing.svg does not exist (paths are relative to the branding file)" in err


def test_all_reads_kuma_over_one_session_and_says_so_once_when_it_cannot(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login makes Kuma send the session every list it has: `--all` logs in once for every client
    (their reads in turn), and an unreachable Kuma is one attempt and the same note in each report."""
    logins: list[str] = []
    read: list[str] = []

    @contextlib.contextmanager
    def fake_connect(login: KumaLogin) -> Iterator[object]:
        logins.append(login.url)
        if login.url.endswith(":9"):
            raise KumaError(f"cannot reach Uptime Kuma at {login.url} (is it running, is the URL right?)")
        yield object()

    def fake_timelines(session: object, plan: Any, start: Any, end: Any) -> dict[str, Any]:
        read.append(plan.client.id)
        return {}

    monkeypatch.setattr(report_cli, "connect", fake_connect)
    monkeypatch.setattr(report_cli, "read_timelines", fake_timelines)
    for url in ("http://127.0.0.1:3001", "http://127.0.0.1:9"):
        logins.clear()
        credentials = tmp_path / "kuma.json"
        credentials.write_text(json.dumps({"url": url, "username": "admin", "password": "secret"}))
        credentials.chmod(0o600)
        out = tmp_path / url.rsplit(":", 1)[1]
        code, _, err = run(capsys, "--all", "--month", "2026-11", "--out", str(out), "--credentials", str(credentials),
                           "--format", "json")  # fmt: skip
        assert code == 0, err
        assert logins == [url]
        notes = {json.loads(p.read_text())["sources"]["monitoring"]["note"] for p in out.glob("*.json")}
        if url.endswith(":9"):
            assert notes == {f"the monitoring history could not be read from {url}: cannot reach Uptime Kuma at "
                             f"{url} (is it running, is the URL right?)"}  # fmt: skip
        else:
            assert notes == {""} and sorted(read) == ["bakery", "shop", "studio"]
