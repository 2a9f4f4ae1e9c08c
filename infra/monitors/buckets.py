"""Kuma 2.x's aggregate counts (stat_hourly, stat_daily) and status changes turned into state intervals.

2.x stable keeps ordinary heartbeats for 24 h only. Older history is two things:
the important beats (every status change, to the millisecond, for the retention
setting) and per-hour (30 days) or per-day (retention) counts of up, down and
maintenance beats. The states and the exact times they changed come from the
status changes; the counts say how much of a bucket had beats at all. This is
an estimate, at the bucket's resolution:

- A bucket without a single beat is no data.
- A bucket with fewer beats than its length needs (count x interval short by
  more than one interval plus tolerance) lost the rest to no data; where in the
  bucket is unknown: it is placed at the bucket's start when the previous bucket
  was short too (the gap goes on), else at its end.
- Kuma counts pending beats as down, and a change to pending is not an important
  beat: down beats in a bucket with no down state are pending time, placed at the
  end of the bucket's last up stretch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.monitors.beats import Beat, BeatFormatError, Cadence
from infra.timeline import Interval, ResponseSample, State


@dataclass(frozen=True)
class Bucket:
    start: datetime
    up: int
    down: int  # Kuma counts pending beats as down here
    maintenance: int
    avg_ping_ms: float | None = None

    @property
    def beats(self) -> int:
        return self.up + self.down + self.maintenance


def parse_buckets(records: Iterable[Mapping[str, Any]]) -> dict[datetime, Bucket]:
    """getMonitorChartData's points by the start of their bucket (`timestamp`: Unix seconds, UTC)."""
    out: dict[datetime, Bucket] = {}
    for record in records:
        try:
            at = datetime.fromtimestamp(int(record["timestamp"]), UTC)
            ping = record.get("avgPing")
            out[at] = Bucket(
                at,
                int(record.get("up") or 0),
                int(record.get("down") or 0),
                int(record.get("maintenance") or 0),
                float(ping) if ping not in (None, "") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BeatFormatError(f"aggregate point {dict(record)!r} lacks a number ({exc})") from None
    return out


def floor_to(at: datetime, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(at.timestamp()) // seconds * seconds, UTC)


def ceil_to(at: datetime, seconds: int) -> datetime:
    floor = floor_to(at, seconds)
    return floor if floor == at else floor + timedelta(seconds=seconds)


def _overlay(pieces: list[Interval], a: datetime, b: datetime, state: State, note: str = "") -> list[Interval]:
    """`pieces` (contiguous) with `[a, b)` replaced by `state`."""
    out: list[Interval] = []
    for p in pieces:
        if p.end <= a or p.start >= b:
            out.append(p)
            continue
        if p.start < a:
            out.append(Interval(p.start, a, p.state, p.note))
        out.append(Interval(max(a, p.start), min(b, p.end), state, note))
        if p.end > b:
            out.append(Interval(b, p.end, p.state, p.note))
    return out


def _change_pieces(changes: list[Beat], a: datetime, b: datetime) -> list[Interval]:
    """The states the status changes (oldest first) give `[a, b)`; before any known change: no data."""
    state, note = State.NO_DATA, ""
    for change in changes:
        if change.at <= a:
            state, note = change.state, (change.msg if change.state is not State.UP else "")
    pieces: list[Interval] = []
    cursor = a
    for change in changes:
        if a < change.at < b and change.state is not state:
            pieces.append(Interval(cursor, change.at, state, note))
            cursor, state, note = change.at, change.state, (change.msg if change.state is not State.UP else "")
    pieces.append(Interval(cursor, b, state, note))
    return [p for p in pieces if p.end > p.start]


def bucket_intervals(
    buckets: Mapping[datetime, Bucket],
    seconds: int,
    changes: list[Beat],
    cadence: Cadence,
    start: datetime,
    end: datetime,
) -> list[Interval]:
    """`[start, end)` from buckets of `seconds` and the status changes (oldest first); see the module's rules."""
    out: list[Interval] = []
    previous_short = False
    at = floor_to(start, seconds)
    length = timedelta(seconds=seconds)
    while at < end:
        bucket = buckets.get(at)
        b_end = at + length
        if bucket is None or bucket.beats == 0:
            pieces = [Interval(at, b_end, State.NO_DATA)]
            previous_short = True
        else:
            pieces = _change_pieces(changes, at, b_end)
            if bucket.down and not any(p.state is State.DOWN for p in pieces):
                ups = [p for p in pieces if p.state is State.UP]
                if ups:
                    last = ups[-1]
                    pending = min(last.duration, timedelta(seconds=bucket.down * cadence.retry_interval))
                    pieces = _overlay(pieces, last.end - pending, last.end, State.PENDING, "retrying (estimated)")
            missing = seconds - min(seconds, bucket.beats * cadence.interval)
            short = missing > cadence.interval + cadence.tolerance
            if short:
                gap = timedelta(seconds=missing)
                a, b = (at, at + gap) if previous_short else (b_end - gap, b_end)
                pieces = _overlay(pieces, a, b, State.NO_DATA)
            previous_short = short
        for piece in pieces:
            a, b = max(piece.start, start), min(piece.end, end)
            if b > a:
                out.append(Interval(a, b, piece.state, piece.note))
        at = b_end
    return out


def bucket_samples(buckets: Mapping[datetime, Bucket], start: datetime, end: datetime) -> list[ResponseSample]:
    """One response time per bucket with up beats (their average), at the bucket's start."""
    return [
        ResponseSample(at, b.avg_ping_ms)
        for at, b in sorted(buckets.items())
        if start <= at < end and b.up and b.avg_ping_ms
    ]
