"""The retention the sync asks of Kuma: enough for the previous and current month, never less than set."""

from __future__ import annotations

import calendar
from datetime import date

from infra.monitors.retention import HISTORY_DAYS, kept_days, raised_retention


def test_history_days_cover_the_previous_full_month_from_the_end_of_any_month() -> None:
    longest = 0
    for year in (2026, 2028):
        for month in range(1, 13):
            last_day = date(year, month, calendar.monthrange(year, month)[1])
            previous_start = date(year - (month == 1), (month - 2) % 12 + 1, 1)
            longest = max(longest, (last_day - previous_start).days + 1)
    assert longest == 62
    assert longest < HISTORY_DAYS  # a day more: a month in the client's zone may start before the UTC date


def test_only_a_shorter_retention_is_raised() -> None:
    assert raised_retention({"keepDataPeriodDays": 7}) == HISTORY_DAYS
    assert raised_retention({"keepDataPeriodDays": "30"}) == HISTORY_DAYS
    assert raised_retention({"keepDataPeriodDays": HISTORY_DAYS}) is None
    assert raised_retention({"keepDataPeriodDays": 365}) is None
    assert raised_retention({"keepDataPeriodDays": 0}) is None  # Kuma deletes nothing
    assert raised_retention({}) is None  # Kuma's default (180 or 365 days) applies
    assert kept_days({"keepDataPeriodDays": "soon"}) is None
