"""The support clock, the time bank and severity outcomes, on synthetic ledgers and the example ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.ledger import LedgerEntry, read_ledger
from infra.plan import CarePlan, SupportPlan, build_plan
from infra.spec import ClientSpec, load_stack
from infra.support_hours import Promise, SupportClock
from infra.support_stats import Outcome, month_bounds, severity_results, time_bank

STACKS = Path(__file__).resolve().parents[2] / "stacks"
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = SupportPlan(("Mon", "Tue", "Wed", "Thu", "Fri"), "09:00", "17:00", "23:00")


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def entry(day: date, minutes: int, kind: str = "request", **times: datetime | str | None) -> LedgerEntry:
    return LedgerEntry(
        row=0,
        date=day,
        minutes=minutes,
        kind=kind,
        severity=times.get("severity"),  # type: ignore[arg-type]
        reported=times.get("reported"),  # type: ignore[arg-type]
        responded=times.get("responded"),  # type: ignore[arg-type]
        fixed=times.get("fixed"),  # type: ignore[arg-type]
        note="",
    )


# --- the clock -----------------------------------------------------------------


def test_support_minutes_skip_nights_and_weekends() -> None:
    clock = SupportClock(OFFICE, "Europe/Berlin")
    # Friday 16:00 to Monday 10:00: one hour on Friday, one on Monday.
    assert clock.minutes_between(berlin(2026, 11, 13, 16, 0), berlin(2026, 11, 16, 10, 0)) == 120
    assert clock.minutes_between(berlin(2026, 11, 14, 10, 0), berlin(2026, 11, 15, 20, 0)) == 0
    assert clock.minutes_between(berlin(2026, 11, 16, 10, 0), berlin(2026, 11, 16, 9, 0)) == 0


def test_support_minutes_across_the_end_of_summer_time() -> None:
    # Friday 23 Oct 16:00 (UTC+2) to Monday 26 Oct 10:00 (UTC+1): still one hour each side.
    clock = SupportClock(OFFICE, "Europe/Berlin")
    assert clock.minutes_between(berlin(2026, 10, 23, 16, 0), berlin(2026, 10, 26, 10, 0)) == 120


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 22), (date(2026, 10, 25), 24), (date(2026, 6, 7), 23)])
def test_a_day_of_support_counts_its_real_length(day: date, hours: int) -> None:
    # Support all day every day: the day summer time starts has 23 real hours, the day it ends 25.
    always = SupportPlan(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), "00:00", "23:00", None)
    clock = SupportClock(always, "Europe/Berlin")
    opens, closes = clock.window(day) or (None, None)
    assert opens is not None and closes is not None
    assert closes - opens == timedelta(hours=hours)


def test_incidents_run_until_the_outage_line_closes() -> None:
    office, incident = SupportClock(OFFICE, "Europe/Berlin"), SupportClock(OFFICE, "Europe/Berlin", incident=True)
    reported = berlin(2026, 10, 23, 21, 40)  # a Friday evening
    assert office.due(reported, Promise(minutes=15)) == berlin(2026, 10, 26, 9, 15)
    assert incident.due(reported, Promise(minutes=15)) == berlin(2026, 10, 23, 21, 55)
    # 1h20 left on Friday, the remaining 40 minutes on Monday morning (after the clocks went back)
    assert incident.due(reported, Promise(minutes=120)) == berlin(2026, 10, 26, 9, 40)


def test_business_days_end_when_support_closes() -> None:
    clock = SupportClock(OFFICE, "Europe/Berlin")
    assert clock.due(berlin(2026, 11, 13, 10, 0), Promise(business_days=1)) == berlin(2026, 11, 16, 17, 0)
    assert clock.due(berlin(2026, 11, 14, 12, 0), Promise(business_days=1)) == berlin(2026, 11, 16, 17, 0)
    assert clock.due(berlin(2026, 11, 16, 20, 0), Promise(business_days=2)) == berlin(2026, 11, 18, 17, 0)
    assert clock.due(berlin(2026, 11, 16, 8, 0), Promise(minutes=60)) == berlin(2026, 11, 16, 10, 0)


def test_month_bounds_in_the_clients_time_zone() -> None:
    start, end = month_bounds((2026, 10), "Europe/Berlin")
    assert (start, end) == (datetime(2026, 9, 30, 22, 0, tzinfo=UTC), datetime(2026, 10, 31, 23, 0, tzinfo=UTC))
    assert end - start == timedelta(days=31, hours=1)
    start, end = month_bounds((2026, 2), "Europe/Berlin")
    assert end - start == timedelta(days=28)
    start, end = month_bounds((2026, 12), "UTC")
    assert (start.month, end.year, end.month) == (12, 2027, 1)


# --- the time bank ---------------------------------------------------------------


def test_example_ledger_time_bank_with_small_jobs_and_rollover() -> None:
    plan = plan_of("studio")  # 4h a month, unused time kept one month, one small job of up to 30m included
    entries = read_ledger(STACKS / "ledger.studio.csv", plan).entries
    october = time_bank(entries, plan, (2026, 10))
    # small jobs 25 (included), 20 and 30 (charged); request 90 (charged); incident 45 (free)
    assert (october.charged_minutes, october.free_minutes, october.small_jobs) == (140, 70, 3)
    assert (october.carried_in_minutes, october.left_minutes, october.over_minutes) == (0, 100, 0)
    november = time_bank(entries, plan, (2026, 11))
    # requests 60 + 150, the small job's 5 minutes over its 30; October's 100 minutes are spent first
    assert (november.charged_minutes, november.carried_in_minutes) == (215, 100)
    assert (november.left_minutes, november.over_minutes, november.expired_minutes) == (125, 0, 0)
    december = time_bank(entries, plan, (2026, 12))
    assert (december.carried_in_minutes, december.left_minutes, december.charged_minutes) == (125, 365, 0)
    january = time_bank(entries, plan, (2027, 1))
    # November's leftover reached the end of its one month of rollover
    assert (january.carried_in_minutes, january.expired_minutes, january.left_minutes) == (240, 125, 480)


def test_time_bank_runs_over_and_basic_has_no_rollover() -> None:
    plan = plan_of("bakery")  # 1h a month, no rollover
    entries = [entry(date(2026, 9, 3), 20), entry(date(2026, 10, 1), 50), entry(date(2026, 10, 20), 45)]
    september = time_bank(entries, plan, (2026, 9))
    assert (september.left_minutes, september.over_minutes) == (40, 0)
    october = time_bank(entries, plan, (2026, 10))
    assert (october.carried_in_minutes, october.expired_minutes) == (0, 40)
    assert (october.charged_minutes, october.left_minutes, october.over_minutes) == (95, 0, 35)


def test_an_empty_ledger_leaves_the_month_untouched() -> None:
    plan = plan_of("shop")
    bank = time_bank([], plan, (2026, 11))
    assert (bank.included_minutes, bank.left_minutes, bank.charged_minutes) == (480, 480, 0)


# --- severities ------------------------------------------------------------------


def test_example_ledger_severities() -> None:
    plan = plan_of("studio")
    entries = read_ledger(STACKS / "ledger.studio.csv", plan).entries
    october = {r.severity: r for r in severity_results(entries, plan, *month_bounds((2026, 10), "Europe/Berlin"))}
    assert list(october) == ["critical", "high", "medium", "low"]
    assert (october["critical"].tickets, october["critical"].response, october["critical"].fix) == (
        1,
        Outcome(met=1),
        Outcome(met=1),
    )
    assert (october["low"].response, october["low"].fix) == (Outcome(met=1), Outcome(met=1))
    assert october["high"].tickets == 0
    november = {r.severity: r for r in severity_results(entries, plan, *month_bounds((2026, 11), "Europe/Berlin"))}
    # the high ticket was answered after 2.5 support hours (promise: 1h) and fixed within its 8 hours
    assert (november["high"].response, november["high"].fix) == (Outcome(missed=1), Outcome(met=1))
    [high] = november["high"].detail
    assert (high.row, high.response.support_minutes, high.response.due) == (7, 150.0, berlin(2026, 11, 16, 12, 0))
    assert (high.fix.support_minutes, high.fix.due, high.fix.outcome) == (420.0, berlin(2026, 11, 17, 11, 0), "met")
    [medium] = november["medium"].detail
    # reported Monday 16:30: half an hour that day, 40 minutes on Tuesday morning
    assert (medium.response.support_minutes, medium.response.due) == (70.0, berlin(2026, 11, 3, 12, 30))
    # the incident on a Friday evening: its clock ran until the outage line closed at 23:00
    [critical] = october["critical"].detail
    assert (critical.kind, critical.response.support_minutes, critical.fix.support_minutes) == ("incident", 12.0, 80.0)
    assert critical.fix.due == berlin(2026, 10, 26, 9, 40)
    assert (november["medium"].response, november["medium"].fix) == (Outcome(met=1), Outcome(met=1))


def test_unanswered_tickets_are_open_until_due_then_missed() -> None:
    plan = plan_of("studio")
    reported = berlin(2026, 11, 30, 16, 0)  # Monday; the period ends at midnight
    ticket = entry(date(2026, 11, 30), 0, severity="high", reported=reported, responded=berlin(2026, 11, 30, 16, 30))
    start, end = month_bounds((2026, 11), "Europe/Berlin")
    [_, high, _, _] = severity_results([ticket], plan, start, end)
    # response met; the 8h fix is due on Tuesday, after the period: still open
    assert (high.response, high.fix) == (Outcome(met=1), Outcome(open=1))
    assert (high.detail[0].fix.done, high.detail[0].fix.support_minutes) == (None, None)
    late = entry(date(2026, 11, 2), 0, severity="critical", kind="incident", reported=berlin(2026, 11, 2, 10, 0))
    [critical, *_] = severity_results([late], plan, start, end)
    assert (critical.response, critical.fix) == (Outcome(missed=1), Outcome(missed=1))
    # a ticket reported before the period is not counted in it
    assert severity_results([late], plan, *month_bounds((2026, 12), "Europe/Berlin"))[0].tickets == 0
