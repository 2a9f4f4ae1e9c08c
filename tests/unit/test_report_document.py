"""The report document of the synthetic studio month (tests/report_sample.py): each section's numbers
against the events the sample holds, credits from the tier's table, the overview's findings."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from infra.monitors.history import not_monitored_before
from infra.report.build import build_report
from infra.report.fmt import DASH, duration
from infra.report.overview import rows
from infra.report.render_html import render_html
from infra.report.render_md import render_md
from infra.report.text import TEXT
from infra.report.uptime import page_key
from tests.report_sample import (
    NOW,
    STALLED_BACKUP,
    berlin,
    sample_period,
    sample_recovery_evidence,
    sample_sources,
    studio_plan,
)


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    plan, period = studio_plan(), sample_period()
    return build_report(plan, period, sample_sources(plan, period), NOW)


def test_uptime_downtime_and_no_data_of_the_first_site(doc: dict[str, Any]) -> None:
    web = doc["sites"][0]["uptime"]
    assert web["minutes"]["down"] == 47  # 14:00-14:47 on the 12th (pending then down)
    assert web["minutes"]["no_data"] == 30
    assert web["partial_down_minutes"] == 30  # /projects/ on the 6th
    assert web["budget"]["used_minutes"] == 77 and web["met"] is False
    tuesday = next(w for w in web["maintenance_windows"] if w["start"] == "2026-11-10T05:00:00Z")
    assert tuesday["down_minutes"] == 20


def test_credits_follow_the_tiers_table_and_the_fee(doc: dict[str, Any]) -> None:
    web, plans = doc["credits"]["per_site"]
    assert web["percent"] > 0 and web["band_below_percent"] == doc["targets"]["uptime_percent"]
    assert plans["percent"] == 0
    assert doc["credits"]["total"]["amount"] == pytest.approx(180 * web["percent"] / 100)


def test_jobs_from_the_evidence(doc: dict[str, Any]) -> None:
    assert (doc["integrity_checks"]["ok"], doc["integrity_checks"]["failed"]) == (1, 1)
    assert [c["component"] for c in doc["updates"]["applied"]] == ["plugin contact-form-7", "apt nginx"]
    assert doc["security_scans"]["runs"][0]["figures"]["high"] == 2
    assert doc["drills"]["runs"] == [] and doc["drills"]["note"] == "the tier schedules no restore drill"
    assert doc["failovers"]["runs"] == [] and doc["failovers"]["note"] == "no failover in the period"
    assert doc["performance"]["note"] == "not run"
    md = render_md(doc)
    assert "critical 0, high 2, medium 1, info 4" in md


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_a_backup_job_that_failed_is_listed_with_its_cause_beside_the_gap_it_left(
    doc: dict[str, Any], lang: str
) -> None:
    web, plans = doc["sites"][0]["backups"], doc["sites"][1]["backups"]
    assert web["failed_runs"] == [
        {"started": "2026-11-18T02:23:00Z", "ended": "2026-11-18T02:26:00Z", "message": STALLED_BACKUP}
    ]
    assert plans["failed_runs"] == []
    assert web["complete"] == web["called_for"] - 1  # the hour it missed
    words = TEXT[lang]
    assert words["failed_backups"] in render_md(doc, lang) and STALLED_BACKUP in render_md(doc, lang)
    html = render_html(doc, lang)
    assert words["failed_backups"] in html and "stalled: no progress for 600 s" in html


def test_without_the_evidence_a_missed_backup_is_only_its_gap() -> None:
    plan, period = studio_plan(), sample_period()
    doc = build_report(plan, period, replace(sample_sources(plan, period), evidence=None), NOW)
    web = doc["sites"][0]["backups"]
    assert web["failed_runs"] is None and web["complete"] == web["called_for"] - 1


def test_the_overview_puts_the_site_with_findings_first(doc: dict[str, Any]) -> None:
    first, second = rows([doc])
    assert first["site"] == "www.studio.example"
    assert first["findings"] == [
        "uptime target missed",
        "RPO missed (2 h 00 min without a complete backup)",
        "security findings (critical or high)",
        "update rolled back",
    ]
    assert second["findings"] == ["integrity check failed"]


def test_a_site_without_response_samples_gets_a_sentence_not_an_empty_chart(doc: dict[str, Any]) -> None:
    quiet = {**doc, "sites": [{**doc["sites"][0], "response_times": [{"check": "/", "days": []}]}]}
    html = render_html(quiet)
    assert "no response times were recorded in the period" in html
    assert html.count('class="chart"') == 2  # daily uptime and backups only


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_a_site_onboarded_mid_month_shows_its_not_yet_monitored_stretch_in_every_format(lang: str) -> None:
    plan, period = studio_plan(), sample_period()
    sources = sample_sources(plan, period)
    site = plan.sites[0]
    key = page_key(site, site.checks[0].path)
    onboarded = berlin(3, 9)
    sources = replace(
        sources, timelines={**sources.timelines, key: not_monitored_before(sources.timelines[key], onboarded)}
    )
    doc = build_report(plan, period, sources, NOW)

    up = doc["sites"][0]["uptime"]
    assert up["not_monitored"]["end"] == onboarded.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert up["minutes"]["not_monitored"] == (onboarded - period.start).total_seconds() / 60
    span = f"2026-11-01 00:00 {DASH} 2026-11-03 09:00"
    assert f"{TEXT[lang]['not_monitored']}: {span} ({duration(up['minutes']['not_monitored'])})" in render_md(doc, lang)
    html = render_html(doc, lang)
    assert TEXT[lang]["not_monitored"] in html and span in html
    # Its backups are counted from the same moment: the schedule's runs before it were not due.
    backups, whole = doc["sites"][0]["backups"], doc["sites"][1]["backups"]
    assert backups["counted_from"] == up["not_monitored"]["end"] and whole["counted_from"] is None
    assert backups["called_for"] == whole["called_for"] - (onboarded - period.start) // timedelta(hours=1)
    assert f"{TEXT[lang]['counted_from']} 2026-11-03 09:00" in render_md(doc, lang) and "2026-11-03 09:00" in html


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_failover_and_failback_show_their_rto_and_rpo_against_the_plan(lang: str) -> None:
    plan, period = studio_plan(), sample_period()
    sources = sample_sources(plan, period)
    sources = replace(sources, evidence=[*sources.evidence, *sample_recovery_evidence(plan)])
    doc = build_report(plan, period, sources, NOW)

    failover, failback = doc["failovers"]["runs"]
    assert plan.sla.failover is not None
    assert (failover["job"], failover["rto_minutes"], failover["rto_target_minutes"]) == (
        "failover",
        21.0,
        plan.sla.failover.rto_minutes,
    )
    assert failover["rto_met"] is True
    assert failover["rpo_minutes"] == plan.backup.rpo_minutes + 30 and failover["rpo_met"] is False
    assert (failback["rto_minutes"], failback["rpo_minutes"], failback["rpo_met"]) == (10.2, 1.6, True)

    w = TEXT[lang]
    rto_plan = duration(plan.sla.failover.rto_minutes)
    row = (
        f"| 2026-11-20 10:40 | {plan.sites[0].id} | {w['job_failover']} | {w['ok']} "
        f"| 21 min ({rto_plan}), {w['met']} "
        f"| {duration(plan.backup.rpo_minutes + 30)} ({duration(plan.backup.rpo_minutes)}), {w['missed']} |"
    )
    assert row in render_md(doc, lang)
    html = render_html(doc, lang)
    assert f"<td>{w['job_failback']}</td>" in html and f"<td>10 min ({rto_plan}), {w['met']}</td>" in html


@pytest.mark.parametrize("lang", ["en", "nl"])
def test_a_site_still_on_the_standby_shows_its_age_against_the_plans_limit(lang: str) -> None:
    plan, period = studio_plan(), sample_period()
    sources = sample_sources(plan, period)
    failover, failback = sample_recovery_evidence(plan)
    assert plan.sla.failover is not None
    back = build_report(plan, period, replace(sources, evidence=[*sources.evidence, failover, failback]), NOW)
    assert back["failovers"]["active"] == []

    doc = build_report(plan, period, replace(sources, evidence=[*sources.evidence, failover]), NOW)
    # on the standby from the 20th 10:40 (Berlin) to the period's end, Dec 1st 00:00
    assert doc["failovers"]["active"] == [
        {
            "site": plan.sites[0].id,
            "since": "2026-11-20T09:40:00Z",
            "days": 10.6,
            "max_days": plan.sla.failover.max_days,
        }
    ]
    line = TEXT[lang]["active_failover"].format(
        site=plan.sites[0].id, since="2026-11-20 10:40", days=10.6, max_days=plan.sla.failover.max_days
    )
    assert f"- {line}" in render_md(doc, lang)
    assert line in render_html(doc, lang)
