"""The report's period: a month or a range of days in the client's time zone, as real UTC instants.

A month in Europe/Berlin that holds a daylight-saving change is an hour shorter or longer than its
days times 24 hours; every length the report divides by is the period's real length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A period the report can't cover: the message names the option and what would be valid."""


@dataclass(frozen=True)
class Period:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive
    timezone: str
    label: str  # "2026-11" or "2026-11-01 to 2026-11-15"
    first_day: date  # local
    last_day: date  # local, inclusive

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range((self.last_day - self.first_day).days + 1)]

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        return local_midnight(day, self.timezone), local_midnight(day + timedelta(days=1), self.timezone)


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def month_period(month: str, timezone: str, now: datetime) -> Period:
    """`--month YYYY-MM`: the whole month; the current month runs to `now` (month to date)."""
    match = _MONTH.match(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise PeriodError(f"--month: {month!r} is not a month; expected YYYY-MM, e.g. 2026-11")
    first = date(int(match[1]), int(match[2]), 1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    start, end = local_midnight(first, timezone), local_midnight(following, timezone)
    if start >= now:
        raise PeriodError(
            f"--month: {month} has not begun yet in {timezone} (it is {now.astimezone(ZoneInfo(timezone)):%Y-%m-%d}); "
            "give this month or an earlier one"
        )
    label = month
    if end > now:
        end = now
        label = f"{month} (to {now.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M})"
    return Period(start, end, timezone, label, first, _last_day(end, timezone))


def _last_day(end: datetime, timezone: str) -> date:
    """The last local day the period touches (its end is exclusive)."""
    return (end - timedelta(microseconds=1)).astimezone(ZoneInfo(timezone)).date()


def _parse_day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option}: {text!r} is not a date; expected YYYY-MM-DD") from None


def range_period(from_: str, to: str, timezone: str, now: datetime) -> Period:
    """`--from DAY --to DAY`: local midnight of --from up to local midnight of --to (exclusive)."""
    first, following = _parse_day("--from", from_), _parse_day("--to", to)
    if first >= following:
        raise PeriodError(f"--from {from_} is not before --to {to}; --to is the first day not reported")
    start, end = local_midnight(first, timezone), local_midnight(following, timezone)
    if start >= now:
        raise PeriodError(f"--from: {from_} lies in the future in {timezone}; give a day up to today")
    if end > now:
        end = now
    last = _last_day(end, timezone)
    return Period(start, end, timezone, f"{first.isoformat()} to {last.isoformat()}", first, last)
