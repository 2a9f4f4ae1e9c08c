"""The README.md of an offboarded client's hand-over: what each file is and how to put the sites up elsewhere.

Written for the client's next host, who knows neither carestack nor restic:
plain tar, gzip and mariadb, and what to change in wp-config.php.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from infra.plan import CarePlan


@dataclass
class SiteHandover:
    """One site's hand-over as fetched: the snapshot it was made from, its files and their sizes."""

    site: str
    snapshot: str
    snapshot_time: str
    files: dict[str, int]  # file name -> bytes


def _site_section(plan: CarePlan, handover: SiteHandover) -> str:
    site = next(s for s in plan.sites if s.id == handover.site)
    files = "\n".join(f"- `{name}` ({size:,} bytes)" for name, size in sorted(handover.files.items()))
    lines = [
        f"## {site.domain} (`{site.id}`)",
        "",
        f"A {site.kind} site, as backed up on {handover.snapshot_time[:19].replace('T', ' ')} UTC "
        f"(snapshot `{handover.snapshot[:8]}`). Its files, each with its sha256 in `{site.id}-manifest.json`:",
        "",
        files,
        "",
        "```sh",
        f"tar -xzf {site.id}-files.tar.gz            # the site's document root, as the directory {site.id}/",
    ]
    if site.database:
        lines += [
            "mariadb -e 'CREATE DATABASE newdb CHARACTER SET utf8mb4'",
            f"gunzip -c {site.id}-database.sql.gz | mariadb newdb   # tables and routines, no CREATE DATABASE",
            "```",
            "",
        ]
        if site.kind in ("wordpress", "woocommerce"):
            lines += [
                f"Then point `{site.id}/wp-config.php` at the new database: `DB_NAME`, `DB_USER`, "
                "`DB_PASSWORD` and `DB_HOST` are the old server's (there the site logged in through the "
                "database server's socket, without a password). Keep `$table_prefix` as it is. Serve the "
                f"directory {site.id}/ as the document root of {', '.join(site.names)}.",
                "",
            ]
    else:
        lines += ["```", "", f"Serve the directory {site.id}/ as the document root of {', '.join(site.names)}.", ""]
    return "\n".join(lines)


def handover_readme(plan: CarePlan, handovers: Sequence[SiteHandover], kept_until: datetime, made: datetime) -> str:
    sites = "\n".join(_site_section(plan, handover) for handover in handovers)
    return f"""# {plan.client.name}: your sites, handed over

Made on {made:%Y-%m-%d %H:%M} UTC when your care contract ({plan.client.tier_title}) ended: for each site
below, its files and its database exactly as the last backup took them, just before the sites were
taken off our server. Nothing was left out or changed.

{sites}
## Older backups

The backups of the contract's term stay in our storage, encrypted, at least until
{kept_until:%Y-%m-%d}. Until then we can restore a site as it was on an earlier day; after that date
they are deleted.
"""
