"""The host: world-writable files or directories in the site root, files owned by another site's user."""

from __future__ import annotations

import os
import stat

from .base import Baseline, Finding, ScanSite

NAME = "host"


class HostCheck:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        out: list[Finding] = []
        for dirpath, dirnames, _ in os.walk(site.root):
            for d in dirnames:
                path = os.path.join(dirpath, d)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                    rel = os.path.relpath(path, site.root)
                    out.append(Finding(NAME, "high", f"directory anyone on the host can write to: {rel}", rel + "/"))
        for rel, rec in site.files.items():
            if "link" not in rec and rec["mode"] & stat.S_IWOTH:
                out.append(Finding(NAME, "high", f"file anyone on the host can write to: {rel}", rel))
        others: dict[int, str] = {}
        for other in site.other_roots:
            try:
                uid = os.stat(other).st_uid
            except OSError:
                continue
            if uid != 0:
                others[uid] = str(other)
        try:
            own = os.stat(site.root).st_uid
        except OSError:
            own = -1
        others.pop(own, None)  # sites that share one user are not each other's strangers
        for rel, rec in sorted(site.files.items()):
            if rec["uid"] in others:
                out.append(Finding(NAME, "high", f"{rel} is owned by the user of another site ({others[rec['uid']]})",
                                   rel, {"uid": rec["uid"]}))  # fmt: skip
        return out
