"""The Uptime Kuma versions the monitors layer speaks, and what each one can do.

Kuma announces its version to a logged-in client. Supported: the 1.23 line (the
last of 1.x), 2.x stable, and the npm 2.0.0-dev.0 snapshot the lab installs by
default. They differ where the sync writes: the bulk import (`uploadBackup`)
exists on 1.23 and on the 2.0.0-dev.0 snapshot, and was removed upstream before
2.0.0-beta.0 ("Drop backup"), so 2.x stable creates monitors one `add` at a time
(cheap there: `add` sends only the new monitor, not the whole list) and needs
the `conditions` column that 2.x added set on each. They differ in what history
they keep: 2.x stable keeps aggregates instead of every heartbeat
(`infra.monitors.history`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPORTED = "1.23.x, 2.x stable and the 2.0.0-dev.0 snapshot"
TESTED = ("1.23.16", "2.0.0-dev.0", "2.5.3")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")


class UnsupportedKumaVersion(RuntimeError):
    """The server is an Uptime Kuma version the monitors layer does not speak."""


@dataclass(frozen=True)
class KumaVersion:
    text: str
    bulk_import: bool  # `uploadBackup` creates many monitors in one request
    conditions: bool  # monitors have the NOT NULL `conditions` column (2.x stable)
    # Every heartbeat is kept for the retention setting (1.23, 2.0.0-dev.0); 2.x stable keeps ordinary beats
    # 24 h only, status changes for the retention setting, and per-minute/hour/day counts (stat_* tables).
    keeps_every_beat: bool = True

    def __str__(self) -> str:
        return self.text


def kuma_version(text: str | None, where: str) -> KumaVersion:
    """What the Kuma at `where` announcing `text` can do; UnsupportedKumaVersion names both sides."""
    match = _VERSION.match(text or "")
    if match:
        major, minor, _, pre = int(match[1]), int(match[2]), int(match[3]), match[4]
        if (major, minor) == (1, 23) and pre is None:
            return KumaVersion(str(text), bulk_import=True, conditions=False)
        if text == "2.0.0-dev.0":
            return KumaVersion(str(text), bulk_import=True, conditions=False)
        if major == 2 and pre is None:
            return KumaVersion(str(text), bulk_import=False, conditions=True, keeps_every_beat=False)
    shown = repr(text) if text else "no version"
    raise UnsupportedKumaVersion(
        f"Uptime Kuma at {where} announced {shown}, which carestack does not support; "
        f"supported: {SUPPORTED} (tested: {', '.join(TESTED)})"
    )
