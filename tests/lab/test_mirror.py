"""Reading the Debian mirror from apt sources (deb822 and one-line), as the lab does at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.mirror import debian_mirror

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'


def _apt(tmp_path: Path, sources: dict[str, str]) -> tuple[Path, Path]:
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    for name, text in sources.items():
        (apt / name).write_text(text)
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE)
    return apt, os_release


def test_deb822_sources_give_archive_and_security(tmp_path: Path) -> None:
    apt, os_release = _apt(
        tmp_path,
        {
            "sources.list.d/debian.sources": (
                "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
                "Components: main\n\n"
                "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
                "Components: main\n\n"
                "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n"
            )
        },
    )
    mirror = debian_mirror(apt, os_release)
    assert mirror.url == "http://mirror.example/debian"
    assert mirror.archive.suites == ("bookworm", "bookworm-updates")
    assert mirror.security is not None and mirror.security.uri == "http://mirror.example/debian-security"
    text = mirror.sources_text()
    assert "URIs: http://mirror.example/debian\n" in text and "Suites: bookworm-security" in text
    assert "vendor.example" not in text


def test_one_line_sources_are_read_too(tmp_path: Path) -> None:
    apt, os_release = _apt(
        tmp_path,
        {"sources.list": "# comment\ndeb [arch=amd64] http://mirror.example/debian/ bookworm main contrib\n"},
    )
    mirror = debian_mirror(apt, os_release)
    assert mirror.url == "http://mirror.example/debian"
    assert mirror.archive.components == ("main", "contrib")
    assert mirror.security is None


def test_no_debian_mirror_or_https_only_is_a_clear_error(tmp_path: Path) -> None:
    apt, os_release = _apt(tmp_path, {"sources.list": "deb http://mirror.example/ubuntu jammy main\n"})
    with pytest.raises(LabError, match="no Debian mirror for bookworm"):
        debian_mirror(apt, os_release)
    (apt / "sources.list").write_text("deb https://mirror.example/debian bookworm main\n")
    with pytest.raises(LabError, match="not plain http"):
        debian_mirror(apt, os_release)
