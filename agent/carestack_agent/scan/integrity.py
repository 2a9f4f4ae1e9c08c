"""File integrity: what changed since the known-good baseline, executable files first."""

from __future__ import annotations

from .base import Baseline, Finding, ScanSite, is_executable

NAME = "integrity"


def _changed(old: dict[str, object], new: dict[str, object]) -> list[str]:
    what = [k for k in ("sha256", "link", "size") if old.get(k) != new.get(k)]
    what += [k for k in ("mode", "uid", "gid") if old.get(k) != new.get(k)]
    return list(dict.fromkeys("content" if k in ("sha256", "link", "size") else k for k in what))


class FileIntegrity:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        if baseline is None:
            return []  # the scan takes the first baseline itself and says so in its summary
        out: list[Finding] = []
        # Caches come and go between scans (the site's backup excludes them too); the other checks still
        # look inside them, so code dropped into a cache is found by what it is, not by being new.
        before = {k: v for k, v in baseline.files.items() if not k.startswith(site.regenerated)}
        now = {k: v for k, v in site.files.items() if not k.startswith(site.regenerated)}
        for rel in sorted(now.keys() - before.keys()):
            code = is_executable(rel)
            out.append(Finding(NAME, "high" if code else "info", f"new {'code ' if code else ''}file {rel}", rel))
        for rel in sorted(before.keys() - now.keys()):
            code = is_executable(rel)
            out.append(Finding(NAME, "medium" if code else "info", f"file deleted: {rel}", rel))
        for rel in sorted(now.keys() & before.keys()):
            what = _changed(before[rel], now[rel])
            if not what:
                continue
            code = is_executable(rel)
            severity = "high" if code and "content" in what else "medium" if code else "info"
            out.append(Finding(NAME, severity, f"{rel} changed ({', '.join(what)})", rel, {"changed": what}))
        return out
