"""The words of the SLA document (infra.sla_doc), per language.

Every sentence is a template whose placeholders sla_doc fills from the plan;
no number is written here. A new language adds one entry to each table.
"""

from __future__ import annotations

DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
}
SEVERITY = {
    "nl": {"critical": "kritiek", "high": "hoog", "medium": "gemiddeld", "low": "laag", "normal": "normaal"},
}
CHANNEL = {
    "en": {"email": "e-mail", "sms": "text message (SMS)", "webhook": "webhook"},
    "nl": {"email": "e-mail", "sms": "sms", "webhook": "webhook"},
}
KEEP = {
    "en": {"hourly": "hourly", "daily": "daily", "weekly": "weekly", "monthly": "monthly"},
    "nl": {"hourly": "uurlijkse", "daily": "dagelijkse", "weekly": "wekelijkse", "monthly": "maandelijkse"},
}
APT = {
    "en": {"security": "security updates only", "all": "all updates", "none": "none"},
    "nl": {"security": "alleen beveiligingsupdates", "all": "alle updates", "none": "geen"},
}
WORDPRESS = {
    "en": {"minor": "minor and security releases", "all": "all releases", "none": "none"},
    "nl": {"minor": "kleine en beveiligingsreleases", "all": "alle releases", "none": "geen"},
}
HOSTING = {
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
