"""The report's accounting rules on synthetic timelines and snapshot lists (the studio stack: standard
tier, Europe/Berlin, update window Tue 06:00 for two hours, hourly backups)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.plan import CarePlan, SitePlan, build_plan
from infra.report.backups import parse_snapshots, scheduled_runs, site_backups
from infra.report.incidents import site_incidents
from infra.report.period import PeriodError, month_period, range_period
from infra.report.uptime import page_key, site_uptime
from infra.report.windows import maintenance_windows
from infra.spec import ClientSpec, load_stack
from infra.timeline import Interval, MonitorTimeline, State

STACKS = Path(__file__).resolve().parents[2] / "stacks"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
TUESDAYS_NOV_2026 = 4  # 3, 10, 17, 24


@pytest.fixture(scope="module")
def plan() -> CarePlan:
    spec = load_stack(STACKS / "Pulumi.studio.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def berlin(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def timeline(
    name: str, start: datetime, end: datetime, *events: tuple[datetime, datetime, State, str]
) -> MonitorTimeline:
    """UP over [start, end) except the given (from, to, state, note) stretches, in order."""
    intervals, cursor = [], start
    for a, b, state, note in events:
        if a > cursor:
            intervals.append(Interval(cursor, a, State.UP))
        intervals.append(Interval(a, b, state, note))
        cursor = b
    if cursor < end:
        intervals.append(Interval(cursor, end, State.UP))
    return MonitorTimeline(name, start, end, intervals, resolution_seconds=60, source="synthetic")


def web(plan: CarePlan) -> SitePlan:
    return plan.sites[0]


def home(plan: CarePlan, *events: tuple[datetime, datetime, State, str], month: int = 11) -> dict[str, MonitorTimeline]:
    period = month_period(f"2026-{month:02d}", "Europe/Berlin", NOW)
    site = web(plan)
    out = {page_key(site, c.path): timeline(page_key(site, c.path), period.start, period.end) for c in site.checks}
    out[page_key(site, "/")] = timeline(page_key(site, "/"), period.start, period.end, *events)
    return out


def november():
    return month_period("2026-11", "Europe/Berlin", NOW)


def test_a_month_all_up_excludes_the_update_windows_and_meets_the_target(plan: CarePlan) -> None:
    u = site_uptime(plan, web(plan), home(plan), november())
    window = plan.monitoring.maintenance.duration_minutes
    assert u.minutes.excluded == TUESDAYS_NOV_2026 * window
    assert u.minutes.counted == 30 * 1440 - TUESDAYS_NOV_2026 * window
    assert u.uptime_percent == 100 and u.met is True
    assert u.windows[0].start == berlin(11, 3, 6)
    assert len(u.days) == 30 and all(d.minutes.percent() == 100 for d in u.days)


def test_downtime_outside_a_window_uses_the_budget_and_can_miss_the_target(plan: CarePlan) -> None:
    u = site_uptime(
        plan, web(plan), home(plan, (berlin(11, 12, 14), berlin(11, 12, 15), State.DOWN, "500")), november()
    )
    counted = u.minutes.counted
    assert u.minutes.down == 60
    assert u.uptime_percent == round(100 * (counted - 60) / counted, 4)
    assert u.budget_minutes == round((100 - plan.sla.uptime_target_percent) / 100 * counted, 2)
    assert u.budget_used_minutes == 60
    assert u.budget_minutes < 60 and u.met is False
    day = next(d for d in u.days if d.day == "2026-11-12")
    assert day.minutes.down == 60


def test_downtime_inside_a_maintenance_window_is_excluded_and_listed(plan: CarePlan) -> None:
    # The update window of Tue 10 Nov opens 06:00 Berlin; the site is down 06:30-07:00 and again 07:50-08:20.
    events = (
        (berlin(11, 10, 6, 30), berlin(11, 10, 7), State.DOWN, "502"),
        (berlin(11, 10, 7, 50), berlin(11, 10, 8, 20), State.DOWN, "502"),
    )
    u = site_uptime(plan, web(plan), home(plan, *events), november())
    assert u.minutes.down == 20  # only 08:00-08:20 is outside the window
    window = next(w for w in u.windows if w.start == berlin(11, 10, 6))
    assert window.down_minutes == 40
    assert u.minutes.excluded == TUESDAYS_NOV_2026 * plan.monitoring.maintenance.duration_minutes


def test_kuma_maintenance_outside_the_plans_windows_is_excluded_too(plan: CarePlan) -> None:
    u = site_uptime(
        plan, web(plan), home(plan, (berlin(11, 5, 1), berlin(11, 5, 2), State.MAINTENANCE, "moved")), november()
    )
    assert u.minutes.excluded == TUESDAYS_NOV_2026 * plan.monitoring.maintenance.duration_minutes + 60
    assert u.minutes.down == 0


def test_no_data_is_never_up_and_shown_apart(plan: CarePlan) -> None:
    u = site_uptime(
        plan, web(plan), home(plan, (berlin(11, 20, 1), berlin(11, 20, 1, 30), State.NO_DATA, "")), november()
    )
    assert u.minutes.no_data == 30 and u.minutes.down == 0
    assert u.uptime_percent is not None and u.uptime_percent < 100
    assert u.budget_used_minutes == 30


def test_pending_checks_count_as_downtime_but_a_blip_is_no_incident(plan: CarePlan) -> None:
    events = (
        (berlin(11, 2, 10), berlin(11, 2, 10, 2), State.PENDING, "timeout"),
        (berlin(11, 3, 12), berlin(11, 3, 12, 1), State.PENDING, "ECONNREFUSED"),
        (berlin(11, 3, 12, 1), berlin(11, 3, 12, 9), State.DOWN, "ECONNREFUSED"),
    )
    timelines = home(plan, *events)
    period = november()
    u = site_uptime(plan, web(plan), timelines, period)
    assert u.minutes.down == 2 + 9
    windows = maintenance_windows(plan.monitoring.maintenance, "Europe/Berlin", period.start, period.end)
    incidents = site_incidents(web(plan), timelines, period, windows)
    assert len(incidents) == 1
    only = incidents[0]
    assert (only.start, only.end, only.alerted) == (berlin(11, 3, 12), berlin(11, 3, 12, 9), berlin(11, 3, 12, 1))
    assert only.whole_site and only.checks == ("/",) and only.messages == ("ECONNREFUSED",)


def test_another_page_down_is_partial_downtime_and_joins_the_incident(plan: CarePlan) -> None:
    site, period = web(plan), november()
    timelines = home(plan, (berlin(11, 4, 9, 10), berlin(11, 4, 9, 20), State.DOWN, "500"))
    projects = page_key(site, "/projects/")
    events = (
        (berlin(11, 4, 9), berlin(11, 4, 9, 15), State.DOWN, "500"),
        (berlin(11, 6, 9), berlin(11, 6, 9, 30), State.DOWN, "keyword missing"),
    )
    timelines[projects] = timeline(projects, period.start, period.end, *events)
    u = site_uptime(plan, site, timelines, period)
    assert u.minutes.down == 10
    assert u.partial_down_minutes == 10 + 30  # 09:00-09:10 on the 4th, all of the 6th's
    incidents = site_incidents(site, timelines, period, [])
    assert [(i.start, i.end, i.checks, i.whole_site) for i in incidents] == [
        (berlin(11, 4, 9), berlin(11, 4, 9, 20), ("/projects/", "/"), True),
        (berlin(11, 6, 9), berlin(11, 6, 9, 30), ("/projects/",), False),
    ]
    assert incidents[0].alerted == berlin(11, 4, 9)


def test_an_incident_still_down_at_the_end_is_ongoing(plan: CarePlan) -> None:
    period = november()
    timelines = home(plan, (berlin(11, 30, 23, 50), period.end, State.DOWN, "timeout"))
    (incident,) = site_incidents(web(plan), timelines, period, [])
    assert incident.ongoing and incident.minutes == 10


@pytest.mark.parametrize(
    ("month", "days", "shift"),
    [("2026-02", 28, 0), ("2026-03", 31, -60), ("2026-10", 31, 60), ("2026-11", 30, 0), ("2026-01", 31, 0)],
)
def test_months_are_their_real_length_in_the_clients_zone(month: str, days: int, shift: int) -> None:
    period = month_period(month, "Europe/Berlin", NOW)
    assert period.minutes == days * 1440 + shift
    assert len(period.days()) == days
    year, number = map(int, month.split("-"))
    assert period.start == berlin(number, 1, year=year)


def test_a_dst_month_has_its_short_day_and_its_windows_move_in_utc(plan: CarePlan) -> None:
    period = month_period("2026-03", "Europe/Berlin", NOW)
    timelines = home(plan, month=3)
    u = site_uptime(plan, web(plan), timelines, period)
    short = next(d for d in u.days if d.day == "2026-03-29")
    assert short.minutes.counted == 23 * 60
    windows = maintenance_windows(plan.monitoring.maintenance, "Europe/Berlin", period.start, period.end)
    assert windows[0][0] == datetime(2026, 3, 3, 5, tzinfo=UTC)  # CET
    assert windows[-1][0] == datetime(2026, 3, 31, 4, tzinfo=UTC)  # CEST


def test_a_window_that_began_before_the_period_counts_for_its_part_inside() -> None:
    from infra.plan import UpdateWindowPlan

    window = UpdateWindowPlan("Mon", "23:00", 120)
    # 30 Nov 2026 is a Monday; the period starts 1 Dec 00:00 Berlin.
    start, end = berlin(12, 1), berlin(12, 2)
    assert maintenance_windows(window, "Europe/Berlin", start, end) == [(start, berlin(12, 1, 1))]


def test_the_current_month_runs_to_now_and_a_future_month_is_refused() -> None:
    period = month_period("2026-12", "Europe/Berlin", NOW)
    assert period.end == NOW and "to 2026-12-01" in period.label
    with pytest.raises(PeriodError, match=r"--month: 2027-01 has not begun yet"):
        month_period("2027-01", "Europe/Berlin", NOW)


@pytest.mark.parametrize("bad", ["2026-13", "November", "2026-1", ""])
def test_a_month_that_is_no_month_is_named(bad: str) -> None:
    with pytest.raises(PeriodError, match=r"--month: .* expected YYYY-MM"):
        month_period(bad, "Europe/Berlin", NOW)


def test_a_range_must_run_forward_and_have_real_days() -> None:
    with pytest.raises(PeriodError, match=r"--from 2026-11-10 is not before --to 2026-11-10"):
        range_period("2026-11-10", "2026-11-10", "Europe/Berlin", NOW)
    with pytest.raises(PeriodError, match=r"--to: '2026-11-31' is not a date"):
        range_period("2026-11-01", "2026-11-31", "Europe/Berlin", NOW)
    with pytest.raises(PeriodError, match=r"--from: 2027-01-01 lies in the future"):
        range_period("2027-01-01", "2027-01-05", "Europe/Berlin", NOW)
    period = range_period("2026-11-01", "2026-11-08", "Europe/Berlin", NOW)
    assert period.minutes == 7 * 1440 and period.last_day.isoformat() == "2026-11-07"


def hourly(
    start: datetime, end: datetime, skip: set[datetime] = frozenset(), tags: tuple[str, ...] = ("complete",)
) -> list[dict]:  # type: ignore[assignment]
    out, moment = [], start
    while moment < end:
        if moment not in skip:
            out.append(
                {"short_id": f"{len(out):08x}", "time": moment.astimezone(BERLIN).isoformat(), "tags": list(tags)}
            )
        moment += timedelta(hours=1)
    return out


def test_backups_called_for_made_and_the_worst_gap(plan: CarePlan) -> None:
    period = november()
    first = period.start + timedelta(minutes=16)
    missed = first + timedelta(hours=100)
    raw = hourly(first - timedelta(hours=3), period.end, skip={missed})
    raw.append({"short_id": "deadbeef", "time": (missed + timedelta(minutes=5)).isoformat(), "tags": ["incomplete"]})
    b = site_backups(plan, "web", parse_snapshots(raw, "web"), period)
    assert b.called_for == 30 * 24
    assert b.complete == 30 * 24 - 1 and b.incomplete == 1
    assert b.worst_gap.minutes == 120 and b.worst_gap.start == missed - timedelta(hours=1)
    assert not b.rpo_met and len(b.gaps_over_rpo) == 1
    assert b.oldest == first - timedelta(hours=3)
    assert b.retention_held  # a month back at the period's end reaches the keep rules' horizon


def test_retention_is_not_held_when_the_oldest_snapshot_is_younger_than_the_keep_rules(plan: CarePlan) -> None:
    period = november()
    raw = hourly(period.end - timedelta(days=5), period.end)
    b = site_backups(plan, "web", parse_snapshots(raw, "web"), period)
    assert b.oldest_age_days == 5 and not b.retention_held
    assert b.worst_gap.start == period.start  # nothing before: the gap runs from the period's start


def test_backups_every_hour_meet_the_rpo_and_the_first_gap_runs_from_the_last_one_before(plan: CarePlan) -> None:
    period = november()
    raw = hourly(period.start - timedelta(days=plan.storage.retention_days + 1, minutes=-16), period.end)
    b = site_backups(plan, "web", parse_snapshots(raw, "web"), period)
    assert b.rpo_met and b.worst_gap.minutes == 60 and b.retention_held


def test_no_backup_at_all_is_a_gap_of_the_whole_period(plan: CarePlan) -> None:
    period = november()
    b = site_backups(plan, "web", [], period)
    assert b.complete == 0 and b.worst_gap.minutes == period.minutes and not b.rpo_met and b.oldest is None


def test_a_dst_month_calls_for_its_real_number_of_hourly_backups(plan: CarePlan) -> None:
    assert (
        scheduled_runs(plan.backup.schedule.on_calendar, month_period("2026-03", "Europe/Berlin", NOW)) == 31 * 24 - 1
    )
    assert scheduled_runs("*-*-* 02:30:00 Europe/Berlin", month_period("2026-03", "Europe/Berlin", NOW)) == 30
    assert scheduled_runs(plan.backup.schedule.on_calendar, month_period("2026-10", "Europe/Berlin", NOW)) == 31 * 24


def test_a_site_onboarded_mid_month_has_a_prorated_budget_and_nothing_charged_before(plan: CarePlan) -> None:
    period = november()
    onboarded = berlin(11, 16)
    u = site_uptime(plan, web(plan), home(plan, (period.start, onboarded, State.NOT_MONITORED, "")), period)
    window = plan.monitoring.maintenance.duration_minutes
    monitored = 15 * 1440 - 2 * window  # Tuesdays 17 and 24 fall after onboarding
    assert u.minutes.not_monitored == 15 * 1440
    assert u.minutes.no_data == 0 and u.minutes.down == 0
    assert u.minutes.counted == monitored
    assert u.budget_minutes == round((100 - plan.sla.uptime_target_percent) / 100 * monitored, 2)
    assert u.budget_used_minutes == 0 and u.uptime_percent == 100 and u.met is True
    assert u.not_monitored == (period.start, onboarded)
    assert u.days[0].minutes.percent() is None and u.days[15].minutes.percent() == 100


def test_only_the_stretch_before_the_first_beat_is_not_monitored() -> None:
    from infra.monitors.history import not_monitored_before

    start, end = berlin(11, 1), berlin(11, 3)
    began, gap = berlin(11, 2), berlin(11, 2, 12)
    t = timeline("x", start, end, (start, began, State.NO_DATA, ""), (gap, gap + timedelta(hours=1), State.NO_DATA, ""))
    marked = not_monitored_before(t, began)
    assert marked.intervals[0] == Interval(start, began, State.NOT_MONITORED)
    assert marked.time_in(State.NO_DATA) == timedelta(hours=1)
    assert not_monitored_before(t, start - timedelta(days=1)) is t


def test_a_site_taken_into_care_mid_period_is_counted_from_then(plan: CarePlan) -> None:
    period = november()
    began = period.start + timedelta(days=20, hours=9, minutes=21)  # its monitors were created then
    raw = hourly(began + timedelta(minutes=4), period.end)
    b = site_backups(plan, "web", parse_snapshots(raw, "web"), period, care_from=began)
    assert b.counted_from == began
    assert b.called_for == scheduled_runs(plan.backup.schedule.on_calendar, replace(period, start=began))
    assert b.called_for < 30 * 24 and b.complete == len(raw)
    assert b.worst_gap.minutes == 60 and b.rpo_met  # no gap from the period's start: nothing was due then
    assert b.retention_held  # the first backup followed the start of care: as far back as the rules can reach

    late = site_backups(plan, "web", parse_snapshots(hourly(began + timedelta(days=2), period.end), "web"), period,
                        care_from=began)  # fmt: skip
    assert not late.retention_held and not late.rpo_met and late.worst_gap.minutes >= 2 * 24 * 60
