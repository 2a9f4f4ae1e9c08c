"""`carestack import` refuses what the controller can see before it reaches any server (exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.cli import main

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stacks" / "Pulumi.bakery.yaml"
# An address no test may reach: a refusal must come before any connection is tried.
HOSTS = json.dumps({"shared-1": {"address": "192.0.2.1"}})


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["import", str(STACK), "--hosts", HOSTS, *args])
    return code, capsys.readouterr().err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    archive, dump = tmp_path / "site.tar.gz", tmp_path / "site.sql"
    archive.write_bytes(b"")
    dump.write_bytes(b"")
    return archive, dump


def test_a_site_not_in_the_stack_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]
) -> None:
    code, err = run(capsys, "--site", "bakery-www", "--archive", str(files[0]), "--dump", str(files[1]))
    assert code == 2
    assert "UnknownSite: --site 'bakery-www' is not a site of client bakery (bakery-bakery)" in err


def test_missing_files_and_contradicting_sources_are_refused(
    capsys: pytest.CaptureFixture[str], files: tuple[Path, Path], tmp_path: Path
) -> None:
    archive, dump = files
    cases = [
        (["--archive", str(tmp_path / "none.tar"), "--dump", str(dump)], "--archive: "),
        (["--archive", str(archive), "--dump", str(tmp_path / "none.sql")], "--dump: "),
        (["--archive", str(archive)], "--dump: site bakery-bakery has a database: give its SQL dump"),
        (["--dump", str(dump)], "exactly one of --archive and --from-ssh"),
        (["--archive", str(archive), "--from-ssh", "a@b:/x"], "exactly one of --archive and --from-ssh"),
        (["--from-ssh", "old-host:/var/www", "--dump", str(dump)], "--from-ssh: must be USER@HOST:/absolute/path"),
    ]
    for args, message in cases:
        code, err = run(capsys, "--site", "bakery-bakery", *args)
        assert code == 2 and message in err, (args, err)


def test_a_server_missing_from_hosts_is_refused(capsys: pytest.CaptureFixture[str], files: tuple[Path, Path]) -> None:
    code = main(["import", str(STACK), "--hosts", "{}", "--site", "bakery-bakery", "--archive", str(files[0])])
    assert code == 2 and "--hosts: no entry for server 'shared-1'" in capsys.readouterr().err
