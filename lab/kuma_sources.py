"""Install a released Uptime Kuma (1.23.16, 2.5.3) from its upstream source tarball, once per machine.

No package registry serves a released Kuma (npm has only the 2.0.0-dev.0 snapshot the lab
installs by default). A source tarball of a pinned version is taken from the directory
named by CARESTACK_KUMA_SOURCES (`uptime-kuma-<version>.tar.gz`, as upstream's `git archive`
of the tag) or, where that directory does not hold it, downloaded from upstream's tag archive
(CARESTACK_KUMA_RELEASE_URL overrides the URL, `{version}` in it, for a mirror) into the cache;
either way checked against its pinned sha256 before anything is unpacked, then unpacked under
the cache directory and given its production dependencies by npm. The web UI is not built (that needs the dev
dependencies and vite): the socket API and the status page API work without it; a person
opening Kuma in a browser sees an empty page.

    server_dir = ensure_source_install("2.5.3", cache_dir)   # node server/server.js runs here

Stdlib only, and independent of where the lab lives: the lab's `--kuma-version` and the
monitor tests both call it. `SUPPORTED_VERSIONS` is every Kuma the lab can run: the npm
snapshot (`lab.kuma_server` installs it) and the pinned source releases.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from lab.procs import log_tail

SOURCES_ENV = "CARESTACK_KUMA_SOURCES"
RELEASE_URL_ENV = "CARESTACK_KUMA_RELEASE_URL"
UPSTREAM_RELEASE_URL = "https://github.com/louislam/uptime-kuma/archive/refs/tags/{version}.tar.gz"
DOWNLOAD_TIMEOUT_SECONDS = 60
# sha256 of upstream's tag archives (vendor/uptime-kuma/README.md).
SOURCE_RELEASES = {
    "1.23.16": "04cda9ce88c5cec90eb612d495c58859e2f3ff9d813295d660cd3f6b4bd3ffad",
    "2.5.3": "30b8c0458c8b9fa6e91c63c7c46273305e8e62bdcb0eaa8c5c203e92e5d2714d",
}
# The only Kuma the npm registry serves; what the lab runs on a machine with no source tarballs.
NPM_VERSION = "2.0.0-dev.0"
SUPPORTED_VERSIONS = (NPM_VERSION, *SOURCE_RELEASES)
_READY_MARKER = ".carestack-installed"


class KumaSourceError(RuntimeError):
    """A released Kuma could not be installed; the message says what is missing and where."""


class NotThePinnedRelease(KumaSourceError):
    """A tarball whose sha256 is not the pinned one: never unpacked, never retried elsewhere."""


def tarball_name(version: str) -> str:
    return f"uptime-kuma-{version}.tar.gz"


def install_dir(version: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"uptime-kuma-{version}-source"


def sources_dir() -> Path | None:
    value = os.environ.get(SOURCES_ENV)
    return Path(value) if value else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def release_url(version: str) -> str:
    return (os.environ.get(RELEASE_URL_ENV) or UPSTREAM_RELEASE_URL).format(version=version)


def _pinned(path: Path, version: str, origin: str) -> None:
    found = _sha256(path)
    if found != SOURCE_RELEASES[version]:
        raise NotThePinnedRelease(f"{origin}: sha256 {found} is not the pinned {SOURCE_RELEASES[version]} of {version}")


def _download(version: str, cache_dir: Path) -> Path:
    """The pinned tarball of `version` in the cache's downloads, fetched from the release URL if not
    there yet. A download is written aside and checked before it takes the tarball's name."""
    target = Path(cache_dir) / "downloads" / tarball_name(version)
    if target.is_file():
        _pinned(target, version, str(target))
        return target
    url = release_url(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as answer, open(partial, "wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
        _pinned(partial, version, url)
        partial.rename(target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise KumaSourceError(f"{url}: could not be downloaded ({reason})") from None
    finally:
        partial.unlink(missing_ok=True)
    return target


def source_tarball(version: str, cache_dir: Path, sources: Path | None) -> Path:
    """The pinned source tarball of `version`: from `sources` if it holds it, else downloaded."""
    if sources is not None and (Path(sources) / tarball_name(version)).is_file():
        path = Path(sources) / tarball_name(version)
        _pinned(path, version, str(path))
        return path
    try:
        return _download(version, cache_dir)
    except NotThePinnedRelease:
        raise
    except KumaSourceError as exc:
        if sources is None:
            raise KumaSourceError(
                f"Uptime Kuma {version} is installed from its source tarball: set {SOURCES_ENV} to the directory "
                f"holding {tarball_name(version)}, or let it be downloaded ({exc})"
            ) from None
        raise KumaSourceError(
            f"{Path(sources) / tarball_name(version)}: no such file ({SOURCES_ENV}={sources}), and {exc}"
        ) from None


def check_available(version: str, cache_dir: Path, sources: Path | None = None) -> None:
    """Raise KumaSourceError unless `version` is installed under `cache_dir` or its pinned tarball is at hand."""
    if version not in SOURCE_RELEASES:
        raise KumaSourceError(
            f"no pinned source release of Uptime Kuma {version}; pinned: {', '.join(sorted(SOURCE_RELEASES))}"
        )
    if not (install_dir(version, cache_dir) / _READY_MARKER).exists():
        source_tarball(version, cache_dir, sources if sources is not None else sources_dir())


def ensure_source_install(version: str, cache_dir: Path, sources: Path | None = None) -> Path:
    """The directory to run `node server/server.js` in for `version`; installed on first use.

    A lock serializes concurrent installers; the install happens in a `.partial` directory
    renamed into place, so an interrupted install is never mistaken for a finished one.
    """
    if version not in SOURCE_RELEASES:
        raise KumaSourceError(
            f"no pinned source release of Uptime Kuma {version}; pinned: {', '.join(sorted(SOURCE_RELEASES))}"
        )
    target = install_dir(version, cache_dir)
    if (target / _READY_MARKER).exists():
        return target
    tarball = source_tarball(version, cache_dir, sources if sources is not None else sources_dir())
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise KumaSourceError("node and npm are needed to install Uptime Kuma from source (apt-get install nodejs npm)")
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / f".kuma-{version}-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _READY_MARKER).exists():  # another process finished meanwhile
            return target
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(partial, filter="data")
        [tree] = [p for p in partial.iterdir() if p.is_dir()]
        log = Path(cache_dir) / f"kuma-{version}-npm-install.log"
        env = dict(os.environ)
        if Path("/usr/include/node/node.h").exists():
            env.setdefault("npm_config_nodedir", "/usr")  # the sqlite3 binding builds against local headers
        with open(log, "wb") as out:
            result = subprocess.run(
                [npm, "install", "--omit=dev", "--no-audit", "--no-fund"],
                cwd=tree,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        if result.returncode != 0:
            raise KumaSourceError(f"npm install of Uptime Kuma {version} failed; {log}:\n{log_tail(log)}")
        # The server refuses to start without a built web UI; an empty page stands in for it.
        (tree / "dist").mkdir(exist_ok=True)
        if not (tree / "dist" / "index.html").exists():
            (tree / "dist" / "index.html").write_text("<html><body>Uptime Kuma (web UI not built)</body></html>\n")
        (tree / _READY_MARKER).write_text(f"uptime-kuma {version} from {tarball.name}\n")
        shutil.rmtree(target, ignore_errors=True)
        tree.rename(target)
        shutil.rmtree(partial, ignore_errors=True)
    return target
