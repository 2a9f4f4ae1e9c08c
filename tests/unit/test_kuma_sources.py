"""Installing a released Kuma from source refuses, by name, what it cannot trust or find (before npm runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.kuma_sources import KumaSourceError, ensure_source_install


def test_an_unpinned_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        KumaSourceError, match=r"no pinned source release of Uptime Kuma 1\.22\.1; pinned: 1\.23\.16, 2\.5\.3"
    ):
        ensure_source_install("1.22.1", tmp_path / "cache", tmp_path)


def test_a_missing_tarball_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KumaSourceError, match=r"uptime-kuma-2\.5\.3\.tar\.gz: no such file"):
        ensure_source_install("2.5.3", tmp_path / "cache", tmp_path)


def test_a_tarball_that_is_not_the_pinned_release_is_refused(tmp_path: Path) -> None:
    (tmp_path / "uptime-kuma-2.5.3.tar.gz").write_bytes(b"not the release")
    with pytest.raises(KumaSourceError, match=r"sha256 [0-9a-f]{64} is not the pinned 30b8c045"):
        ensure_source_install("2.5.3", tmp_path / "cache", tmp_path)
    assert not (tmp_path / "cache").exists()  # nothing was unpacked


def test_without_a_sources_directory_it_says_which_variable_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CARESTACK_KUMA_SOURCES", raising=False)
    with pytest.raises(
        KumaSourceError, match=r"set CARESTACK_KUMA_SOURCES to the directory holding uptime-kuma-1\.23\.16\.tar\.gz"
    ):
        ensure_source_install("1.23.16", tmp_path / "cache")
