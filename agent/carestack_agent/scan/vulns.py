"""Known-vulnerable versions: installed core, plugin and theme versions against a feed.

The feed is JSON, from a file path or an http(s) URL (the config's scan.feed):

    {"format": 1,
     "vulnerabilities": [
       {"type": "plugin",            # plugin | theme | core (core's slug is "wordpress")
        "slug": "akismet",           # the plugin's directory (or file stem) / the theme's directory
        "affected": ">=4.0 <5.0.2",  # comparisons joined by spaces, all must hold; PHP version_compare order
        "fixed_in": "5.0.2",         # null: no fixed version yet
        "reference": "CVE-2099-0001",
        "severity": "high",          # critical | high | medium | info
        "title": "stored XSS in the comment form"}]}

Versions are read the way WordPress reads them: `Version:` in a plugin's main
file header or a theme's style.css, `$wp_version` for core.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from ..versions import php_compare
from .base import SEVERITIES, Baseline, CheckError, Finding, ScanSite
from .core import wp_version

NAME = "vulns"
TYPES = ("plugin", "theme", "core")
CONSTRAINT = re.compile(r"^(<=|>=|<|>|==|=)?([0-9][0-9A-Za-z.+_-]*)$")
HEADER = re.compile(r"^[ \t/*#@]*{}:(.*)$", re.M | re.I)


def header(text: str, name: str) -> str | None:
    m = re.search(HEADER.pattern.format(re.escape(name)), text, re.M | re.I)
    return m.group(1).strip() if m else None


def installed(root: Path) -> list[tuple[str, str, str]]:
    """(type, slug, version) of WordPress core, every plugin and every theme."""
    out: list[tuple[str, str, str]] = []
    if core := wp_version(root):
        out.append(("core", "wordpress", core))
    plugins = root / "wp-content/plugins"
    for entry in sorted(plugins.iterdir()) if plugins.is_dir() else []:
        candidates = sorted(entry.glob("*.php")) if entry.is_dir() else [entry] if entry.suffix == ".php" else []
        for php in candidates:
            try:
                text = php.read_text(errors="replace")[:8192]  # WordPress reads the first 8 KiB too
            except OSError:
                continue
            if header(text, "Plugin Name") and (version := header(text, "Version")):
                out.append(("plugin", entry.stem if entry.is_file() else entry.name, version))
                break
    themes = root / "wp-content/themes"
    for entry in sorted(themes.iterdir()) if themes.is_dir() else []:
        try:
            text = (entry / "style.css").read_text(errors="replace")[:8192]
        except OSError:
            continue
        if version := header(text, "Version"):
            out.append(("theme", entry.name, version))
    return out


def affected(version: str, spec: str) -> bool:
    for part in spec.split():
        m = CONSTRAINT.match(part)
        if not m:
            raise ValueError(f"not a version comparison: {part!r}")
        op, bound = m.group(1) or "=", m.group(2)
        c = php_compare(version, bound)
        if not {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0, "=": c == 0, "==": c == 0}[op]:
            return False
    return True


def load_feed(location: str) -> list[dict[str, Any]]:
    """The feed's entries, every one checked; errors name the entry and the field."""
    try:
        if location.startswith(("http://", "https://")):
            with urllib.request.urlopen(location, timeout=30) as r:
                raw = r.read(64 * 1024 * 1024)
        else:
            raw = Path(location).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as e:
        raise CheckError(f"vulnerability feed {location}: cannot read it ({e})") from None
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("vulnerabilities"), list):
        raise CheckError(f'vulnerability feed {location}: must be {{"format": 1, "vulnerabilities": [...]}}')
    errors: list[str] = []
    for i, v in enumerate(data["vulnerabilities"]):
        where = f"vulnerability feed {location}: vulnerabilities[{i}]"
        if not isinstance(v, dict):
            errors.append(f"{where}: must be an object")
            continue
        if v.get("type") not in TYPES:
            errors.append(f"{where}.type: must be one of {', '.join(TYPES)}, got {v.get('type')!r}")
        for key in ("slug", "affected", "reference"):
            if not isinstance(v.get(key), str) or not v.get(key):
                errors.append(f"{where}.{key}: must be a non-empty string")
        if v.get("severity", "high") not in SEVERITIES:
            errors.append(f"{where}.severity: must be one of {', '.join(SEVERITIES)}, got {v.get('severity')!r}")
        if v.get("fixed_in") is not None and not isinstance(v.get("fixed_in"), str):
            errors.append(f"{where}.fixed_in: must be a version string or null")
        if isinstance(v.get("affected"), str):
            try:
                affected("1", v["affected"])
            except ValueError as e:
                errors.append(f"{where}.affected: {e}")
    if errors:
        raise CheckError("; ".join(errors))
    return list(data["vulnerabilities"])


class VulnerableVersions:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        if site.feed is None or site.kind not in ("wordpress", "woocommerce"):
            return []
        feed = load_feed(site.feed)
        out: list[Finding] = []
        for kind, slug, version in installed(site.root):
            for v in feed:
                if v["type"] == kind and v["slug"] == slug and affected(version, v["affected"]):
                    fix = f"fixed in {v['fixed_in']}" if v.get("fixed_in") else "no fixed version yet"
                    title = f": {v['title']}" if v.get("title") else ""
                    out.append(Finding(
                        NAME, v.get("severity", "high"),
                        f"{kind} {slug} {version} is vulnerable ({v['reference']}{title}); {fix}",
                        detail={"type": kind, "slug": slug, "version": version, "reference": v["reference"],
                                "fixed_in": v.get("fixed_in")},
                    ))  # fmt: skip
        return out
