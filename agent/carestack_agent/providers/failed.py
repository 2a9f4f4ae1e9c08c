"""Versions that broke a site: remembered per component until an operator clears them.

`state_dir/updates/<site>.failed.json` holds, per component (`provider:kind:name`),
every version that failed its probes or its apply and was rolled back, with the
run, the time and what broke. Providers skip a remembered version (with a note
the run prints) and still offer a later, different one.

A rollback is also news the agency must act on: each remembered version stays
*open* (Kuma's UPDATE monitor stays down, `status` says so) until that component
updates successfully or an operator acknowledges it (`update SITE
--acknowledge`). `update SITE --retry COMPONENT` forgets a component's versions
(and its open rollbacks), so they are offered again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..journal import now_iso
from .base import Change

FORMAT = 2


class UnknownComponent(ValueError):
    """`--retry COMPONENT` names no remembered component, or more than one."""


@dataclass(frozen=True)
class FailedVersion:
    key: str  # provider:kind:name
    label: str  # "plugin akismet/akismet.php", "apt nginx", "release"
    version: str
    from_version: str | None
    run_id: str
    when: str
    broke: str  # what broke: the failing pages, or the apply's error
    open: bool  # not yet resolved by a successful update of the component or acknowledged

    def describe(self) -> str:
        return f"{self.label} {self.from_version or '(none)'}→{self.version}"

    def figures(self) -> dict[str, Any]:
        return {"component": self.key, "label": self.label, "version": self.version, "from": self.from_version,
                "run_id": self.run_id, "when": self.when, "broke": self.broke, "open": self.open}  # fmt: skip


def describe_open(rollbacks: list[FailedVersion], *, pages: bool = True) -> str:
    """`release 1.1→1.2 on 2026-12-01 (plans.example/: HTTP 500, expected 200)`, for each rollback."""
    return "; ".join(f"{f.describe()} on {f.when[:10]} ({f.broke})" if f.broke and pages
                     else f"{f.describe()} on {f.when[:10]}" for f in rollbacks)  # fmt: skip


def retry_name(key: str) -> str:
    """What an operator types after `--retry` for this component: its name (`release` for the site's own code)."""
    _, kind, name = key.split(":", 2)
    return "release" if kind == "release" else name


class FailedVersions:
    """The site's memory of versions that broke it (see the module docstring)."""

    def __init__(self, state_dir: Path, site_id: str) -> None:
        self.site_id = site_id
        self.path = state_dir / "updates" / f"{site_id}.failed.json"

    # -- storage -----------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        """component key -> {"label": ..., "versions": {version: {...}}}; the first format is read too."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        if data.get("format") == FORMAT and isinstance(data.get("components"), dict):
            components_v2: dict[str, dict[str, Any]] = data["components"]
            return components_v2
        # The first format remembered one version per component: {key: {version, run_id, when}}.
        components: dict[str, dict[str, Any]] = {}
        for key, entry in data.items():
            if isinstance(entry, dict) and "version" in entry and key.count(":") >= 2:
                kind, name = key.split(":", 2)[1:]
                label = {"package": f"apt {name}", "release": "release"}.get(kind, f"{kind} {name}")
                versions = {str(entry["version"]): {"run_id": entry.get("run_id", "?"), "when": entry.get("when", "?"),
                                                    "from": None, "broke": "", "open": False}}  # fmt: skip
                components[key] = {"label": label, "versions": versions}
        return components

    def _save(self, components: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"format": FORMAT, "components": components}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    # -- reading -----------------------------------------------------------------------------

    def entries(self) -> list[FailedVersion]:
        out = []
        for key, component in sorted(self._load().items()):
            for version, e in component.get("versions", {}).items():
                out.append(FailedVersion(key, str(component.get("label", key)), version, e.get("from"),
                                         str(e.get("run_id", "?")), str(e.get("when", "?")), str(e.get("broke", "")),
                                         bool(e.get("open"))))  # fmt: skip
        return sorted(out, key=lambda f: (f.when, f.key, f.version))

    def open_rollbacks(self) -> list[FailedVersion]:
        return [f for f in self.entries() if f.open]

    def still_rolled_back(self, rollbacks: list[FailedVersion]) -> str:
        """What a successful run says (and pushes down) while these rollbacks are open."""
        return (f"still rolled back: {describe_open(rollbacks)} (`carestack-agent update {self.site_id} "
                f"--acknowledge` once dealt with)")  # fmt: skip

    def blocked(self, change: Change) -> str | None:
        """Why this exact change is not offered (a line for the run's output), or None."""
        entry = self._load().get(change.key, {}).get("versions", {}).get(change.to_version)
        if entry is None:
            return None
        return (
            f"{change.label} {change.to_version} skipped: it broke the site and was rolled back on "
            f"{str(entry.get('when', '?'))[:10]} (`carestack-agent update {self.site_id} --retry "
            f"{retry_name(change.key)}` offers it again)"
        )

    def match(self, component: str) -> str:
        """The remembered component an operator means: its key, its name, a plugin's slug, or `release`."""
        components = self._load()
        keys = sorted(components)
        found = [k for k in keys if component in (k, k.split(":", 2)[2], retry_name(k))]
        if not found:  # a plugin by its directory: "akismet" for akismet/akismet.php
            found = [k for k in keys if k.split(":", 2)[2].split("/")[0] == component]
        if len(found) == 1:
            return found[0]
        known = ", ".join(retry_name(k) for k in keys) or "none"
        if found:
            raise UnknownComponent(f"--retry {component}: matches {', '.join(found)}; name one of them exactly")
        raise UnknownComponent(f"--retry {component}: no version of it is remembered as broken on "
                               f"{self.site_id} (remembered: {known})")  # fmt: skip

    # -- changing ----------------------------------------------------------------------------

    def add(self, changes: list[Change], run_id: str, broke: str) -> None:
        """These changes broke the site and were rolled back: remember each version, open."""
        components = self._load()
        for change in changes:
            component = components.setdefault(change.key, {"label": change.label, "versions": {}})
            component["label"] = change.label
            component["versions"][change.to_version] = {
                "from": change.from_version, "run_id": run_id, "when": now_iso(), "broke": broke, "open": True
            }  # fmt: skip
        self._save(components)

    def _close(self, keys: set[str] | None, why: str) -> list[FailedVersion]:
        components = self._load()
        closed = [f for f in self.entries() if f.open and (keys is None or f.key in keys)]
        for f in closed:
            entry = components[f.key]["versions"][f.version]
            entry["open"], entry["closed"] = False, f"{why} {now_iso()}"
        if closed:
            self._save(components)
        return closed

    def resolve(self, changes: list[Change], run_id: str) -> list[FailedVersion]:
        """These components updated successfully: their earlier rollbacks are settled (the versions stay held)."""
        return self._close({c.key for c in changes}, f"updated by run {run_id}")

    def acknowledge(self, who: str) -> list[FailedVersion]:
        """An operator has seen every open rollback (the versions stay held)."""
        return self._close(None, f"acknowledged by {who}")

    def forget(self, key: str) -> list[FailedVersion]:
        """An operator clears a component: its versions are offered again."""
        components = self._load()
        gone = [f for f in self.entries() if f.key == key]
        if components.pop(key, None) is not None:
            self._save(components)
        return gone
