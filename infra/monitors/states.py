"""The current state of a client's monitors in Uptime Kuma, as `carestack lab status` shows it."""

from __future__ import annotations

from infra.kuma_client import KumaSession
from infra.monitors.desired import MAX_INTERVAL_SECONDS
from infra.monitors.ownership import is_owned


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
