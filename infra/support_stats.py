"""What the support ledger says about a month: the time bank, and severities against their promises.

Pure functions over a validated ledger and the plan, for the monthly report.

Time bank: requests are charged; a month's first small jobs (the tier's
number of them, each up to its maximum length) are included, the rest of a
small job is charged; incidents are the agency's own duty and never charged.
Unused included time rolls over for the tier's number of months and is spent
oldest first; the bank opens with the ledger's first month.

Response and fix times: each ticket with a severity is measured in support
hours (an incident until the outage line closes) from when it was reported;
one without a response or fix yet counts as missed once its promise is due
before the end of the period, otherwise as open. Each ticket's due times and
the support minutes it took come along for the report's detail table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from infra.ledger import LedgerEntry
from infra.plan import CarePlan, SeverityPlan
from infra.support_hours import Promise, SupportClock

Month = tuple[int, int]  # (year, month)


def month_of(day: date) -> Month:
    return day.year, day.month


def _next(month: Month) -> Month:
    year, number = month
    return (year + 1, 1) if number == 12 else (year, number + 1)


def _months(first: Month, last: Month) -> list[Month]:
    months = [first]
    while months[-1] < last:
        months.append(_next(months[-1]))
    return months


@dataclass(frozen=True)
class MonthBank:
    month: Month
    included_minutes: int
    carried_in_minutes: int  # unused time of earlier months still valid this month
    charged_minutes: int  # work the bank pays for
    free_minutes: int  # incidents and the included small jobs
    left_minutes: int  # included + carried - charged, never below zero
    over_minutes: int  # charged work the bank could not cover
    expired_minutes: int  # unused time that reached the end of its rollover this month
    small_jobs: int


def charged_minutes(entries: Iterable[LedgerEntry], plan: CarePlan) -> tuple[int, int, int]:
    """(charged, free, small jobs) for one month's entries, in ledger order."""
    charged = free = small_jobs = 0
    sla = plan.sla
    for entry in entries:
        if entry.kind == "incident":
            free += entry.minutes
        elif entry.kind == "request":
            charged += entry.minutes
        else:
            small_jobs += 1
            included = min(entry.minutes, sla.small_job_max_minutes) if small_jobs <= sla.small_jobs_per_month else 0
            free += included
            charged += entry.minutes - included
    return charged, free, small_jobs


def time_bank(entries: Iterable[LedgerEntry], plan: CarePlan, month: Month) -> MonthBank:
    """The time bank for `month`, with rollover from the months since the ledger's first entry."""
    by_month: dict[Month, list[LedgerEntry]] = {}
    for entry in entries:
        by_month.setdefault(month_of(entry.date), []).append(entry)
    bank = plan.sla.time_bank
    first = min([*by_month, month])
    lots: list[tuple[Month, int]] = []  # (month earned, unused minutes), oldest first
    result: MonthBank | None = None
    for current in _months(first, month):
        expired = 0
        valid: list[tuple[Month, int]] = []
        for earned, minutes in lots:
            if len(_months(earned, current)) - 1 <= bank.rollover_months:
                valid.append((earned, minutes))
            else:
                expired += minutes
        carried = sum(minutes for _, minutes in valid)
        lots = [*valid, (current, bank.included_minutes_per_month)]
        charged, free, small_jobs = charged_minutes(by_month.get(current, []), plan)
        owed = charged
        spent: list[tuple[Month, int]] = []
        for earned, minutes in lots:
            used = min(minutes, owed)
            owed -= used
            if minutes - used:
                spent.append((earned, minutes - used))
        lots = spent
        result = MonthBank(
            month=current,
            included_minutes=bank.included_minutes_per_month,
            carried_in_minutes=carried,
            charged_minutes=charged,
            free_minutes=free,
            left_minutes=sum(minutes for _, minutes in lots),
            over_minutes=owed,
            expired_minutes=expired,
            small_jobs=small_jobs,
        )
    assert result is not None  # _months always yields the asked month
    return result


@dataclass(frozen=True)
class Outcome:
    met: int = 0
    missed: int = 0
    open: int = 0


@dataclass(frozen=True)
class Measure:
    """One promise of one ticket: when it fell due, and how it went."""

    due: datetime
    done: datetime | None
    support_minutes: float | None  # support time from report to done (None while not done)
    outcome: str  # met | missed | open


@dataclass(frozen=True)
class TicketResult:
    row: int
    kind: str
    reported: datetime
    response: Measure
    fix: Measure


@dataclass(frozen=True)
class SeverityResult:
    severity: str
    tickets: int
    response: Outcome
    fix: Outcome
    detail: tuple[TicketResult, ...]


def _promise(minutes: int, business_days: int) -> Promise:
    return Promise(minutes=minutes, business_days=business_days)


def _measure(clock: SupportClock, reported: datetime, done: datetime | None, due: datetime, as_of: datetime) -> Measure:
    if done is not None:
        outcome = "met" if done <= due else "missed"
        return Measure(due, done, round(clock.minutes_between(reported, done), 1), outcome)
    return Measure(due, None, None, "missed" if due < as_of else "open")


def _count(measures: list[Measure]) -> Outcome:
    outcomes = [m.outcome for m in measures]
    return Outcome(outcomes.count("met"), outcomes.count("missed"), outcomes.count("open"))


def severity_results(
    entries: Iterable[LedgerEntry], plan: CarePlan, start: datetime, end: datetime
) -> tuple[SeverityResult, ...]:
    """Per severity of the plan: tickets reported in [start, end) and how many met their promises."""
    tickets = [e for e in entries if e.severity and e.reported and start <= e.reported < end]
    results = []
    for severity in plan.sla.severities:
        detail = []
        for ticket in (t for t in tickets if t.severity == severity.name):
            assert ticket.reported is not None
            clock = SupportClock(plan.sla.support, plan.client.timezone, incident=ticket.kind == "incident")
            reported = ticket.reported
            response = _measure(clock, reported, ticket.responded, clock.due(reported, _response(severity)), end)
            fix = _measure(clock, reported, ticket.fixed, clock.due(reported, _fix(severity)), end)
            detail.append(TicketResult(ticket.row, ticket.kind, reported, response, fix))
        results.append(
            SeverityResult(
                severity.name,
                len(detail),
                _count([d.response for d in detail]),
                _count([d.fix for d in detail]),
                tuple(detail),
            )
        )
    return tuple(results)


def _response(severity: SeverityPlan) -> Promise:
    return _promise(severity.response_minutes, severity.response_business_days)


def _fix(severity: SeverityPlan) -> Promise:
    return _promise(severity.fix_minutes, severity.fix_business_days)


def month_bounds(month: Month, timezone: str) -> tuple[datetime, datetime]:
    """The month as real instants [start, end) in the client's time zone."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(date(*month, 1), time(), tzinfo=zone)
    end = datetime.combine(date(*_next(month), 1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)
