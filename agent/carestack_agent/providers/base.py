"""What every provider shares: the record of a change, an offer of changes, the provider contract.

A provider first *discovers* what it would change (an `Offer`: exact from/to
versions, plus notes on what it held back and why), *prepares* what a
rollback will need, then *applies* the offer. Offers are JSON-serializable:
the update flow journals each one before applying it, so an interrupted run
can be rolled back by the next agent run from the journal alone.

`discover` is handed the site's memory of versions that broke it before
(`failed.FailedVersions`): a remembered version is skipped with the note it
gives, and a later, different version is still offered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider could not discover, prepare, apply or roll back; the message says what and why."""


@dataclass(frozen=True)
class Change:
    provider: str  # apt | wordpress | release
    kind: str  # package | plugin | theme | release
    name: str  # package name, plugin file, theme stylesheet, artifact name
    from_version: str | None  # None: newly installed
    to_version: str
    source: str | None = None  # where the new version comes from (zip, artifact), for apply

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        """`apt nginx`, `plugin akismet/akismet.php`, `release`."""
        return {"package": f"apt {self.name}", "release": "release"}.get(self.kind, f"{self.kind} {self.name}")

    def describe(self) -> str:
        """`apt nginx 1.0→2.0`, `plugin akismet/akismet.php 5.0→5.1`, `release 1.1→1.2`."""
        return f"{self.label} {self.from_version or '(none)'}→{self.to_version}"

    def figures(self) -> dict[str, Any]:
        return {"provider": self.provider, "kind": self.kind, "name": self.name,
                "from": self.from_version, "to": self.to_version}  # fmt: skip


@dataclass
class Offer:
    provider: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # held back and why; shown in the summary
    data: dict[str, Any] = field(default_factory=dict)  # provider-specific, journaled (e.g. the rollback dir)

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "changes": [asdict(c) for c in self.changes], "data": self.data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Offer:
        changes = [Change(**c) for c in data.get("changes", [])]
        return cls(str(data["provider"]), changes, [], dict(data.get("data", {})))


class Remembered(Protocol):
    """The versions that broke the site before (failed.FailedVersions)."""

    def blocked(self, change: Change) -> str | None:
        """Why this exact change is not offered again (a line for the run's output), or None."""
        ...


class Provider(Protocol):
    name: str

    def discover(self, failed: Remembered) -> Offer: ...

    def prepare(self, offer: Offer) -> None: ...

    def apply(self, offer: Offer) -> list[Change]: ...

    def rollback(self, offer: Offer) -> str | None:
        """Undo what the snapshot cannot (packages); None when the snapshot restore is the whole rollback."""
        ...

    def finish(self, offer: Offer) -> None:
        """The offer stays (probes passed) or was rolled back: drop what only a crashed run would need."""
        ...

    def close(self) -> None:
        """The run is over: release what the provider holds (the host's apt lock)."""
        ...
