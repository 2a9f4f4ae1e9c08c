"""Installing a released Kuma from source refuses, by name, what it cannot trust or find (before npm runs),
and downloads the pinned release where no tarball is at hand (from an upstream stand-in on loopback)."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from lab.kuma_sources import (
    RELEASE_URL_ENV,
    SOURCE_RELEASES,
    SOURCES_ENV,
    KumaSourceError,
    NotThePinnedRelease,
    ensure_source_install,
    source_tarball,
)


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


class _Release(http.server.BaseHTTPRequestHandler):
    body: ClassVar[bytes] = b""
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Release]]:
    """An upstream stand-in on loopback serving `body` for any tag; its URL is the release URL."""
    handler = type("Release", (_Release,), {"body": b"", "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(RELEASE_URL_ENV, f"http://127.0.0.1:{server.server_port}/archive/{{version}}.tar.gz")
    monkeypatch.delenv(SOURCES_ENV, raising=False)
    yield handler
    server.shutdown()


def test_without_a_tarball_at_hand_the_pinned_release_is_downloaded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release: type[_Release]
) -> None:
    release.body = b"the 2.5.3 tag archive"
    monkeypatch.setitem(SOURCE_RELEASES, "2.5.3", hashlib.sha256(release.body).hexdigest())
    cache = tmp_path / "cache"
    path = source_tarball("2.5.3", cache, None)
    assert path == cache / "downloads" / "uptime-kuma-2.5.3.tar.gz" and path.read_bytes() == release.body
    assert source_tarball("2.5.3", cache, tmp_path / "empty-sources") == path  # a sources dir without it: the cache
    assert release.requests == ["/archive/2.5.3.tar.gz"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["uptime-kuma-2.5.3.tar.gz"]


def test_a_download_that_is_not_the_pinned_release_is_refused_and_not_kept(
    tmp_path: Path, release: type[_Release]
) -> None:
    release.body = b"a tampered archive"
    with pytest.raises(
        NotThePinnedRelease, match=r"/archive/1\.23\.16\.tar\.gz: sha256 [0-9a-f]{64} is not the pinned 04cda9ce"
    ):
        source_tarball("1.23.16", tmp_path / "cache", None)
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []


def test_an_unreachable_release_url_is_named_with_the_variable_that_avoids_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SOURCES_ENV, raising=False)
    monkeypatch.setenv(RELEASE_URL_ENV, "http://127.0.0.1:9/{version}.tar.gz")
    with pytest.raises(KumaSourceError) as failure:
        ensure_source_install("2.5.3", tmp_path / "cache")
    message = str(failure.value)
    assert "set CARESTACK_KUMA_SOURCES to the directory holding uptime-kuma-2.5.3.tar.gz" in message
    assert "http://127.0.0.1:9/2.5.3.tar.gz: could not be downloaded" in message
    assert not (tmp_path / "cache" / "uptime-kuma-2.5.3-source").exists()
