"""The client-facing SLA text, built from a CarePlan in English or Dutch.

`build_document` turns the plan into sections (paragraphs, bullet items,
tables); `infra.sla_doc_render` writes them as Markdown or HTML. Every number
in the text is read from the plan; this module only words it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra.plan import CarePlan, Schedule, SeverityPlan
from infra.sla_terms import CreditPlan
from infra.units import WEEKDAYS

LANGUAGES = ("en", "nl")


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

_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
_SEVERITY = {
    "nl": {"critical": "kritiek", "high": "hoog", "medium": "gemiddeld", "low": "laag", "normal": "normaal"},
}
_CHANNEL = {
    "en": {"email": "e-mail", "sms": "text message (SMS)", "webhook": "webhook"},
    "nl": {"email": "e-mail", "sms": "sms", "webhook": "webhook"},
}
_KEEP = {
    "en": {"hourly": "hourly", "daily": "daily", "weekly": "weekly", "monthly": "monthly"},
    "nl": {"hourly": "uurlijkse", "daily": "dagelijkse", "weekly": "wekelijkse", "monthly": "maandelijkse"},
}
_APT = {
    "en": {"security": "security updates only", "all": "all updates", "none": "none"},
    "nl": {"security": "alleen beveiligingsupdates", "all": "alle updates", "none": "geen"},
}
_WORDPRESS = {
    "en": {"minor": "minor and security releases", "all": "all releases", "none": "none"},
    "nl": {"minor": "kleine en beveiligingsreleases", "all": "alle releases", "none": "geen"},
}
_HOSTING = {
    "en": {"shared": "on the agency's shared servers", "dedicated": "on a dedicated server"},
    "nl": {"shared": "op de gedeelde servers van het bureau", "dedicated": "op een eigen (dedicated) server"},
}

# Every sentence of the document, by language; placeholders are filled from the plan.
TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Service level agreement",
        "subtitle": "{client} - {tier_title} ({tier})",
        "scope": "Scope",
        "scope_intro": (
            "This agreement describes the care {client} receives for the websites below, "
            "hosted {hosting}. All times are in the time zone {timezone}."
        ),
        "services": "Services",
        "included": "Included:",
        "excluded": "Not included:",
        "inc_hosting": "Hosting {hosting}, with the server software kept up to date.",
        "inc_backup": "Backups off the server, restored on request.",
        "inc_updates": "Updates in a weekly maintenance window, with an automatic rollback when a page breaks.",
        "inc_monitoring": "Monitoring of every listed page around the clock, with alerts.",
        "inc_support": "Support in the support hours below, with a time bank for small changes.",
        "inc_failover": "Failover: the sites restored onto a standby server when their server fails.",
        "inc_drill": "Regular restore drills that prove the backups can be restored.",
        "exc_development": ("New features, design and content work beyond the time bank (quoted separately)."),
        "exc_third_party": (
            "Outages of third parties outside the agency's control: domain registrars and DNS, "
            "payment providers, e-mail services, the client's own network."
        ),
        "exc_client": "Problems caused by changes the client or other parties make to the sites.",
        "exc_failover": "Failover to a standby server (not part of this tier).",
        "exc_drill": "Scheduled restore drills (not part of this tier).",
        "support": "Support hours and time bank",
        "support_hours": "Support is available on {days} from {from_} to {to}.",
        "outage_line": "Outages (incidents) can be reported on the outage line until {until} on support days.",
        "time_bank": "The time bank includes {included} of support work each month.",
        "rollover_none": "Time not used in a month expires at the end of that month.",
        "rollover": (
            "Time not used in a month stays available for {months} more month(s); the oldest time is used first."
        ),
        "small_jobs": (
            "Up to {count} small job(s) a month of at most {max} each are included without using the "
            "time bank; longer or further small jobs and requests use it."
        ),
        "incidents_free": "Work on incidents never uses the time bank.",
        "severities": "Severities, response and fix times",
        "severities_intro": (
            "Response and fix times count support hours from the moment a problem is reported; "
            "a time in business days ends when support closes on that business day."
        ),
        "severities_incident": "For incidents the clock runs until the outage line closes ({until}).",
        "col_severity": "Severity",
        "col_response": "Response within",
        "col_fix": "Fix within",
        "uptime": "Availability",
        "uptime_target": "The uptime target is {target} % of each calendar month.",
        "uptime_budget": "This allows {month} of downtime per month and {year} per year.",
        "uptime_measure": (
            "Availability is measured by checking every listed page every {interval}; "
            "downtime inside the maintenance window does not count."
        ),
        "maintenance": "Maintenance window",
        "maintenance_text": "Every {day} from {start}, for {duration} ({timezone}).",
        "maintenance_why": "Updates run in this window; a short interruption is possible.",
        "backups": "Backups",
        "backup_every": "Backups run {schedule}; at most {rpo} of changes can be lost.",
        "backup_keep": "Kept: {keep}; the oldest backup reaches back about {days} days.",
        "backup_offsite": (
            "Backups are stored encrypted off the server, in a storage bucket of the client's own "
            "({bucket}) with versioning; replaced versions are kept {noncurrent} days."
        ),
        "backup_locked": (
            "Backups are immutable for {days} days: nobody, not even the agency, can delete or alter them."
        ),
        "backup_unlocked": "Backups are not write-protected (immutable storage is not part of this tier).",
        "backup_check": "Their integrity is checked {schedule}; all stored data is read every {cycle} checks.",
        "updates": "Updates",
        "updates_window": "Updates are applied in the maintenance window.",
        "updates_apt": "Operating system: {apt}.",
        "updates_wordpress": "WordPress core, plugins and themes: {wordpress}.",
        "updates_rollback": (
            "Before each update a backup is made; when a checked page breaks or becomes more than "
            "{slowdown} times slower, the update is rolled back automatically."
        ),
        "updates_no_rollback": "Updates are not rolled back automatically.",
        "monitoring": "Monitoring",
        "monitoring_interval": "Every listed page is checked every {interval}.",
        "monitoring_alert": "When a site goes down the contacts are alerted within {alert} by {channels}.",
        "monitoring_cert": "A certificate that expires within {days} days raises a warning.",
        "monitoring_pages": "Checked pages:",
        "failover": "Failover",
        "failover_text": (
            "When a server fails, its sites are restored onto a standby server within {rto} "
            "and can run there for up to {days} days."
        ),
        "failover_none": "Failover to a standby server is not part of this tier.",
        "drills": "Restore drills",
        "drill_text": "A restore drill runs {schedule}: the sites are restored and their pages checked.",
        "drill_none": "Scheduled restore drills are not part of this tier.",
        "credits": "Service credits",
        "credits_intro": "When availability in a month falls below a threshold, the client receives a credit:",
        "col_uptime": "Availability below",
        "col_credit": "Credit",
        "credit_percent": "{percent} % of the monthly fee",
        "credit_amount": "{percent} % of the monthly fee ({amount})",
        "credits_cap": "Credits are capped at {cap} per month.",
        "claim_next_invoice": "Credits are deducted from the next invoice.",
        "claim_on_request": "Credits are granted on request, against the next invoice.",
        "credits_lowest": "The lowest threshold reached applies.",
        "schedule_hourly": "every hour at :{minute}",
        "schedule_daily": "every day at {time}",
        "schedule_weekly": "every {day} at {time}",
        "schedule_monthly": "every month on day {day} at {time}",
        "next_business_day": "next business day",
        "business_days": "{n} business days",
        "minutes": "{n} minutes",
        "minute": "1 minute",
        "hours": "{n} hours",
        "hour": "1 hour",
        "seconds": "{n} seconds",
        "days": "{n} days",
        "and": "and",
    },
    "nl": {
        "title": "Service level agreement",
        "subtitle": "{client} - {tier_title} ({tier})",
        "scope": "Reikwijdte",
        "scope_intro": (
            "Deze overeenkomst beschrijft het onderhoud dat {client} krijgt voor de onderstaande websites, "
            "gehost {hosting}. Alle tijden gelden in de tijdzone {timezone}."
        ),
        "services": "Diensten",
        "included": "Inbegrepen:",
        "excluded": "Niet inbegrepen:",
        "inc_hosting": "Hosting {hosting}, met actueel gehouden serversoftware.",
        "inc_backup": "Back-ups buiten de server, op verzoek teruggezet.",
        "inc_updates": "Updates in een wekelijks onderhoudsvenster, automatisch teruggedraaid als een pagina breekt.",
        "inc_monitoring": "Dag en nacht bewaking van alle opgegeven pagina's, met meldingen.",
        "inc_support": "Ondersteuning binnen de supporttijden hieronder, met een urenbank voor kleine wijzigingen.",
        "inc_failover": "Uitwijk: de sites worden op een reserveserver teruggezet als hun server uitvalt.",
        "inc_drill": "Regelmatige hersteloefeningen die bewijzen dat de back-ups terug te zetten zijn.",
        "exc_development": "Nieuwe functies, ontwerp en contentwerk buiten de urenbank (apart geoffreerd).",
        "exc_third_party": (
            "Storingen bij derden buiten de invloed van het bureau: domeinregistrars en DNS, "
            "betaalproviders, e-maildiensten, het eigen netwerk van de klant."
        ),
        "exc_client": "Problemen door wijzigingen die de klant of anderen aan de sites aanbrengen.",
        "exc_failover": "Uitwijk naar een reserveserver (geen onderdeel van dit pakket).",
        "exc_drill": "Geplande hersteloefeningen (geen onderdeel van dit pakket).",
        "support": "Supporttijden en urenbank",
        "support_hours": "Ondersteuning is beschikbaar op {days} van {from_} tot {to}.",
        "outage_line": "Storingen kunnen op supportdagen tot {until} bij de storingslijn worden gemeld.",
        "time_bank": "De urenbank bevat elke maand {included} aan ondersteuning.",
        "rollover_none": "Tijd die in een maand niet gebruikt is, vervalt aan het einde van die maand.",
        "rollover": (
            "Tijd die in een maand niet gebruikt is, blijft nog {months} maand(en) beschikbaar; "
            "de oudste tijd wordt eerst gebruikt."
        ),
        "small_jobs": (
            "Tot {count} kleine klus(sen) per maand van elk maximaal {max} zijn inbegrepen zonder de "
            "urenbank te gebruiken; langere of verdere kleine klussen en verzoeken gaan van de urenbank af."
        ),
        "incidents_free": "Werk aan storingen gaat nooit van de urenbank af.",
        "severities": "Prioriteiten, reactie- en oplostijden",
        "severities_intro": (
            "Reactie- en oplostijden tellen supporturen vanaf het moment van melden; een tijd in "
            "werkdagen eindigt als de ondersteuning op die werkdag sluit."
        ),
        "severities_incident": "Bij storingen loopt de klok door tot de storingslijn sluit ({until}).",
        "col_severity": "Prioriteit",
        "col_response": "Reactie binnen",
        "col_fix": "Opgelost binnen",
        "uptime": "Beschikbaarheid",
        "uptime_target": "De beschikbaarheidsnorm is {target} % van elke kalendermaand.",
        "uptime_budget": "Dat staat {month} onbeschikbaarheid per maand en {year} per jaar toe.",
        "uptime_measure": (
            "Beschikbaarheid wordt gemeten door elke opgegeven pagina elke {interval} te controleren; "
            "onbeschikbaarheid binnen het onderhoudsvenster telt niet mee."
        ),
        "maintenance": "Onderhoudsvenster",
        "maintenance_text": "Elke {day} vanaf {start}, gedurende {duration} ({timezone}).",
        "maintenance_why": "In dit venster worden updates uitgevoerd; een korte onderbreking is mogelijk.",
        "backups": "Back-ups",
        "backup_every": "Back-ups worden {schedule} gemaakt; er kan hoogstens {rpo} aan wijzigingen verloren gaan.",
        "backup_keep": "Bewaard: {keep}; de oudste back-up gaat ongeveer {days} dagen terug.",
        "backup_offsite": (
            "Back-ups staan versleuteld buiten de server, in een eigen opslagbucket van de klant ({bucket}), "
            "met versiebeheer; vervangen versies blijven {noncurrent} dagen bewaard."
        ),
        "backup_locked": (
            "Back-ups zijn {days} dagen onveranderbaar: niemand, ook het bureau niet, kan ze wissen of wijzigen."
        ),
        "backup_unlocked": "Back-ups zijn niet schrijfbeveiligd (onveranderbare opslag hoort niet bij dit pakket).",
        "backup_check": (
            "Hun integriteit wordt {schedule} gecontroleerd; alle opgeslagen data wordt elke {cycle} controles gelezen."
        ),
        "updates": "Updates",
        "updates_window": "Updates worden in het onderhoudsvenster uitgevoerd.",
        "updates_apt": "Besturingssysteem: {apt}.",
        "updates_wordpress": "WordPress-kern, plugins en thema's: {wordpress}.",
        "updates_rollback": (
            "Voor elke update wordt een back-up gemaakt; breekt een gecontroleerde pagina of wordt die meer dan "
            "{slowdown} keer zo traag, dan wordt de update automatisch teruggedraaid."
        ),
        "updates_no_rollback": "Updates worden niet automatisch teruggedraaid.",
        "monitoring": "Bewaking",
        "monitoring_interval": "Elke opgegeven pagina wordt elke {interval} gecontroleerd.",
        "monitoring_alert": "Valt een site uit, dan krijgen de contactpersonen binnen {alert} bericht per {channels}.",
        "monitoring_cert": "Een certificaat dat binnen {days} dagen verloopt, geeft een waarschuwing.",
        "monitoring_pages": "Gecontroleerde pagina's:",
        "failover": "Uitwijk",
        "failover_text": (
            "Valt een server uit, dan worden de sites binnen {rto} op een reserveserver teruggezet "
            "en kunnen ze daar tot {days} dagen draaien."
        ),
        "failover_none": "Uitwijk naar een reserveserver hoort niet bij dit pakket.",
        "drills": "Hersteloefeningen",
        "drill_text": (
            "Een hersteloefening vindt {schedule} plaats: de sites worden teruggezet en hun pagina's gecontroleerd."
        ),
        "drill_none": "Geplande hersteloefeningen horen niet bij dit pakket.",
        "credits": "Servicecredits",
        "credits_intro": "Valt de beschikbaarheid in een maand onder een drempel, dan krijgt de klant een creditering:",
        "col_uptime": "Beschikbaarheid onder",
        "col_credit": "Creditering",
        "credit_percent": "{percent} % van het maandbedrag",
        "credit_amount": "{percent} % van het maandbedrag ({amount})",
        "credits_cap": "Crediteringen bedragen per maand hoogstens {cap}.",
        "claim_next_invoice": "Crediteringen worden op de volgende factuur verrekend.",
        "claim_on_request": "Crediteringen worden op verzoek op de volgende factuur verrekend.",
        "credits_lowest": "De laagste bereikte drempel geldt.",
        "schedule_hourly": "elk uur om :{minute}",
        "schedule_daily": "elke dag om {time}",
        "schedule_weekly": "elke {day} om {time}",
        "schedule_monthly": "elke maand op dag {day} om {time}",
        "next_business_day": "volgende werkdag",
        "business_days": "{n} werkdagen",
        "minutes": "{n} minuten",
        "minute": "1 minuut",
        "hours": "{n} uur",
        "hour": "1 uur",
        "seconds": "{n} seconden",
        "days": "{n} dagen",
        "and": "en",
    },
}


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
        return _DAYS[self.lang][WEEKDAYS.index(weekday)]

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
        return _SEVERITY.get(self.lang, {}).get(name, name)

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
        hosting=_HOSTING[w.lang][plan.hosting.mode],
        timezone=plan.client.timezone,
    )
    return _section(w("scope"), intro, Items(tuple(f"{site.url} ({site.kind})" for site in plan.sites)))


def _services(plan: CarePlan, w: _Words) -> Section:
    included = [
        w("inc_hosting", hosting=_HOSTING[w.lang][plan.hosting.mode]),
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
    keep = w.listing([f"{count} {_KEEP[w.lang][kind]}" for kind, count in backup.keep.items() if count])
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
    paragraphs = [w("updates_window"), w("updates_apt", apt=_APT[w.lang][updates.apt_policy])]
    if any("wordpress" in site.providers for site in plan.sites):
        paragraphs.append(w("updates_wordpress", wordpress=_WORDPRESS[w.lang][updates.wordpress_policy]))
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
            channels=w.listing([_CHANNEL[w.lang][c] for c in monitoring.channels]),
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
