"""The support clock: how much of a span falls in the plan's support hours, and when a promise falls due.

Support hours are the plan's days and hours in the client's time zone (an
incident's clock runs until the outage line closes, where the tier has one).
Wall-clock times are turned into real instants day by day, so a day on which
daylight saving time starts or ends counts its real length. A promise in
business days falls due when support closes on the n-th support day after
the day the ticket came in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from infra.plan import SupportPlan
from infra.units import WEEKDAYS, parse_time_of_day


@dataclass(frozen=True)
class Promise:
    """A response or fix time: support minutes, or business days."""

    minutes: int = 0
    business_days: int = 0


def _local(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    hour, minute = parse_time_of_day(hhmm)
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@dataclass(frozen=True)
class SupportClock:
    support: SupportPlan
    timezone: str
    incident: bool = False  # an incident's clock runs until the outage line closes

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def _closes(self) -> str:
        if self.incident and self.support.outage_line_until:
            return self.support.outage_line_until
        return self.support.to

    def is_support_day(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.support.days

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's support hours as real instants (UTC), or None on a day without support."""
        if not self.is_support_day(day):
            return None
        opens = _local(day, self.support.from_, self._zone).astimezone(UTC)
        closes = _local(day, self._closes, self._zone).astimezone(UTC)
        return opens, closes

    def windows(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The support hours between two instants, clipped to them."""
        day = start.astimezone(self._zone).date()
        last = end.astimezone(self._zone).date()
        while day <= last:
            hours = self.window(day)
            if hours is not None:
                opens, closes = max(hours[0], start), min(hours[1], end)
                if opens < closes:
                    yield opens, closes
            day += timedelta(days=1)

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Support minutes from start to end (0 if end is not after start)."""
        return sum((b - a).total_seconds() for a, b in self.windows(start, end)) / 60

    def due(self, start: datetime, promise: Promise) -> datetime:
        """When a promise made at `start` falls due."""
        if promise.business_days:
            day = start.astimezone(self._zone).date()
            counted = 0
            while counted < promise.business_days:
                day += timedelta(days=1)
                counted += self.is_support_day(day)
            return _local(day, self._closes, self._zone).astimezone(UTC)
        left = timedelta(minutes=promise.minutes)
        day = start.astimezone(self._zone).date()
        # A week always holds a support day (the plan has at least one), so this ends.
        while True:
            hours = self.window(day)
            if hours is not None:
                opens, closes = max(hours[0], start), hours[1]
                if opens < closes:
                    if opens + left <= closes:
                        return opens + left
                    left -= closes - opens
            day += timedelta(days=1)
