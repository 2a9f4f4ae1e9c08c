"""The two hand-off models: a monitor timeline's contract and an evidence record's parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from infra.evidence_record import EvidenceError, parse_record, record_key
from infra.timeline import Interval, MonitorTimeline, State, merged

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_timeline_must_cover_its_range_without_gaps() -> None:
    good = MonitorTimeline("shop-home", _at(0), _at(30), [Interval(_at(0), _at(10), State.UP),
                           Interval(_at(10), _at(30), State.NO_DATA)])  # fmt: skip
    assert good.time_in(State.NO_DATA) == timedelta(minutes=20)
    assert good.time_in(State.UP) == timedelta(minutes=10)
    with pytest.raises(ValueError, match="interval 1 starts at"):
        MonitorTimeline("shop-home", _at(0), _at(30), [Interval(_at(0), _at(10), State.UP),
                        Interval(_at(11), _at(30), State.DOWN)])  # fmt: skip
    with pytest.raises(ValueError, match="intervals end at"):
        MonitorTimeline("shop-home", _at(0), _at(30), [Interval(_at(0), _at(10), State.UP)])
    with pytest.raises(ValueError, match="timezone-aware"):
        MonitorTimeline("shop-home", datetime(2026, 11, 1), _at(30), [])


def test_merged_joins_only_adjacent_equal_states() -> None:
    parts = [Interval(_at(0), _at(1), State.UP), Interval(_at(1), _at(2), State.UP),
             Interval(_at(2), _at(3), State.DOWN), Interval(_at(3), _at(4), State.UP)]  # fmt: skip
    assert [(i.start, i.end, i.state) for i in merged(parts)] == [
        (_at(0), _at(2), State.UP), (_at(2), _at(3), State.DOWN), (_at(3), _at(4), State.UP)]  # fmt: skip


def _record(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": 1, "client": "shop", "site": "shop-www", "job": "backup", "run_id": "20261101T020000-ab12cd",
        "host": "shop-1", "started": "2026-11-01T02:00:00.000Z", "ended": "2026-11-01T02:01:00.000Z",
        "result": "ok", "exit_code": 0, "message": "snapshot 1a2b3c4d", "figures": {"files": 3},
    }  # fmt: skip
    base.update(changes)
    return base


def test_an_evidence_record_round_trips_through_its_key() -> None:
    data = _record()
    key = record_key("shop-www", "backup", datetime(2026, 11, 1, 2, 1, tzinfo=UTC), "20261101T020000-ab12cd")
    assert key == "evidence/shop-www/backup/2026/11/20261101T020100Z-20261101T020000-ab12cd.json"
    record = parse_record(key, json.dumps(data))
    assert record.ok and record.figures == {"files": 3} and record.ended - record.started == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"schema": 2}, "field 'schema'"),
        ({"result": "maybe"}, "field 'result'"),
        ({"ended": "2026-11-01T02:01:00"}, "field 'ended'"),
        ({"exit_code": "0"}, "field 'exit_code'"),
        ({"site": "other-www"}, "the key names shop-www"),
        ({"ended": "2026-11-01T01:00:00Z"}, "'ended'"),
    ],
)
def test_a_broken_record_is_refused_naming_key_and_field(changes: dict[str, object], names: str) -> None:
    key = "evidence/shop-www/backup/2026/11/20261101T020100Z-20261101T020000-ab12cd.json"
    with pytest.raises(EvidenceError, match=names) as info:
        parse_record(key, json.dumps(_record(**changes)))
    assert key in str(info.value)
