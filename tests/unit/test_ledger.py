"""The support ledger reader: every problem at once, each naming file, row and column and what would be valid."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from infra.ledger import LedgerError, ledger_path, read_ledger
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, load_stack

STACKS = Path(__file__).resolve().parents[2] / "stacks"
HEADER = "date,minutes,kind,severity,reported,responded,fixed,note\n"


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def problems_of(path: Path, plan: CarePlan) -> list[str]:
    with pytest.raises(LedgerError) as caught:
        read_ledger(path, plan)
    assert caught.value.source == str(path)
    return caught.value.problems


def test_the_example_ledger_reads() -> None:
    plan = plan_of("studio")
    path = ledger_path(STACKS / "Pulumi.studio.yaml", plan.client.id)
    assert path == STACKS / "ledger.studio.csv"
    ledger = read_ledger(path, plan)
    assert len(ledger.entries) == 8
    incident = ledger.entries[2]
    assert (incident.row, incident.kind, incident.severity, incident.minutes) == (3, "incident", "critical", 45)
    # 21:40 in Berlin on 23 October (summer time, UTC+2)
    assert incident.reported == datetime(2026, 10, 23, 19, 40, tzinfo=UTC)
    assert ledger.entries[0].severity is None and ledger.entries[0].reported is None
    assert ledger.entries[0].date == date(2026, 10, 5)


def test_every_bad_cell_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.studio.csv"
    path.write_text(
        HEADER
        + "2026-13-01,30,small_job,,,,,\n"
        + "2026-11-02,half an hour,smal job,urgent,,,,\n"
        + "2026-11-03,20,incident,,2026-11-03 10:00,,,\n"
        + "2026-11-04,20,request,high,,2026-11-04 10:00,,\n"
        + "2026-11-05,20,request,low,2026-11-05 10:00,2026-11-05 09:00,2026-11-05 9:30,\n"
    )
    assert problems_of(path, plan_of("studio")) == [
        "row 1 (line 2), column date: expected a date YYYY-MM-DD, got '2026-13-01'",
        "row 2 (line 3), column minutes: expected whole minutes 0..1440, got 'half an hour'",
        "row 2 (line 3), column kind: unknown kind 'smal job'; did you mean 'small_job'? "
        "(valid: small_job, incident, request)",
        "row 2 (line 3), column severity: unknown severity for tier standard 'urgent' "
        "(valid: critical, high, medium, low)",
        "row 3 (line 4), column severity: an incident needs a severity (critical, high, medium, low)",
        "row 4 (line 5), column reported: a ticket with a severity needs the time it was reported",
        'row 5 (line 6), column fixed: expected "YYYY-MM-DD HH:MM" in the client\'s time zone or ISO 8601 '
        "with an offset, got '2026-11-05 9:30'",
        "row 5 (line 6), column responded: 2026-11-05 09:00 is before reported 2026-11-05 10:00",
    ]


def test_severity_follows_the_clients_tier(tmp_path: Path) -> None:
    path = tmp_path / "ledger.bakery.csv"
    path.write_text(HEADER + "2026-11-02,30,request,high,2026-11-02 10:00,,,\n")
    assert problems_of(path, plan_of("bakery")) == [
        "row 1 (line 2), column severity: unknown severity for tier basic 'high' (valid: normal)"
    ]


def test_columns_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.studio.csv"
    path.write_text("date,minute,kind,severty\n2026-11-02,30,request,,extra\n")
    assert problems_of(path, plan_of("studio")) == [
        "header: unknown column; unknown column 'minute'; did you mean 'minutes'? "
        "(valid: date, minutes, kind, severity, reported, responded, fixed, note)",
        "header: unknown column; unknown column 'severty'; did you mean 'severity'? "
        "(valid: date, minutes, kind, severity, reported, responded, fixed, note)",
        "header: the column 'minutes' is required",
        "row 1 (line 2): more values than the header has columns",
        "row 1 (line 2), column minutes: expected whole minutes 0..1440, got ''",
    ]


def test_local_times_that_daylight_saving_skips_or_repeats_need_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "ledger.studio.csv"
    path.write_text(
        HEADER
        # 29 March 2026: Berlin's clocks jump from 02:00 to 03:00; 25 October: 03:00 falls back to 02:00.
        + "2026-03-29,10,request,low,2026-03-29 02:30,,,\n"
        + "2026-10-25,10,request,low,2026-10-25 02:30,,,\n"
        + "2026-10-25,10,request,low,2026-10-25 02:30+01:00,2026-10-25T02:40+01:00,,\n"
    )
    assert problems_of(path, plan_of("studio")) == [
        "row 1 (line 2), column reported: 2026-03-29 02:30 does not exist in Europe/Berlin (daylight saving time "
        "changes); give the offset, e.g. 2026-03-29 02:30+01:00",
        "row 2 (line 3), column reported: 2026-10-25 02:30 happens twice in Europe/Berlin (daylight saving time "
        "changes); give the offset, e.g. 2026-10-25 02:30+02:00",
    ]
    path.write_text(HEADER + "2026-10-25,10,request,low,2026-10-25 02:30+01:00,2026-10-25T02:40+01:00,,\n")
    [entry] = read_ledger(path, plan_of("studio")).entries
    assert entry.reported == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert entry.responded == datetime(2026, 10, 25, 1, 40, tzinfo=UTC)


def test_yaml_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.studio.yaml"
    path.write_text(
        "entries:\n"
        "  - {date: 2026-11-02, minutes: 30, kind: request, severity: low, reported: '2026-11-02 10:00'}\n"
        "  - {date: 2026-11-03, minutes: 15, kind: small job}\n"
        "  - {date: 2026-11-04, minutes: -5, kind: request}\n"
    )
    assert ledger_path(tmp_path / "Pulumi.studio.yaml", "studio") == path
    assert problems_of(path, plan_of("studio")) == [
        "entries[2], column minutes: expected whole minutes 0..1440, got '-5'"
    ]
    path.write_text(path.read_text().replace("minutes: -5", "minutes: 5"))
    entries = read_ledger(path, plan_of("studio")).entries
    assert [e.kind for e in entries] == ["request", "small_job", "request"]


def test_missing_ledger_is_named(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "ledger.studio.csv", plan_of("studio")) == ["file not found"]
