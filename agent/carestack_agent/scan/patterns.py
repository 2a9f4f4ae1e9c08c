"""Known-bad patterns: this project's YARA rules (rules/*.yar) run by the `yara` CLI over the site root.

Each rule's meta says its severity, its plain-language line and its scope:
`all` (any file), `themes` (files under wp-content/themes) or `htaccess`
(.htaccess and .user.ini). The CLI (Debian's `yara`) keeps the agent
stdlib-only; it runs niced, single-threaded, without following links and
skipping files over SKIP_LARGER bytes (media, archives). An absolute redirect
in .htaccess to the site's own domain is not a finding.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from .base import Baseline, CheckError, Finding, ScanSite

NAME = "patterns"
RULES_DIR = Path(__file__).with_name("rules")
SKIP_LARGER = 16 * 1024 * 1024
HEADER = re.compile(r"^(?P<rule>\w+) \[(?P<meta>.*?)\] (?P<path>/.*)$")
META = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
STRING = re.compile(r"^0x[0-9a-f]+:\$\w+: (?P<data>.*)$")
URL = re.compile(r"https?://[A-Za-z0-9.-]+", re.I)


def rule_files(rules_dir: Path) -> list[Path]:
    files = sorted(rules_dir.glob("*.yar"))
    if not files:
        raise CheckError(f"no YARA rules in {rules_dir}")
    return files


def run_yara(site: ScanSite) -> list[tuple[str, dict[str, str], str, list[str]]]:
    """(rule, meta, path, matched strings) of every match under the site root."""
    argv = ["nice", "-n", str(site.nice), str(site.yara), "-w", "-r", "-N", "-m", "-s", "-p", "1",
            f"--skip-larger={SKIP_LARGER}", *map(str, rule_files(site.rules_dir)), str(site.root)]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=3600, env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    except FileNotFoundError:
        raise CheckError(f"{site.yara}: not installed (Debian package yara)") from None
    except subprocess.TimeoutExpired:
        raise CheckError("yara did not finish within an hour") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CheckError(f"yara exited with status {proc.returncode}: {tail[0]}")
    out: list[tuple[str, dict[str, str], str, list[str]]] = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if m := HEADER.match(line):
            out.append((m["rule"], dict(META.findall(m["meta"])), m["path"], []))
        elif (s := STRING.match(line)) and out:
            out[-1][3].append(s["data"])
    return out


def _in_scope(scope: str, rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    if scope == "themes":
        return rel.startswith("wp-content/themes/")
    if scope == "htaccess":
        return name in (".htaccess", ".user.ini")
    return True


def _foreign_hosts(site: ScanSite, matched: list[str]) -> list[str]:
    own = {site.domain.lower(), f"www.{site.domain.lower()}", site.domain.lower().removeprefix("www.")}
    hosts = {(urlsplit(u).hostname or "").lower() for data in matched for u in URL.findall(data)}
    return sorted(h for h in hosts if h and h not in own)


class KnownBadPatterns:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        out: list[Finding] = []
        root = str(site.root).rstrip("/") + "/"
        for rule, meta, path, matched in run_yara(site):
            rel = path[len(root) :].lstrip("/") if path.startswith(root) else path
            if not _in_scope(meta.get("scope", "all"), rel):
                continue
            message = meta.get("description", rule)
            detail: dict[str, object] = {"rule": rule}
            if rule == "htaccess_redirect_absolute":
                hosts = _foreign_hosts(site, matched)
                if not hosts:
                    continue  # a redirect to the site itself (http → https, bare → www)
                message = f"{message} ({', '.join(hosts)})"
                detail["hosts"] = hosts
            severity = meta.get("severity", "high")
            out.append(Finding(NAME, severity if severity in ("critical", "high", "medium", "info") else "high",
                               f"{rel}: {message}", rel, detail))  # fmt: skip
        return out
