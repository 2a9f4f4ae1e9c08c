"""How long Kuma keeps monitoring history, and the least the SLA report needs.

The report covers the previous full month and the current one: on the last day
of a 31-day month that follows another (August after July) the previous month
began 61 days and some hours ago, and a month in the client's time zone can start
up to a day before the same UTC date. Kuma's `keepDataPeriodDays` (a global
setting, days) must be at least that; the sync raises a lower value and never
lowers one (a longer history, or 0 = keep forever, is the agency's choice).

What each version keeps for that many days:
- 1.23 and the 2.0.0-dev.0 snapshot: every heartbeat (default 180 days).
- 2.x stable (default 365 days): status changes (important beats) and per-day
  counts (`stat_daily`). Fixed in the code whatever the setting: ordinary beats
  24 h, per-minute counts 24 h, per-hour counts 30 days. So on 2.x the current
  day is exact to a check interval, the last 30 days to the hour, and the
  previous month before that to the day, with status changes to the second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REPORT_MONTHS = 2  # the previous full month and the current one
LONGEST_MONTH_DAYS = 31
TIME_ZONE_SLACK_DAYS = 1
HISTORY_DAYS = REPORT_MONTHS * LONGEST_MONTH_DAYS + TIME_ZONE_SLACK_DAYS
SETTING = "keepDataPeriodDays"


def kept_days(settings: Mapping[str, Any]) -> int | None:
    """Kuma's retention in days; None when unset (Kuma then applies its default, 180 or 365) or unreadable."""
    value = settings.get(SETTING)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None  # Kuma resets an unreadable value to its default at its next clean-up


def raised_retention(settings: Mapping[str, Any]) -> int | None:
    """The retention to set so that the report's history survives; None when the current one already does.

    Below 1 day means Kuma deletes nothing; unset means Kuma's default, longer than needed.
    """
    days = kept_days(settings)
    if days is None or days < 1 or days >= HISTORY_DAYS:
        return None
    return HISTORY_DAYS
