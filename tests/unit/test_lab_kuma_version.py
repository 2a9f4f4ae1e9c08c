"""`lab up --kuma-version`: an unknown version, a missing tarball or another version than the recorded one
is refused before anything changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import cli as infra_cli
from lab import cli as lab_cli
from lab.config import CONFIG_FILE, LabConfig, load_config, save_config
from lab.errors import LabError
from lab.kuma_sources import NPM_VERSION


def _up(state_dir: Path, *options: str) -> None:
    """Run `carestack lab up OPTIONS`'s checks as the CLI does (without the root check)."""
    parser = infra_cli.build_parser((*infra_cli.COMMANDS, lab_cli.register))
    args = parser.parse_args(["lab", "up", *options])
    args.lab_run(args)


@pytest.fixture
def lab_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory that does not exist yet and an empty Kuma cache (no source build installed)."""
    monkeypatch.setenv("CARESTACK_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("CARESTACK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CARESTACK_KUMA_SOURCES", raising=False)
    return tmp_path / "lab"


def test_the_default_is_the_npm_kuma_and_it_is_recorded(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.kuma_version == NPM_VERSION
    save_config(LabConfig(tmp_path, kuma_version="1.23.16"))
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["kuma_version"] == "1.23.16"
    assert load_config(tmp_path).kuma_version == "1.23.16"


def test_a_lab_recorded_before_the_kuma_version_setting_runs_the_npm_kuma(tmp_path: Path) -> None:
    save_config(LabConfig(tmp_path))
    saved = json.loads((tmp_path / CONFIG_FILE).read_text())
    del saved["kuma_version"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(saved))
    assert load_config(tmp_path).kuma_version == NPM_VERSION


def test_an_unknown_version_is_refused_naming_the_supported_ones(
    lab_dirs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _up(lab_dirs, "--kuma-version", "1.22.1")
    assert "invalid choice: '1.22.1' (choose from '2.0.0-dev.0', '1.23.16', '2.5.3')" in capsys.readouterr().err
    assert not lab_dirs.exists()


def test_an_unknown_version_in_recorded_settings_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"kuma_version: expected one of 2\.0\.0-dev\.0, 1\.23\.16, 2\.5\.3, got '9'"):
        LabConfig(tmp_path, kuma_version="9")


def test_without_a_sources_directory_it_names_the_variable_and_the_file(lab_dirs: Path) -> None:
    with pytest.raises(
        LabError,
        match=r"--kuma-version 1\.23\.16: .*set CARESTACK_KUMA_SOURCES to the directory holding "
        r"uptime-kuma-1\.23\.16\.tar\.gz",
    ):
        _up(lab_dirs, "--kuma-version", "1.23.16")
    assert not lab_dirs.exists()


def test_a_sources_directory_without_the_tarball_names_the_file(
    lab_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    monkeypatch.setenv("CARESTACK_KUMA_SOURCES", str(sources))
    with pytest.raises(
        LabError, match=r"--kuma-version 2\.5\.3: " + re.escape(f"{sources}/uptime-kuma-2.5.3.tar.gz: no such file")
    ):
        _up(lab_dirs, "--kuma-version", "2.5.3")
    assert not lab_dirs.exists()


def test_a_lab_set_up_with_one_version_refuses_another(lab_dirs: Path) -> None:
    save_config(LabConfig(lab_dirs, kuma_version="1.23.16"))
    before = (lab_dirs / CONFIG_FILE).read_text()
    with pytest.raises(LabError, match=r"was set up with kuma_version=1\.23\.16; run `carestack lab down`"):
        _up(lab_dirs, "--kuma-version", NPM_VERSION)
    assert (lab_dirs / CONFIG_FILE).read_text() == before
