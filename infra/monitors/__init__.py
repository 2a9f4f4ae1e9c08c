"""Monitors as code: a client's CarePlan reconciled into Uptime Kuma.

desired (plan -> DesiredState) -> diff (one reading of Kuma -> Changes) ->
apply (Changes -> Kuma), tied together by `sync` (one client) and
`sync_clients` (several in one batch); `ownership` says what is
carestack's in a shared Kuma, `states` reads how the monitors are doing,
`history` what they did over a time range (`read_timelines`).
The design and its reasons: README.md next to this file.
"""

from infra.monitors.desired import (
    MIN_INTERVAL_SECONDS,
    DesiredState,
    KumaPlanError,
    desired_state,
    nothing_desired,
)
from infra.monitors.diff import Change
from infra.monitors.history import read_timelines
from infra.monitors.ownership import (
    KEY_TAG,
    OWNER_TAG,
    TAG_COLOR,
    is_owned,
    maintenance_title,
    owned_prefix,
    status_page_slug,
)
from infra.monitors.states import monitor_states
from infra.monitors.sync import SyncResult, sync, sync_clients

__all__ = [
    "KEY_TAG",
    "MIN_INTERVAL_SECONDS",
    "OWNER_TAG",
    "TAG_COLOR",
    "Change",
    "DesiredState",
    "KumaPlanError",
    "SyncResult",
    "desired_state",
    "is_owned",
    "maintenance_title",
    "monitor_states",
    "nothing_desired",
    "owned_prefix",
    "read_timelines",
    "status_page_slug",
    "sync",
    "sync_clients",
]
