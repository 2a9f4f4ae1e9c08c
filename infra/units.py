"""Parsing of the human-written units used in the catalog and the stacks.

Durations ("30s", "5m", "2h", "7d"), support times that may be counted in
business days ("15m", "2bd"), times of day ("02:30") and minute-of-hour
(":15"). Each parser raises ValueError with a message that says what would
be valid; the spec turns it into an error naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_SUPPORT_TIME = re.compile(r"^\s*(\d+)\s*(m|h|bd)\s*$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_MINUTE_OF_HOUR = re.compile(r"^:([0-5]\d)$")

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def parse_duration(text: object) -> int:
    """Return seconds for "30s", "5m", "2h" or "7d"."""
    match = _DURATION.match(str(text)) if isinstance(text, (str, int)) else None
    if match is None:
        raise ValueError(f'expected a duration such as "30s", "5m", "2h" or "7d", got {text!r}')
    return int(match.group(1)) * _SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The inverse of parse_duration, compound where needed: 7500 -> "2h5m"."""
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class SupportTime:
    """A response or fix time: wall-clock minutes, or business days."""

    minutes: int = 0
    business_days: int = 0

    def __str__(self) -> str:
        if self.business_days:
            return "next business day" if self.business_days == 1 else f"{self.business_days} business days"
        return format_duration(self.minutes * 60)

    def comparable_minutes(self, business_day_minutes: int) -> int:
        """Minutes, counting a business day as one support day, for ordering only."""
        return self.minutes + self.business_days * business_day_minutes


def parse_support_time(text: object) -> SupportTime:
    match = _SUPPORT_TIME.match(str(text)) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'expected a support time such as "15m", "4h" or "2bd" (business days), got {text!r}')
    value, unit = int(match.group(1)), match.group(2)
    if unit == "bd":
        return SupportTime(business_days=value)
    return SupportTime(minutes=value * (60 if unit == "h" else 1))


def parse_time_of_day(text: object) -> tuple[int, int]:
    match = _TIME_OF_DAY.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'expected a time of day "HH:MM" (00:00-23:59), got {text!r}')
    return int(match.group(1)), int(match.group(2))


def parse_minute_of_hour(text: object) -> int:
    match = _MINUTE_OF_HOUR.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'expected a minute of the hour ":MM" (":00"-":59"), got {text!r}')
    return int(match.group(1))
