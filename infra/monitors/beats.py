"""Kuma heartbeats as carestack reads them, and raw beats turned into state intervals.

A beat is Kuma's verdict at one moment. Its state holds until the next beat,
as long as that one came when it was due: Kuma schedules the next check one
interval (the retry interval while pending) after the current one ends, so a
beat may come a check's duration plus some scheduling slack late. Where no beat
came by then, Kuma was not running or not checking: that stretch is no data,
never up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.timeline import Interval, ResponseSample, State

# Kuma's status numbers (src/util.ts): DOWN 0, UP 1, PENDING 2, MAINTENANCE 3.
KUMA_STATES = {0: State.DOWN, 1: State.UP, 2: State.PENDING, 3: State.MAINTENANCE}
# Kuma's own lateness beyond the check itself: timer scheduling and the database write of the beat.
SCHEDULING_SLACK_SECONDS = 10


class BeatFormatError(ValueError):
    """Kuma sent a heartbeat carestack cannot read (the message names the field)."""


@dataclass(frozen=True)
class Beat:
    at: datetime
    state: State
    msg: str = ""
    ping_ms: float | None = None
    important: bool = False


@dataclass(frozen=True)
class Cadence:
    """When a monitor's beats are due: seconds between checks, while pending, and allowed lateness."""

    interval: int
    retry_interval: int
    tolerance: int

    def due_after(self, state: State) -> timedelta:
        seconds = self.retry_interval if state is State.PENDING and self.retry_interval > 0 else self.interval
        return timedelta(seconds=seconds + self.tolerance)


def cadence_of(monitor: Mapping[str, Any]) -> Cadence:
    """The cadence of a Kuma monitor record.

    A check's beat is written when the check ends: up to its timeout late. A push monitor beats when a
    push comes; Kuma looks for a missed push once per interval, so its down beat may come one interval
    after the push was due.
    """
    interval = int(monitor.get("interval") or 0)
    if interval <= 0:
        raise BeatFormatError(f"monitor {monitor.get('name')!r} has no interval ({monitor.get('interval')!r})")
    retry = int(monitor.get("retryInterval") or interval)
    if str(getattr(monitor.get("type"), "value", monitor.get("type"))) == "push":
        late = interval
    else:
        late = max(0, int(float(monitor.get("timeout") or 0)))
    return Cadence(interval, retry, late + SCHEDULING_SLACK_SECONDS)


def parse_time(value: Any) -> datetime:
    """Kuma's beat time: UTC, stored as "YYYY-MM-DD HH:MM:SS[.mmm]" (or ISO with a zone)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T").replace("Z", "+00:00"))
        except ValueError:
            raise BeatFormatError(f"heartbeat time {value!r} is not a date and time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_beat(record: Mapping[str, Any]) -> Beat:
    status = record.get("status")
    status = getattr(status, "value", status)
    try:
        state = KUMA_STATES[int(status)]  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        raise BeatFormatError(f"heartbeat status {status!r} is none of {sorted(KUMA_STATES)}") from None
    ping = record.get("ping")
    try:
        ping_ms = float(ping) if ping not in (None, "") else None
    except (TypeError, ValueError):
        ping_ms = None
    return Beat(
        at=parse_time(record.get("time")),
        state=state,
        msg=str(record.get("msg") or ""),
        ping_ms=ping_ms,
        important=bool(record.get("important")),
    )


def parse_beats(records: Iterable[Mapping[str, Any]]) -> list[Beat]:
    """Beats oldest first (Kuma sends the paged lists newest first)."""
    return sorted((parse_beat(r) for r in records), key=lambda b: b.at)


def _note(beat: Beat) -> str:
    # Up beats say "200 - OK" or nothing useful; the others say why ("connect ECONNREFUSED", the maintenance).
    return "" if beat.state is State.UP else beat.msg


def beat_intervals(beats: list[Beat], cadence: Cadence, start: datetime, end: datetime) -> list[Interval]:
    """The states the beats (oldest first) show over `[start, end)`, gaps filled with no data.

    The beat before `start` (if any) says the state at `start`, as long as it was not overdue by then.
    A run of beats in one state is one interval, noted with the first beat's message.
    """
    out: list[Interval] = []

    def put(a: datetime, b: datetime, state: State, note: str) -> None:
        a, b = max(a, start), min(b, end)
        if b <= a:
            return
        last = out[-1] if out else None
        if last and last.state is state and last.end == a:
            out[-1] = Interval(last.start, b, state, last.note)
        else:
            out.append(Interval(a, b, state, note))

    relevant = [b for b in beats if b.at < end]
    before = [b for b in relevant if b.at <= start]
    relevant = before[-1:] + [b for b in relevant if b.at > start]
    cursor = start
    for n, beat in enumerate(relevant):
        if beat.at > cursor:
            put(cursor, beat.at, State.NO_DATA, "")
        following = relevant[n + 1].at if n + 1 < len(relevant) else None
        overdue = beat.at + cadence.due_after(beat.state)
        held_until = following if following is not None and following <= overdue else overdue
        put(beat.at, held_until, beat.state, _note(beat))
        cursor = max(cursor, held_until)
    if cursor < end:
        put(cursor, end, State.NO_DATA, "")
    return out


def response_samples(beats: Iterable[Beat], start: datetime, end: datetime) -> list[ResponseSample]:
    """Response times of the up beats in `[start, end)` (Kuma measures none on down beats)."""
    return [ResponseSample(b.at, b.ping_ms) for b in beats if start <= b.at < end and b.state is State.UP and b.ping_ms]
