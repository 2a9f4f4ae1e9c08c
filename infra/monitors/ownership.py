"""How carestack recognizes what it owns in a shared Uptime Kuma.

Monitors carry two tags: `carestack` (value: the client id) and `carestack-key`
(a key stable per desired monitor, e.g. "studio-web page /projects/"). Kuma gives
notifications and maintenance windows no tags: those are carestack's by a name
prefix; the status page by its slug. Anything else is never edited or deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OWNER_TAG = "carestack"
KEY_TAG = "carestack-key"
STATUS_PAGE_PREFIX = "carestack-"
TAG_COLOR = "#0f766e"


def owned_prefix(client_id: str) -> str:
    return f"carestack {client_id} · "


def maintenance_title(client_id: str) -> str:
    return f"{owned_prefix(client_id)}update window"


def status_page_slug(client_id: str) -> str:
    """The client's status page (client ids are Kuma-valid slug parts: lower-case letters and digits)."""
    return f"{STATUS_PAGE_PREFIX}{client_id}"


def tag_value(monitor: Mapping[str, Any], name: str) -> str | None:
    return next((str(t.get("value")) for t in monitor.get("tags") or [] if t.get("name") == name), None)


def is_owned(monitor: Mapping[str, Any], client_id: str) -> bool:
    return any(t.get("name") == OWNER_TAG and t.get("value") == client_id for t in monitor.get("tags") or [])


def owner_tags(client_id: str, key: str) -> list[dict[str, str]]:
    """The tags a created monitor carries: its owner and its key."""
    return [
        {"name": OWNER_TAG, "color": TAG_COLOR, "value": client_id},
        {"name": KEY_TAG, "color": TAG_COLOR, "value": key},
    ]
