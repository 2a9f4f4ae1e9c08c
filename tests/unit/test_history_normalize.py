"""The history reader's normalization on synthetic beats and counts: gaps, maintenance, pending, months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.monitors.beats import (
    SCHEDULING_SLACK_SECONDS,
    Beat,
    BeatFormatError,
    Cadence,
    beat_intervals,
    cadence_of,
    parse_beat,
    parse_beats,
    response_samples,
)
from infra.monitors.buckets import Bucket, bucket_intervals, parse_buckets
from infra.monitors.history import HistoryRangeError, read_monitor
from infra.timeline import Interval, MonitorTimeline, State, merged

T0 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
EVERY_20 = Cadence(interval=20, retry_interval=20, tolerance=10)


def beats(start: datetime, seconds: int, state: State, every: int = 20, msg: str = "") -> list[Beat]:
    return [Beat(start + timedelta(seconds=s), state, msg, 12.0) for s in range(0, seconds, every)]


def states(intervals: list[Interval]) -> list[tuple[int, int, State]]:
    """Intervals as (start, end) seconds after T0 and state."""
    return [(int((i.start - T0).total_seconds()), int((i.end - T0).total_seconds()), i.state) for i in intervals]


def timeline(intervals: list[Interval], start: datetime, end: datetime) -> MonitorTimeline:
    return MonitorTimeline("site page /", start, end, merged(intervals))  # validates the contract


def test_steady_beats_are_one_up_interval() -> None:
    got = beat_intervals(beats(T0, 600, State.UP), EVERY_20, T0, T0 + timedelta(seconds=600))
    assert states(got) == [(0, 600, State.UP)]


def test_a_gap_longer_than_the_interval_is_no_data_from_when_the_next_beat_was_due() -> None:
    # Kuma stopped after the beat at 280 s and beat again at 400 s.
    history = beats(T0, 300, State.UP) + beats(T0 + timedelta(seconds=400), 200, State.UP)
    got = beat_intervals(history, EVERY_20, T0, T0 + timedelta(seconds=600))
    assert states(got) == [(0, 310, State.UP), (310, 400, State.NO_DATA), (400, 600, State.UP)]
    timeline(got, T0, T0 + timedelta(seconds=600))


def test_a_late_beat_within_the_tolerance_is_no_gap() -> None:
    history = [Beat(T0, State.UP), Beat(T0 + timedelta(seconds=29), State.UP)]
    got = beat_intervals(history, EVERY_20, T0, T0 + timedelta(seconds=49))
    assert states(got) == [(0, 49, State.UP)]


def test_down_maintenance_and_pending_keep_their_times_and_notes() -> None:
    history = (
        beats(T0, 100, State.UP)
        + beats(T0 + timedelta(seconds=100), 40, State.PENDING, msg="timeout")
        + beats(T0 + timedelta(seconds=140), 60, State.DOWN, msg="connect ECONNREFUSED")
        + beats(T0 + timedelta(seconds=200), 100, State.MAINTENANCE, msg="update window")
        + beats(T0 + timedelta(seconds=300), 100, State.UP)
    )
    got = beat_intervals(history, EVERY_20, T0, T0 + timedelta(seconds=400))
    assert states(got) == [
        (0, 100, State.UP),
        (100, 140, State.PENDING),
        (140, 200, State.DOWN),
        (200, 300, State.MAINTENANCE),
        (300, 400, State.UP),
    ]
    assert [i.note for i in got] == ["", "timeout", "connect ECONNREFUSED", "update window", ""]


def test_pending_beats_are_due_after_the_retry_interval() -> None:
    cadence = Cadence(interval=300, retry_interval=20, tolerance=10)
    history = [Beat(T0, State.PENDING), Beat(T0 + timedelta(seconds=100), State.UP)]
    got = beat_intervals(history, cadence, T0, T0 + timedelta(seconds=100))
    assert states(got) == [(0, 30, State.PENDING), (30, 100, State.NO_DATA)]


def test_the_beat_before_the_range_gives_the_state_at_its_start_across_a_month_boundary() -> None:
    april = T0 + timedelta(hours=1)  # 2026-04-01 00:00 UTC
    history = beats(april - timedelta(seconds=15), 60, State.DOWN, msg="502")
    got = beat_intervals(history, EVERY_20, april, april + timedelta(seconds=45))
    assert got == [Interval(april, april + timedelta(seconds=45), State.DOWN, "502")]


def test_no_beat_before_the_range_is_no_data_never_up() -> None:
    history = beats(T0 + timedelta(seconds=60), 60, State.UP)
    got = beat_intervals(history, EVERY_20, T0, T0 + timedelta(seconds=120))
    assert states(got) == [(0, 60, State.NO_DATA), (60, 120, State.UP)]
    assert beat_intervals([], EVERY_20, T0, T0 + timedelta(seconds=60)) == [
        Interval(T0, T0 + timedelta(seconds=60), State.NO_DATA)
    ]


def test_after_the_last_beat_the_state_holds_only_until_the_next_was_due() -> None:
    got = beat_intervals([Beat(T0, State.UP)], EVERY_20, T0, T0 + timedelta(hours=1))
    assert states(got) == [(0, 30, State.UP), (30, 3600, State.NO_DATA)]


def test_kuma_records_parse_to_utc_beats_and_bad_ones_name_the_field() -> None:
    beat = parse_beat({"time": "2026-03-31 23:59:59.123", "status": 0, "msg": "down", "ping": None, "important": 1})
    assert beat.at == datetime(2026, 3, 31, 23, 59, 59, 123000, tzinfo=UTC)
    assert (beat.state, beat.important, beat.ping_ms) == (State.DOWN, True, None)
    newest_first = [{"time": "2026-04-01T00:00:01Z", "status": 3}, {"time": "2026-03-31 23:00:00", "status": 0}]
    assert [b.state for b in parse_beats(newest_first)] == [
        State.DOWN,
        State.MAINTENANCE,
    ]
    with pytest.raises(BeatFormatError, match="status 7"):
        parse_beat({"time": "2026-04-01 00:00:00", "status": 7})
    with pytest.raises(BeatFormatError, match="time 'yesterday'"):
        parse_beat({"time": "yesterday", "status": 1})


def test_cadence_allows_a_checks_timeout_and_a_push_monitors_own_interval() -> None:
    check = cadence_of({"name": "a", "type": "keyword", "interval": 60, "retryInterval": 20, "timeout": 48})
    push = cadence_of({"name": "b", "type": "push", "interval": 3600, "retryInterval": 3600, "timeout": 48})
    assert check == Cadence(60, 20, 48 + SCHEDULING_SLACK_SECONDS)
    assert push == Cadence(3600, 3600, 3600 + SCHEDULING_SLACK_SECONDS)
    with pytest.raises(BeatFormatError, match="no interval"):
        cadence_of({"name": "c", "type": "http", "interval": 0})


def test_response_times_come_from_up_beats_in_the_range_only() -> None:
    history = [*beats(T0, 60, State.UP), Beat(T0 + timedelta(seconds=60), State.DOWN, "x", 5.0)]
    samples = response_samples(history, T0 + timedelta(seconds=20), T0 + timedelta(seconds=100))
    assert [(s.at - T0).total_seconds() for s in samples] == [20, 40]


# -- 2.x stable: status changes and hourly/daily counts --------------------------------------------------

HOUR = 3600
EVERY_60 = Cadence(interval=60, retry_interval=60, tolerance=10)


def test_counts_of_full_hours_follow_the_status_changes_to_the_second() -> None:
    changes = [Beat(T0 - timedelta(days=3), State.UP), Beat(T0 + timedelta(minutes=20), State.DOWN, "502")]
    changes.append(Beat(T0 + timedelta(minutes=30), State.UP))
    buckets = {T0: Bucket(T0, up=50, down=10, maintenance=0), T0 + timedelta(hours=1): Bucket(T0, 60, 0, 0)}
    got = bucket_intervals(buckets, HOUR, changes, EVERY_60, T0, T0 + timedelta(hours=2))
    assert states(merged(got)) == [(0, 1200, State.UP), (1200, 1800, State.DOWN), (1800, 7200, State.UP)]
    assert merged(got)[1].note == "502"


def test_an_hour_without_counts_is_no_data_and_a_short_hour_loses_the_rest_to_no_data() -> None:
    changes = [Beat(T0 - timedelta(days=1), State.UP)]
    # Hour 0: Kuma ran for 40 minutes; hour 1: not at all; hour 2: back after 15 minutes.
    buckets = {
        T0: Bucket(T0, up=40, down=0, maintenance=0),
        T0 + timedelta(hours=2): Bucket(T0 + timedelta(hours=2), up=45, down=0, maintenance=0),
    }
    got = merged(bucket_intervals(buckets, HOUR, changes, EVERY_60, T0, T0 + timedelta(hours=3)))
    back = 2 * HOUR + 900
    assert states(got) == [(0, 2400, State.UP), (2400, back, State.NO_DATA), (back, 3 * HOUR, State.UP)]
    timeline(got, T0, T0 + timedelta(hours=3))


def test_down_counts_without_a_down_change_are_pending_time() -> None:
    changes = [Beat(T0 - timedelta(days=1), State.UP)]
    buckets = {T0: Bucket(T0, up=57, down=3, maintenance=0)}
    got = merged(bucket_intervals(buckets, HOUR, changes, EVERY_60, T0, T0 + timedelta(hours=1)))
    assert states(got) == [(0, 3420, State.UP), (3420, 3600, State.PENDING)]


def test_maintenance_counts_and_changes_give_the_window() -> None:
    changes = [
        Beat(T0 - timedelta(days=1), State.UP),
        Beat(T0 + timedelta(minutes=10), State.MAINTENANCE, "update window"),
        Beat(T0 + timedelta(minutes=40), State.UP),
    ]
    buckets = {T0: Bucket(T0, up=30, down=0, maintenance=30)}
    got = merged(bucket_intervals(buckets, HOUR, changes, EVERY_60, T0, T0 + timedelta(hours=1)))
    assert states(got) == [(0, 600, State.UP), (600, 2400, State.MAINTENANCE), (2400, 3600, State.UP)]


def test_days_split_at_a_month_boundary_within_a_daily_bucket_range() -> None:
    day = datetime(2026, 3, 31, tzinfo=UTC)
    changes = [Beat(day - timedelta(days=5), State.UP)]
    buckets = {day: Bucket(day, 1440, 0, 0), day + timedelta(days=1): Bucket(day, 1440, 0, 0)}
    april = datetime(2026, 4, 1, tzinfo=UTC)
    got = merged(bucket_intervals(buckets, 86400, changes, EVERY_60, april, april + timedelta(hours=12)))
    assert got == [Interval(april, april + timedelta(hours=12), State.UP)]


def test_kuma_chart_points_parse_by_their_bucket_start() -> None:
    points = [{"up": 58, "down": 2, "avgPing": 31.5, "timestamp": int(T0.timestamp()), "maintenance": 1}]
    assert parse_buckets(points) == {T0: Bucket(T0, 58, 2, 1, 31.5)}
    with pytest.raises(BeatFormatError, match="timestamp"):
        parse_buckets([{"up": 1}])


def test_a_range_without_zone_or_backwards_is_refused_before_kuma_is_asked() -> None:
    naive = datetime(2026, 4, 1)
    with pytest.raises(HistoryRangeError, match="start 2026-04-01T00:00:00 has no time zone"):
        read_monitor(None, {}, "k", naive, T0)  # type: ignore[arg-type]
    with pytest.raises(HistoryRangeError, match="is not after start"):
        read_monitor(None, {}, "k", T0, T0)  # type: ignore[arg-type]
