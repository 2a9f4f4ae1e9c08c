"""The current state of a client's monitors in Uptime Kuma, as `carestack lab status` shows it."""

from __future__ import annotations

import urllib.parse

from infra.kuma_client import KumaError, KumaSession, read_public
from infra.monitors.desired import MAX_INTERVAL_SECONDS
from infra.monitors.ownership import is_owned, status_page_slug


def monitor_states(session: KumaSession, client_id: str) -> dict[str, str]:
    """Each of the client's monitors by name: "up", "down", "pending", "maintenance", or "unchecked".

    The latest heartbeat within two intervals (a push monitor beats only when a
    push arrives or its interval runs out); "unchecked" when there is none yet.
    """
    states = {}
    for monitor in session.monitors():
        if not is_owned(monitor, client_id):
            continue
        hours = min(MAX_INTERVAL_SECONDS, 2 * int(monitor["interval"])) // 3600 + 1
        beats = session.api.get_monitor_beats(int(monitor["id"]), hours)
        status = getattr(beats[-1]["status"], "name", "") if beats else ""
        states[str(monitor["name"])] = status.lower() or "unchecked"
    return states


# Kuma's heartbeat status codes (src/util.ts), as `monitor_states` names them.
_STATUS_NAMES = {0: "down", 1: "up", 2: "pending", 3: "maintenance"}


def public_monitor_states(kuma_url: str, client_id: str, timeout: float = 10.0) -> dict[str, str]:
    """Like `monitor_states`, from the client's public status page: two HTTP reads, no login.

    The page lists every monitor carestack keeps for the client (desired.py: one
    section per site), and its heartbeat API gives each monitor's latest beats.
    A login would make Kuma push every monitor's heartbeat list first, which is
    what `lab status` waited for on a fleet. The state is the newest beat's,
    however old; "unchecked" when there is none. A client without a page, or
    with an empty one, has no monitors.
    """
    slug = urllib.parse.quote(status_page_slug(client_id))
    # The heartbeats first: for a slug it does not know, Kuma 1.23's page API never answers, while the
    # heartbeat API answers an empty list.
    beats = read_public(f"{kuma_url}/api/status-page/heartbeat/{slug}", timeout)
    lists = beats.get("heartbeatList") if isinstance(beats, dict) else None
    if beats is None or lists == {}:
        return {}
    page = read_public(f"{kuma_url}/api/status-page/{slug}", timeout)
    if not isinstance(page, dict) or not isinstance(lists, dict):
        raise KumaError(f"{kuma_url}: status page {slug} is not a Kuma status page")
    states = {}
    for group in page.get("publicGroupList") or []:
        for monitor in group.get("monitorList") or []:
            listed = lists.get(str(monitor["id"])) or []
            status = _STATUS_NAMES.get(listed[-1].get("status")) if listed else None
            states[str(monitor["name"])] = status or "unchecked"
    return states
