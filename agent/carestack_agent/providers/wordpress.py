"""wordpress: plugins and themes, through WordPress's own upgrader (no wp-cli needed).

The agent runs `wp-update.php` (shipped next to this module) with the PHP CLI,
as the owner of the site's files, so everything it writes is the site's own.
WordPress core is left to whoever installed it: Debian's `wordpress` package
(the apt provider) or the agency's deployment.

Where updates come from:
- `updates.wordpress_feed` set: the agency's own feed, a directory holding
  `index.json` or the URL of one:

      {"plugins": {"<slug>": {"<version>": "<zip>", ...}, ...},
       "themes":  {"<stylesheet>": {"<version>": "<zip>", ...}, ...}}

  A plugin's slug is its directory under wp-content/plugins (`akismet` for
  `akismet/akismet.php`). A zip path is relative to the feed (directory or
  URL) unless absolute; zips are built like WordPress.org's (one top-level
  directory named like the slug).
- unset: WordPress.org, asked the way WordPress asks (`wp_update_plugins()`).

Policy (the plan's wordpress_policy): `minor` takes the newest version with the
same major number (first component: 1.4 -> 1.9 yes, 1.9 -> 2.0 held),
`all` the newest, `none` nothing. Versions compare like PHP's version_compare.
Rollback is the pre-update snapshot (files and database).
"""

from __future__ import annotations

import json
import os
import pwd
import urllib.error
import urllib.parse
import urllib.request
from functools import cmp_to_key
from pathlib import Path
from typing import Any

from ..jobs import Context
from ..proc import run
from ..versions import major, php_compare
from .base import Change, Offer, ProviderError, Remembered

SCRIPT = Path(__file__).with_name("wp-update.php")
FEED_INDEX = "index.json"
FEED_TIMEOUT_SECONDS = 30
KINDS = {"plugins": "plugin", "themes": "theme"}

Offered = dict[tuple[str, str], dict[str, str]]  # (kind, slug) -> {version: package}


def plugin_slug(plugin_file: str) -> str:
    directory, _, base = plugin_file.rpartition("/")
    return directory or base.removesuffix(".php")


def parse_feed(data: Any, where: str, resolve: Any) -> Offered:
    """The feed's offers; a ProviderError names the feed and the key that is wrong."""
    if not isinstance(data, dict) or set(data) - set(KINDS):
        raise ProviderError(f'{where}: must be an object with "plugins" and/or "themes"')
    offered: Offered = {}
    for section, kind in KINDS.items():
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise ProviderError(f"{where}: {section} must map names to {{version: zip}}")
        for slug, versions in entries.items():
            if not isinstance(versions, dict) or not all(
                isinstance(v, str) and isinstance(p, str) and v and p for v, p in versions.items()
            ):
                raise ProviderError(f"{where}: {section}.{slug} must map versions to zip paths or URLs")
            offered[(kind, slug)] = {version: resolve(package) for version, package in versions.items()}
    return offered


def load_feed(feed: str) -> Offered:
    if feed.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(feed, timeout=FEED_TIMEOUT_SECONDS) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ProviderError(f"wordpress feed {feed}: {e}") from None
        return parse_feed(data, feed, lambda p: urllib.parse.urljoin(feed, p))
    index = Path(feed) / FEED_INDEX
    try:
        data = json.loads(index.read_text())
    except (OSError, ValueError) as e:
        raise ProviderError(f"wordpress feed {index}: {e}") from None

    def resolve(package: str) -> str:
        if package.startswith(("http://", "https://")):
            return package
        path = (Path(feed) / package).resolve()
        if not path.is_file():
            raise ProviderError(f"wordpress feed {index}: {package} does not exist")
        return str(path)

    return parse_feed(data, str(index), resolve)


def choose(current: str, versions: list[str], policy: str) -> tuple[list[str], list[str]]:
    """(allowed newest first, held by the policy) among the versions newer than `current`."""
    newer = sorted((v for v in versions if php_compare(v, current) > 0), key=cmp_to_key(php_compare), reverse=True)
    if policy == "all":
        return newer, []
    if policy == "minor":
        return [v for v in newer if major(v) == major(current)], [v for v in newer if major(v) != major(current)]
    return [], newer


class WordPressProvider:
    name = "wordpress"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.site = ctx.site
        self.policy = ctx.site.updates.wordpress_policy

    def _php(self, command: str, items: list[dict[str, Any]] | None = None) -> Any:
        """Run wp-update.php as the owner of the site's files; its JSON answer."""
        owner = os.stat(self.site.root)
        account = pwd.getpwuid(owner.st_uid)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": account.pw_dir}
        done = run(
            [str(self.ctx.config.agent.php), str(SCRIPT), str(self.site.root), self.site.domain, command],
            env=env,
            deadline=self.ctx.deadline,
            input_text=json.dumps(items) if items is not None else None,
            cwd=self.site.root,
            user=(owner.st_uid, account.pw_gid),
        )
        if done.killed:
            raise ProviderError(f"wordpress {command}: killed at the job's deadline")
        if done.returncode != 0:
            raise ProviderError(f"wordpress {command}: {done.last_error()}")
        try:
            return json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise ProviderError(f"wordpress {command}: no answer from wp-update.php") from None

    def _offered(self) -> Offered:
        feed = self.site.updates.wordpress_feed
        if feed:
            return load_feed(feed)
        offered: Offered = {}
        for item in self._php("available"):
            slug = plugin_slug(item["name"]) if item["kind"] == "plugin" else item["name"]
            offered.setdefault((item["kind"], slug), {})[item["version"]] = item["source"]
        return offered

    def discover(self, failed: Remembered) -> Offer:
        offer = Offer(self.name)
        if self.policy == "none":
            offer.notes.append("wordpress: policy none")
            return offer
        installed = self._php("inventory")
        offered = self._offered()
        for kind, section in (("plugin", "plugins"), ("theme", "themes")):
            for item in installed[section]:
                name, version = str(item["name"]), str(item["version"] or "0")
                slug = plugin_slug(name) if kind == "plugin" else name
                packages = offered.get((kind, slug), {})
                allowed, held = choose(version, list(packages), self.policy)
                if held:
                    offer.notes.append(f"wordpress: {kind} {slug} {held[0]} held (major; policy {self.policy})")
                for candidate in allowed:
                    change = Change(self.name, kind, name, version, candidate, packages[candidate])
                    why = failed.blocked(change)
                    if why is None:
                        offer.changes.append(change)
                        break
                    offer.notes.append(why)
        return offer

    def prepare(self, offer: Offer) -> None:
        pass  # packages are read by WordPress itself while it upgrades

    def apply(self, offer: Offer) -> list[Change]:
        items = [
            {"kind": c.kind, "name": c.name, "to_version": c.to_version, "source": c.source} for c in offer.changes
        ]
        results = self._php("apply", items)
        failed = [r for r in results if not r.get("ok")]
        if failed:
            details = [
                f"{r['kind']} {r['name']}: {r.get('error') or 'now at ' + str(r.get('version'))}"
                + (f" ({'; '.join(r['messages'][-2:])})" if r.get("messages") else "")
                for r in failed
            ]
            raise ProviderError("wordpress upgrade failed: " + "; ".join(details))
        return offer.changes

    def rollback(self, offer: Offer) -> str | None:
        return None  # the pre-update snapshot holds the previous plugins, themes and database

    def finish(self, offer: Offer) -> None:
        pass

    def close(self) -> None:
        pass
