"""The database: new administrators, a moved siteurl/home, scripts in autoloaded options, new cron hooks.

Read with the mariadb client over the unix socket as root (as the dumps are);
values come back hex-encoded, so no value can break the tab/newline framing.
The baseline keeps the administrators' logins, siteurl, home and the cron
hooks; a hook is recognised in WordPress's serialized `cron` option as a key
whose value is keyed by the 32-hex-digit argument signature WordPress writes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from .base import Baseline, CheckError, DatabaseTarget, Finding, ScanSite

NAME = "database"
CRON_HOOK = re.compile(r's:\d+:"([^"]+)";a:\d+:\{s:32:"[0-9a-f]{32}";')
SCRIPT = re.compile(r"<script\b|<iframe\b|javascript:", re.I)


def query(mariadb: Path, db: DatabaseTarget, sql: str) -> list[list[str]]:
    argv = [str(mariadb), f"--socket={db.socket}", "--user=root", "--batch", "--skip-column-names", db.name, "-e", sql]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    except FileNotFoundError:
        raise CheckError(f"{mariadb}: not installed") from None
    except subprocess.TimeoutExpired:
        raise CheckError("the database did not answer within 120 s") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [""]
        raise CheckError(f"database {db.name}: mariadb exited with status {proc.returncode}: {lines[-1]}")
    return [
        [bytes.fromhex(cell).decode(errors="replace") for cell in line.split("\t")] for line in proc.stdout.splitlines()
    ]


WORDPRESS_KINDS = ("wordpress", "woocommerce")


def applies(site: ScanSite) -> bool:
    """WordPress's tables are read only on a WordPress site: another site's database has its own schema."""
    return site.database is not None and site.kind in WORDPRESS_KINDS


def state(site: ScanSite) -> dict[str, Any]:
    """The facts the baseline keeps and the check compares ({} where the check does not apply)."""
    db = site.database
    if db is None or not applies(site):
        return {}
    p = db.table_prefix
    admins = query(
        site.mariadb, db,
        f"SELECT HEX(u.user_login) FROM `{p}users` u JOIN `{p}usermeta` m ON m.user_id = u.ID "
        f"WHERE m.meta_key = '{p}capabilities' AND m.meta_value LIKE '%\"administrator\"%' ORDER BY u.user_login",
    )  # fmt: skip
    rows = query(
        site.mariadb, db,
        f"SELECT HEX(option_name), HEX(option_value) FROM `{p}options` "
        "WHERE option_name IN ('siteurl', 'home', 'cron')",
    )  # fmt: skip
    options = {row[0]: row[1] for row in rows if len(row) == 2}
    return {
        "admins": sorted(r[0] for r in admins),
        "siteurl": options.get("siteurl"),
        "home": options.get("home"),
        "cron_hooks": sorted(set(CRON_HOOK.findall(options.get("cron", "")))),
    }


def scripted_options(site: ScanSite) -> list[str]:
    db = site.database
    assert db is not None
    rows = query(
        site.mariadb, db,
        f"SELECT HEX(option_name), HEX(option_value) FROM `{db.table_prefix}options` "
        "WHERE autoload IN ('yes', 'on', 'auto', 'auto-on') AND (option_value LIKE '%<script%' "
        "OR option_value LIKE '%<iframe%' OR option_value LIKE '%javascript:%')",
    )  # fmt: skip
    return sorted(r[0] for r in rows if len(r) == 2 and SCRIPT.search(r[1]))


class DatabaseCheck:
    name = NAME

    def run(self, site: ScanSite, baseline: Baseline | None) -> list[Finding]:
        if not applies(site):
            return []
        now = state(site)
        out = [
            Finding(
                NAME,
                "high",
                f"script or iframe in the autoloaded option {name} (runs on every page)",
                detail={"option": name},
            )
            for name in scripted_options(site)
        ]
        before = baseline.database if baseline else {}
        if not before:
            return out
        for login in sorted(set(now["admins"]) - set(before.get("admins", []))):
            out.append(Finding(NAME, "critical", f"new administrator account: {login}", detail={"login": login}))
        for key in ("siteurl", "home"):
            if before.get(key) != now[key]:
                out.append(Finding(NAME, "critical", f"{key} changed from {before.get(key)} to {now[key]}"))
        for hook in sorted(set(now["cron_hooks"]) - set(before.get("cron_hooks", []))):
            out.append(Finding(NAME, "medium", f"new WordPress cron hook: {hook}", detail={"hook": hook}))
        return out
