"""The client-facing SLA text, built from a CarePlan in English or Dutch.

`build_document` turns the plan into sections (paragraphs, bullet items,
tables); `infra.sla_doc_render` writes them as Markdown or HTML. Every number
in the text is read from the plan; this module only words it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.plan import CarePlan, Schedule, SeverityPlan
from infra.sla_doc_text import APT, CHANNEL, DAYS, HOSTING, KEEP, SEVERITY, TEXT, WORDPRESS
from infra.sla_terms import CreditPlan
from infra.units import WEEKDAYS

LANGUAGES = tuple(TEXT)


class SlaDocError(ValueError):
    """Bad input to the SLA document (an unknown language or format)."""


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]
    heading: str = ""


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[str, ...], ...]  # the first row is the header


Block = Paragraph | Items | Table


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


def _section(title: str, *blocks: Block | str) -> Section:
    return Section(title, tuple(Paragraph(b) if isinstance(b, str) else b for b in blocks))


@dataclass(frozen=True)
class Document:
    lang: str
    title: str
    subtitle: str
    sections: tuple[Section, ...]


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise SlaDocError(f"unknown language {lang!r} (valid: {', '.join(LANGUAGES)})")
    return lang


# --- wording -----------------------------------------------------------------


class _Words:
    """Numbers, durations and schedules worded in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = check_language(lang)
        self.text = TEXT[lang]

    def __call__(self, key: str, **values: object) -> str:
        return self.text[key].format(**values)

    def number(self, value: float) -> str:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return text.replace(".", ",") if self.lang == "nl" else text

    def money(self, amount: float, currency: str) -> str:
        text = f"{amount:,.2f}"
        if self.lang == "nl":
            text = text.replace(",", "_").replace(".", ",").replace("_", ".")
        return f"{currency} {text}"

    def minutes(self, minutes: float) -> str:
        """A span worded in its largest exact unit: 90 -> "90 minutes", 120 -> "2 hours"."""
        if minutes < 1:
            return self("seconds", n=self.number(minutes * 60))
        if minutes == int(minutes) and int(minutes) % 60 == 0:
            hours = int(minutes) // 60
            return self("hour") if hours == 1 else self("hours", n=hours)
        if minutes == 1:
            return self("minute")
        return self("minutes", n=self.number(minutes))

    def seconds(self, seconds: int) -> str:
        return self.minutes(seconds / 60) if seconds % 60 == 0 else self("seconds", n=seconds)

    def hours(self, hours: float) -> str:
        return self.minutes(hours * 60) if hours < 1 else self("hours", n=self.number(hours))

    def day(self, weekday: str) -> str:
        return DAYS[self.lang][WEEKDAYS.index(weekday)]

    def days(self, weekdays: tuple[str, ...]) -> str:
        names = [self.day(d) for d in weekdays]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {self('and')} {names[-1]}"

    def listing(self, words: list[str]) -> str:
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {self('and')} {words[-1]}"

    def promise(self, minutes: int, business_days: int) -> str:
        if business_days == 1:
            return self("next_business_day")
        if business_days:
            return self("business_days", n=business_days)
        return self.minutes(minutes)

    def severity(self, name: str) -> str:
        return SEVERITY.get(self.lang, {}).get(name, name)

    def schedule(self, schedule: Schedule) -> str:
        return describe_schedule(schedule, self)


_HOURLY = re.compile(r"^\*-\*-\* \*:(\d{2}):00 ")
_DAILY = re.compile(r"^\*-\*-\* (\d{2}:\d{2}):00 ")
_WEEKLY = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \*-\*-\* (\d{2}:\d{2}):00 ")
_MONTHLY = re.compile(r"^\*-\*-(\d{2}) (\d{2}:\d{2}):00 ")


def describe_schedule(schedule: Schedule, words: _Words) -> str:
    """The plan's OnCalendar expressions (infra.plan's schedule builders) in words."""
    calendar = schedule.on_calendar
    if match := _HOURLY.match(calendar):
        return words("schedule_hourly", minute=match.group(1))
    if match := _DAILY.match(calendar):
        return words("schedule_daily", time=match.group(1))
    if match := _WEEKLY.match(calendar):
        return words("schedule_weekly", day=words.day(match.group(1)), time=match.group(2))
    if match := _MONTHLY.match(calendar):
        return words("schedule_monthly", day=int(match.group(1)), time=match.group(2))
    raise SlaDocError(f"no wording for the schedule {calendar!r}")


# --- the sections ------------------------------------------------------------


def _scope(plan: CarePlan, w: _Words) -> Section:
    intro = w(
        "scope_intro",
        client=plan.client.name,
        hosting=HOSTING[w.lang][plan.hosting.mode],
        timezone=plan.client.timezone,
    )
    return _section(w("scope"), intro, Items(tuple(f"{site.url} ({site.kind})" for site in plan.sites)))


def _services(plan: CarePlan, w: _Words) -> Section:
    included = [
        w("inc_hosting", hosting=HOSTING[w.lang][plan.hosting.mode]),
        w("inc_backup"),
        w("inc_updates"),
        w("inc_monitoring"),
        w("inc_support"),
    ]
    excluded = [w("exc_development"), w("exc_third_party"), w("exc_client")]
    (included if plan.sla.failover else excluded).append(w("inc_failover") if plan.sla.failover else w("exc_failover"))
    (included if plan.sla.restore_drill else excluded).append(
        w("inc_drill") if plan.sla.restore_drill else w("exc_drill")
    )
    return _section(w("services"), Items(tuple(included), w("included")), Items(tuple(excluded), w("excluded")))


def _support(plan: CarePlan, w: _Words) -> Section:
    support, bank = plan.sla.support, plan.sla.time_bank
    paragraphs = [w("support_hours", days=w.days(support.days), from_=support.from_, to=support.to)]
    if support.outage_line_until:
        paragraphs.append(w("outage_line", until=support.outage_line_until))
    paragraphs.append(w("time_bank", included=w.minutes(bank.included_minutes_per_month)))
    paragraphs.append(w("rollover", months=bank.rollover_months) if bank.rollover_months else w("rollover_none"))
    paragraphs.append(
        w("small_jobs", count=plan.sla.small_jobs_per_month, max=w.minutes(plan.sla.small_job_max_minutes))
    )
    paragraphs.append(w("incidents_free"))
    return _section(w("support"), *paragraphs)


def _severity_row(severity: SeverityPlan, w: _Words) -> tuple[str, str, str]:
    return (
        w.severity(severity.name),
        w.promise(severity.response_minutes, severity.response_business_days),
        w.promise(severity.fix_minutes, severity.fix_business_days),
    )


def _severities(plan: CarePlan, w: _Words) -> Section:
    paragraphs = [w("severities_intro")]
    if plan.sla.support.outage_line_until:
        paragraphs.append(w("severities_incident", until=plan.sla.support.outage_line_until))
    table = Table(
        ((w("col_severity"), w("col_response"), w("col_fix")), *(_severity_row(s, w) for s in plan.sla.severities))
    )
    return _section(w("severities"), *paragraphs, table)


def _uptime(plan: CarePlan, w: _Words) -> Section:
    sla = plan.sla
    return _section(
        w("uptime"),
        w("uptime_target", target=w.number(sla.uptime_target_percent)),
        w(
            "uptime_budget",
            month=w.minutes(sla.downtime_budget_minutes_per_month),
            year=w.hours(sla.downtime_budget_hours_per_year),
        ),
        w("uptime_measure", interval=w.seconds(plan.monitoring.interval_seconds)),
    )


def _maintenance(plan: CarePlan, w: _Words) -> Section:
    window = plan.monitoring.maintenance
    text = w(
        "maintenance_text",
        day=w.day(window.weekday),
        start=window.start,
        duration=w.minutes(window.duration_minutes),
        timezone=plan.client.timezone,
    )
    return _section(w("maintenance"), text, w("maintenance_why"))


def _backups(plan: CarePlan, w: _Words) -> Section:
    backup, storage = plan.backup, plan.storage
    keep = w.listing([f"{count} {KEEP[w.lang][kind]}" for kind, count in backup.keep.items() if count])
    return _section(
        w("backups"),
        w("backup_every", schedule=w.schedule(backup.schedule), rpo=w.minutes(backup.rpo_minutes)),
        w("backup_keep", keep=keep, days=storage.retention_days),
        w("backup_offsite", bucket=storage.bucket, noncurrent=storage.noncurrent_version_days),
        w("backup_locked", days=storage.object_lock_days) if storage.object_lock_days else w("backup_unlocked"),
        w("backup_check", schedule=w.schedule(backup.check), cycle=backup.check_read_data_subsets),
    )


def _updates(plan: CarePlan, w: _Words) -> Section:
    updates = plan.updates
    paragraphs = [w("updates_window"), w("updates_apt", apt=APT[w.lang][updates.apt_policy])]
    if any("wordpress" in site.providers for site in plan.sites):
        paragraphs.append(w("updates_wordpress", wordpress=WORDPRESS[w.lang][updates.wordpress_policy]))
    paragraphs.append(
        w("updates_rollback", slowdown=w.number(updates.probe_slowdown_limit))
        if updates.rollback
        else w("updates_no_rollback")
    )
    return _section(w("updates"), *paragraphs)


def _monitoring(plan: CarePlan, w: _Words) -> Section:
    monitoring = plan.monitoring
    return _section(
        w("monitoring"),
        w("monitoring_interval", interval=w.seconds(monitoring.interval_seconds)),
        w(
            "monitoring_alert",
            alert=w.seconds(monitoring.alert_within_seconds),
            channels=w.listing([CHANNEL[w.lang][c] for c in monitoring.channels]),
        ),
        w("monitoring_cert", days=monitoring.cert_expiry_days),
        Items(tuple(check.url for site in plan.sites for check in site.checks), w("monitoring_pages")),
    )


def _failover(plan: CarePlan, w: _Words) -> Section:
    failover = plan.sla.failover
    if failover is None:
        return _section(w("failover"), w("failover_none"))
    return _section(w("failover"), w("failover_text", rto=w.minutes(failover.rto_minutes), days=failover.max_days))


def _drills(plan: CarePlan, w: _Words) -> Section:
    drill = plan.sla.restore_drill
    if drill is None:
        return _section(w("drills"), w("drill_none"))
    return _section(w("drills"), w("drill_text", schedule=w.schedule(drill)))


def _credit_cell(credits: CreditPlan, percent: float, amount: float | None, w: _Words) -> str:
    if amount is None or credits.currency is None:
        return w("credit_percent", percent=w.number(percent))
    return w("credit_amount", percent=w.number(percent), amount=w.money(amount, credits.currency))


def _credits(plan: CarePlan, w: _Words) -> Section:
    credits = plan.sla.credits
    table = Table(
        (
            (w("col_uptime"), w("col_credit")),
            *(
                (f"{w.number(b.below_percent)} %", _credit_cell(credits, b.credit_percent, b.credit_amount, w))
                for b in credits.bands
            ),
        )
    )
    cap = _credit_cell(credits, credits.cap_percent, credits.cap_amount, w)
    return _section(
        w("credits"),
        w("credits_intro"),
        table,
        w("credits_lowest"),
        w("credits_cap", cap=cap),
        w(f"claim_{credits.claim}"),
    )


def build_document(plan: CarePlan, lang: str = "en") -> Document:
    w = _Words(lang)
    builders = (
        _scope,
        _services,
        _support,
        _severities,
        _uptime,
        _maintenance,
        _backups,
        _updates,
        _monitoring,
        _failover,
        _drills,
        _credits,
    )
    return Document(
        lang=lang,
        title=w("title"),
        subtitle=w("subtitle", client=plan.client.name, tier_title=plan.client.tier_title, tier=plan.client.tier),
        sections=tuple(build(plan, w) for build in builders),
    )
