"""Known-bad patterns: this project's YARA rules (rules/*.yar) run by the `yara` CLI over the site root.

Only the site's inventoried regular files are scanned, each content once per rule set (see run_yara).
Each rule's meta says its severity, its plain-language line and its scope:
`all` (any file), `themes` (files under wp-content/themes) or `htaccess`
(.htaccess and .user.ini). The CLI (Debian's `yara`) keeps the agent
stdlib-only; it runs niced, single-threaded, without following links and
skipping files over SKIP_LARGER bytes (media, archives). An absolute redirect
in .htaccess to the site's own domain is not a finding.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from .base import Baseline, CheckError, Finding, ScanSite
from .files import read_json, write_private

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


Match = tuple[str, dict[str, str], str, list[str]]  # rule, meta, absolute path, matched strings


def _yara(site: ScanSite, targets: list[str], *, scan_list: Path | None) -> list[Match]:
    argv = ["nice", "-n", str(site.nice), str(site.yara), "-w", "-N", "-m", "-s", "-p", "1",
            *map(str, rule_files(site.rules_dir))]  # fmt: skip
    argv += ["--scan-list", str(scan_list)] if scan_list else targets
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=3600, env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    except FileNotFoundError:
        raise CheckError(f"{site.yara}: not installed (Debian package yara)") from None
    except subprocess.TimeoutExpired:
        raise CheckError("yara did not finish within an hour") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise CheckError(f"yara exited with status {proc.returncode}: {tail[0]}")
    out: list[Match] = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        if m := HEADER.match(line):
            out.append((m["rule"], dict(META.findall(m["meta"])), m["path"], []))
        elif (s := STRING.match(line)) and out:
            out[-1][3].append(s["data"])
    return out


def rules_digest(site: ScanSite) -> str:
    h = hashlib.sha256(str(site.yara).encode())
    for path in rule_files(site.rules_dir):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def run_yara(site: ScanSite) -> list[tuple[str, dict[str, str], str, list[str]]]:
    """(rule, meta, relative path, matched strings) of every match among the site's files.

    A file's verdict is kept by its sha256 under the rule set's digest: a rescan runs yara only on
    content it has not judged with these rules (new or changed files), so an unchanged site costs a
    walk, not a read of every byte. What this trusts: the inventory's sha256 (see files.py).
    """
    digest = rules_digest(site)
    cache_path = site.cache_dir / "patterns.json" if site.cache_dir else None
    cached = read_json(cache_path) if cache_path else None
    if not isinstance(cached, dict) or cached.get("rules") != digest:
        cached = {"rules": digest, "clean": [], "matched": {}}
    clean: set[str] = set(cached["clean"])
    matched: dict[str, list[Match]] = {k: [tuple(m) for m in v] for k, v in cached["matched"].items()}
    todo: dict[str, str] = {}  # absolute path -> sha256
    wanted: dict[str, list[str]] = {}  # sha256 -> relative paths carrying it
    for rel, rec in site.files.items():
        sha = rec.get("sha256")
        if not sha or rec["size"] > SKIP_LARGER:
            continue
        wanted.setdefault(sha, []).append(rel)
        if sha not in clean and sha not in matched:
            todo[str(site.root / rel)] = sha
    if todo:
        listed = [p for p in todo if "\n" not in p]
        odd = [p for p in todo if "\n" in p]  # a name yara's list file cannot carry: scanned one by one
        found: list[Match] = []
        with tempfile.NamedTemporaryFile("w", suffix=".list", dir=site.cache_dir) as f:
            f.write("".join(p + "\n" for p in listed))
            f.flush()
            if listed:
                found += _yara(site, [], scan_list=Path(f.name))
        for p in odd:
            found += _yara(site, [p], scan_list=None)
        for rule, meta, path, strings in found:
            sha = todo.get(path)
            if sha is not None:
                matched.setdefault(sha, []).append((rule, meta, "", strings))
        clean |= {sha for sha in todo.values() if sha not in matched}
    if cache_path:
        keep = wanted.keys()
        write_private(cache_path, {"rules": digest, "clean": sorted(clean & keep),
                                   "matched": {k: v for k, v in matched.items() if k in keep}})  # fmt: skip
    return [(rule, meta, rel, strings) for sha, ms in matched.items() if sha in wanted
            for rel in wanted[sha] for rule, meta, _, strings in ms]  # fmt: skip


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
        for rule, meta, rel, matched in run_yara(site):
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
