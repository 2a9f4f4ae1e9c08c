"""This machine's Debian mirror, read from its apt sources at run time.

The lab's base image is bootstrapped from it, the apt proxy fetches from it,
and the servers' own apt sources name it (their requests go through the
proxy). Nothing in the repository names a mirror.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

SOURCES_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class DebianMirror:
    codename: str
    archive: AptSource  # .../debian: the release and its updates
    security: AptSource | None  # .../debian-security

    @property
    def url(self) -> str:
        return self.archive.uri

    def sources_text(self) -> str:
        """The servers' /etc/apt/sources.list.d/debian.sources (deb822)."""
        stanzas = []
        for source in (self.archive, self.security):
            if source is not None:
                stanzas.append(
                    f"Types: deb\nURIs: {source.uri}\nSuites: {' '.join(source.suites)}\n"
                    f"Components: {' '.join(source.components)}\n"
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                )
        return "\n".join(stanzas)


def _deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
            for uri in fields.get("uris", "").split():
                sources.append(
                    AptSource(uri, tuple(fields.get("suites", "").split()), tuple(fields.get("components", "").split()))
                )
    return sources


def _one_line(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        words = re.sub(r"\[[^\]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            sources.append(AptSource(words[1], (words[2],), tuple(words[3:])))
    return sources


def apt_sources(root: Path = SOURCES_DIR) -> list[AptSource]:
    files = [root / "sources.list", *sorted((root / "sources.list.d").glob("*"))]
    sources: list[AptSource] = []
    for path in files:
        if path.suffix == ".sources":
            sources += _deb822(path.read_text())
        elif path.suffix == ".list" or path.name == "sources.list":
            sources += _one_line(path.read_text()) if path.exists() else []
    return sources


def codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise LabError(f"{os_release}: no VERSION_CODENAME; the lab needs a Debian machine")


def _merge(sources: list[AptSource]) -> AptSource | None:
    if not sources:
        return None
    suites = tuple(dict.fromkeys(s for source in sources for s in source.suites))
    components = tuple(dict.fromkeys(c for source in sources for c in source.components))
    return AptSource(sources[0].uri.rstrip("/"), suites, components)


def debian_mirror(root: Path = SOURCES_DIR, os_release: Path = Path("/etc/os-release")) -> DebianMirror:
    """The machine's Debian archive (and security archive) for its release."""
    name = codename(os_release)
    sources = [s for s in apt_sources(root) if any(suite.split("-")[0] == name for suite in s.suites)]
    archive = [s for s in sources if s.uri.rstrip("/").endswith("/debian")]
    security = [s for s in sources if s.uri.rstrip("/").endswith("/debian-security")]
    merged = _merge(archive)
    if merged is None:
        raise LabError(
            f"no Debian mirror for {name} in {root}/sources.list or {root}/sources.list.d/ "
            "(expected an entry whose URI ends in /debian)"
        )
    for source in (merged, _merge(security)):
        if source is not None and not source.uri.startswith("http://"):
            raise LabError(
                f"the Debian mirror {source.uri} is not plain http: the lab's apt proxy (apt-cacher-ng) "
                "can only cache http mirrors"
            )
    return DebianMirror(name, merged, _merge(security))
