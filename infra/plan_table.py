"""Render a CarePlan as the readable table `carestack plan` prints."""

from __future__ import annotations

from infra import agent_config
from infra.plan import AlertRoute, CarePlan, Schedule
from infra.units import format_duration


def _when(schedule: Schedule) -> str:
    return f"{schedule.on_calendar} (+ up to {format_duration(schedule.randomized_delay_seconds)})"


def _route(route: AlertRoute) -> str:
    told = []
    if route.client_channels:
        told.append(f"the client's contacts by {', '.join(route.client_channels)} (plain words)")
    if route.agency:
        told.append("the agency's on-call")
    return " and ".join(told) + (" only" if len(told) == 1 else "") if told else "nobody"


def _agent_retention(plan: CarePlan) -> str:
    """The retention lines agent.toml carries, rendered by the writer that writes them."""
    lines = agent_config.dumps(agent_config.retention_table(plan)).splitlines()
    return ", ".join(lines)


def _rows(plan: CarePlan) -> list[tuple[str, str]]:
    b, u, m, s, st = plan.backup, plan.updates, plan.monitoring, plan.sla, plan.storage
    keep = ", ".join(f"the last {n}" if k == "last" else f"{n} {k}" for k, n in b.keep.items() if n)
    rows = [
        ("client", f"{plan.client.name} ({plan.client.id})"),
        ("tier", f"{plan.client.tier} - {plan.client.tier_title}"),
        ("time zone", plan.client.timezone),
        (
            "hosting",
            f"{plan.hosting.mode} on {plan.hosting.server}"
            + (f" ({plan.hosting.instance_type}, {plan.hosting.volume_gb} GB)" if plan.hosting.instance_type else ""),
        ),
        ("ssh from", plan.hosting.admin_cidr),
        ("backups", _when(b.schedule)),
        ("RPO", f"{b.rpo_minutes} min of data at most"),
        ("keep", f"{keep}  [agent.toml: {_agent_retention(plan)}]"),
        ("prune", _when(b.prune)),
        ("integrity check", f"{_when(b.check)}, all data read every {b.check_read_data_subsets} checks"),
        ("job timeout", format_duration(b.timeout_seconds)),
        ("repository stall", f"a job whose repository makes no progress for {format_duration(b.stall_seconds)} fails"),
        (
            "security scan",
            f"{_when(plan.security.scan)}, timeout {format_duration(plan.security.scan_timeout_seconds)}",
        ),
        (
            "performance trend",
            f"pages timed {_when(plan.performance.sample)}, {plan.performance.requests_per_page} request(s) each, "
            f"timeout {format_duration(plan.performance.timeout_seconds)}; a page slower by "
            f"{plan.performance.limit_percent:g} % and {plan.performance.floor_ms} ms (last week's median vs the "
            f"{plan.performance.baseline_weeks} weeks before) alerts; samples kept {plan.performance.keep_days} d",
        ),
        (
            "bucket",
            f"{st.bucket}: versioned, old versions kept {st.noncurrent_version_days} d, "
            f"object lock {st.object_lock_days} d"
            if st.object_lock_days
            else f"{st.bucket}: versioned, old versions kept {st.noncurrent_version_days} d, no object lock",
        ),
        (
            "updates",
            f"{_when(u.schedule)}, window {u.window.duration_minutes} min; apt {u.apt_policy}, "
            f"WordPress {u.wordpress_policy}, rollback {'on' if u.rollback else 'off'}",
        ),
        (
            "site checks",
            f"every {format_duration(m.interval_seconds)}, timeout {m.timeout_seconds} s, "
            f"{m.retries} retries, alert within {format_duration(m.alert_within_seconds)}",
        ),
        ("alerts: site down/up", _route(plan.alerts.site_checks)),
        ("alerts: job heartbeats", _route(plan.alerts.job_heartbeats)),
        (
            "uptime target",
            f"{s.uptime_target_percent} % = {s.downtime_budget_minutes_per_month} min/month, "
            f"{s.downtime_budget_hours_per_year} h/year of downtime",
        ),
        (
            "support",
            f"{'/'.join(s.support.days)} {s.support.from_}-{s.support.to}"
            + (f", outage line until {s.support.outage_line_until}" if s.support.outage_line_until else ""),
        ),
    ]
    rows += [(f"severity {sev.name}", f"response {sev.response}, fix {sev.fix}") for sev in s.severities]
    rows.append(("small jobs", f"{s.small_jobs_per_month} a month, up to {s.small_job_max_minutes} min each"))
    bank = s.time_bank
    rows.append(
        (
            "time bank",
            f"{format_duration(bank.included_minutes_per_month * 60)} of support a month, "
            + (f"unused time kept {bank.rollover_months} month(s)" if bank.rollover_months else "no rollover"),
        )
    )
    rows.append(("fee", f"{s.fee.monthly:.2f} {s.fee.currency} a month" if s.fee else "not given"))
    for band in s.credits.bands:
        amount = f" = {band.credit_amount:.2f} {s.credits.currency}" if band.credit_amount is not None else ""
        rows.append((f"credit below {band.below_percent} %", f"{band.credit_percent} % of the monthly fee{amount}"))
    cap = f" = {s.credits.cap_amount:.2f} {s.credits.currency}" if s.credits.cap_amount is not None else ""
    claim = {"next_invoice": "deducted from the next invoice", "on_request": "on request"}[s.credits.claim]
    rows.append(("credit cap", f"{s.credits.cap_percent} % of the monthly fee{cap}; credits {claim}"))
    rows.append(
        (
            "failover",
            f"standby restore within {s.failover.rto_minutes} min, up to {s.failover.max_days} days "
            f"(warned after {s.failover.warn_after_days:g}); traffic switch {s.failover.traffic}, "
            f"DNS TTL {s.failover.dns_ttl_seconds} s"
            if s.failover
            else "none",
        )
    )
    drill = (
        f"{_when(s.restore_drill)} on the standby: each site's latest complete snapshot restored into a scratch "
        f"site and its pages checked; RTO (deadline {s.failover.rto_minutes} min) and RPO recorded"
        if s.restore_drill and s.failover
        else "none"
    )
    rows.append(("restore drill", drill))
    for site in plan.sites:
        pages = ", ".join(f"{c.path} ~ {c.keyword!r}" for c in site.checks)
        rows.append(
            (f"site {site.id}", f"{site.url} [{site.kind}] pages: {pages}; updates by {', '.join(site.providers)}")
        )
        for job in site.jobs:
            rows.append(
                (
                    f"  job {job.name}",
                    f"push expected every {format_duration(job.push_interval_seconds)} "
                    f"(grace {format_duration(job.push_grace_seconds)})"
                    + (" on the standby" if job.on_standby else ""),
                )
            )
    return rows


def render(plan: CarePlan) -> str:
    rows = _rows(plan)
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows)
