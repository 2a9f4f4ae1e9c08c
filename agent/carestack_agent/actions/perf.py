"""perf SITE: time the site's checked pages from the server, keep the history, judge the trend.

Each run (the plan's sampling schedule, several times a day) requests every
checked page `requests_per_page` times from this host's own web server (the
probes' loopback requests: no network in the figures), one page after the
other so no page is hit twice in a row, and appends the timings to the local
history (`perf.history`). It then judges the history (`perf.verdict`): a page
whose last 7 days are slower than the weeks before by the plan's limit and
floor fails the job, so the PERF push monitor goes down naming the page and
both medians. A run that could time no page at all fails too (nothing
measured is never reported as stable); pages that gave no usable answer are
named in the message but are the page monitors' business.

Sampling and verdict share one timer: the verdict over a rolling week is cheap,
a stopped sampler shows in Kuma within one sampling period instead of a week,
and a regression is named as soon as the week's median crosses the limit.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from .. import exitcodes
from ..config import Config
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..perf import history
from ..perf.history import Sample
from ..perf.verdict import PageTrend, Verdict, judge
from ..probe import Page, fetch, pages_of
from ..proc import Deadline

log = logging.getLogger("carestack_agent.perf")


def take_samples(pages: list[Page], requests: int, timeout: float, deadline: Deadline) -> list[Sample]:
    """`requests` rounds over the pages; a request without a healthy answer is kept with its error.

    Each request gets at most what is left of the job's deadline; past it the job fails."""
    samples = []
    for _ in range(requests):
        for page in pages:
            if deadline.expired():
                raise JobFailed(f"the job's deadline of {deadline.seconds:.0f} s passed while timing the pages",
                                exitcodes.TIMEOUT)  # fmt: skip
            at = datetime.now(UTC)
            answer = fetch(page, min(timeout, deadline.remaining()))
            problem = answer.problem(page)
            samples.append(
                Sample(
                    at=at,
                    path=page.path,
                    status=answer.status,
                    first_byte_ms=round(answer.first_byte_seconds * 1000, 1)
                    if answer.first_byte_seconds is not None
                    else None,
                    total_ms=round(answer.seconds * 1000, 1) if problem is None else None,
                    size=answer.size,
                    error=problem,
                )
            )
    return samples


def _trend_text(domain: str, trend: PageTrend, weeks: int) -> str:
    assert trend.week_ms is not None and trend.baseline_ms is not None
    return (
        f"{domain}{trend.path} got slower: median {trend.week_ms:.0f} ms over the last 7 days vs "
        f"{trend.baseline_ms:.0f} ms over the {weeks} weeks before "
        f"(+{trend.change_ms:.0f} ms, +{trend.change_percent:.0f} %)"
    )


def describe(domain: str, verdict: Verdict) -> str:
    """The verdict in one line (the monitor's message)."""
    if verdict.building:
        return f"baseline building: {verdict.weeks_of_baseline} of {verdict.baseline_weeks} weeks"
    bad = verdict.regressions
    if bad:
        return "; ".join(_trend_text(domain, t, verdict.baseline_weeks) for t in bad)
    timed = [t for t in verdict.pages if t.week_ms is not None]
    if not timed:
        return "no page timed in the last 7 days"
    slowest = max(timed, key=lambda t: t.week_ms or 0.0)
    base = f" ({slowest.baseline_ms:.0f} ms before)" if slowest.baseline_ms is not None else ""
    return f"{len(timed)} page(s) stable, slowest {domain}{slowest.path} {slowest.week_ms:.0f} ms{base}"


def do_perf(ctx: Context) -> str:
    settings = ctx.site.perf
    pages = pages_of(ctx.site)
    if not pages:
        raise JobFailed("the site has no checked pages to time")
    path = history.history_file(ctx.config.agent.state_dir, ctx.site.id)
    loaded = history.load(path)
    taken = take_samples(pages, settings.requests_per_page, ctx.config.agent.probe_timeout_seconds, ctx.deadline)
    now = datetime.now(UTC)
    kept = history.pruned([*loaded.samples, *taken], now, settings.keep_days)
    history.save(path, kept)
    failed = sorted({f"{ctx.site.domain}{s.path}: {s.error}" for s in taken if not s.ok})
    verdict = judge(
        kept,
        [p.path for p in pages],
        now,
        limit_percent=settings.limit_percent,
        floor_ms=settings.floor_ms,
        baseline_weeks=settings.baseline_weeks,
    )
    ctx.figures.update(
        samples=[s.to_json() for s in taken],
        pages=[t.to_json() for t in verdict.pages],
        baseline_weeks_reached=verdict.weeks_of_baseline,
        history_samples=len(kept),
    )
    text = describe(ctx.site.domain, verdict)
    if loaded.unreadable:
        text += f"; {loaded.unreadable} unreadable line(s) of {path} dropped"
    if failed:
        text += f"; no usable answer: {'; '.join(failed)}"
    if not any(s.ok for s in taken):
        raise JobFailed(f"no page could be timed: {'; '.join(failed)}")
    if verdict.regressions:
        raise JobFailed(text)
    return text


def perf(config: Config, site_id: str, *, wait: bool = False, settle: Settle | None = None) -> JobResult:
    timeout = config.site(site_id).jobs.perf_timeout_seconds
    return run_job(config, site_id, "perf", do_perf, timeout=timeout, wait=wait, settle=settle)
