"""Health probes: the plan's pages of a site, requested by the agent itself, out-of-band.

Each page is fetched from the web server on this host (`http://127.0.0.1<path>`
with the site's domain in the Host header), never through anything the site
runs: a broken site cannot vouch for itself. A redirect to the same domain is
followed on the loopback address too (https without certificate checks: it
is this host's own server; certificates are watched by the monitors).

A page is healthy when it answers with the expected status, its body contains
the keyword, and it answered within its time limit. Before an update the
agent measures each page's baseline (median of a few good answers); after it,
the limit is baseline x the plan's probe_slowdown_limit, never below
`probe_min_limit_seconds`. After a change the first probe waits
`probe_settle_seconds`: PHP-FPM's opcache keeps running the old code of a
changed file until it revalidates (every 2 s by default), and a probe of the
old code would prove nothing. Pages are probed in rounds, `probe_attempts`
rounds `probe_retry_seconds` apart, so caches and opcache can warm up after a
change; a page that never passes fails with the reason of its last attempt.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import statistics
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .config import AgentSettings, Site

MAX_BODY = 4 * 1024 * 1024
MAX_REDIRECTS = 5
BASELINE_SAMPLES = 3
USER_AGENT = "carestack-agent probe"


@dataclass(frozen=True)
class Page:
    site: str
    domain: str
    path: str
    keyword: str
    status: int
    port: int | None = None  # a scratch vhost's own port (a restore drill); None: the site's own server

    @property
    def label(self) -> str:
        return f"{self.domain}{self.path}"


def pages_of(site: Site, port: int | None = None) -> list[Page]:
    return [Page(site.id, site.domain, c.path, c.keyword, c.status, port) for c in site.checks]


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    seconds: float
    has_keyword: bool
    error: str | None = None
    first_byte_seconds: float | None = None  # until the final response's status line and headers arrived
    size: int = 0  # the final response's body bytes (at most MAX_BODY)

    def problem(self, page: Page) -> str | None:
        """Why this answer does not show a healthy page (time aside), or None."""
        if self.status is None:
            return f"no answer ({self.error})"
        if self.status != page.status:
            return f"HTTP {self.status}, expected {page.status}"
        if not self.has_keyword:
            return f"HTTP {self.status} without {page.keyword!r}"
        return None


class _LoopbackTLS(http.client.HTTPConnection):
    """TLS to this host's own server on 127.0.0.1, with the site's name as SNI (else: the default server)."""

    def __init__(self, domain: str, timeout: float) -> None:
        super().__init__("127.0.0.1", 443, timeout=timeout)
        self.domain = domain
        self.tls = ssl.create_default_context()
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE

    def connect(self) -> None:
        super().connect()
        self.sock = self.tls.wrap_socket(self.sock, server_hostname=self.domain)


def _connection(scheme: str, timeout: float, domain: str, port: int | None) -> http.client.HTTPConnection:
    if port is not None:  # a scratch vhost answers plain http on its own port (redirects stay on it)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if scheme == "https":
        return _LoopbackTLS(domain, timeout)
    return http.client.HTTPConnection("127.0.0.1", 80, timeout=timeout)


def fetch(page: Page, timeout: float) -> Answer:
    """One request for the page (following same-domain redirects); never raises."""
    started = time.monotonic()
    scheme, path = "http", page.path
    try:
        for _ in range(MAX_REDIRECTS + 1):
            conn = _connection(scheme, timeout, page.domain, page.port)
            try:
                headers = {"Host": page.domain, "User-Agent": USER_AGENT, "Connection": "close"}
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                first_byte = time.monotonic() - started
                body = response.read(MAX_BODY)
                location = response.getheader("Location")
            finally:
                conn.close()
            target = urllib.parse.urlsplit(location) if location else None
            if response.status in (301, 302, 303, 307, 308) and target is not None:
                same_site = target.hostname in (None, page.domain)
                if same_site and (target.scheme or scheme) in ("http", "https"):
                    scheme = target.scheme or scheme
                    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
                    continue
            text = body.decode("utf-8", "replace")
            return Answer(
                response.status, time.monotonic() - started, page.keyword in text, None, first_byte, len(body)
            )
        return Answer(None, time.monotonic() - started, False, f"more than {MAX_REDIRECTS} redirects")
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        reason = "timed out" if isinstance(e, (TimeoutError, socket.timeout)) else type(e).__name__
        detail = str(e).strip()
        return Answer(None, time.monotonic() - started, False, f"{reason}: {detail}" if detail else reason)


@dataclass
class Verdict:
    page: Page
    ok: bool
    reason: str
    seconds: float | None = None  # of the answer that decided
    limit: float | None = None
    attempts: int = 0

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {"page": self.page.label, "ok": self.ok, "attempts": self.attempts}
        if self.seconds is not None:
            out["ms"] = round(self.seconds * 1000)
        if self.limit is not None:
            out["limit_ms"] = round(self.limit * 1000)
        if not self.ok:
            out["reason"] = self.reason
        return out


@dataclass
class Baseline:
    """Each page's verdict before the update; `seconds` are the medians its limits derive from."""

    verdicts: list[Verdict]
    seconds: dict[Page, float] = field(default_factory=dict)

    def failing(self, site_id: str | None = None) -> list[Verdict]:
        return [v for v in self.verdicts if not v.ok and (site_id is None or v.page.site == site_id)]

    def healthy_pages(self) -> list[Page]:
        return [v.page for v in self.verdicts if v.ok]


def _rounds(
    pages: list[Page], settings: AgentSettings, limits: dict[Page, float] | None
) -> dict[Page, tuple[Answer, int, bool]]:
    """Probe in rounds until every page passed or the attempts are used up: page -> (last answer, attempts, ok)."""
    results: dict[Page, tuple[Answer, int, bool]] = {}
    pending = list(pages)
    for attempt in range(1, settings.probe_attempts + 1):
        if attempt > 1:
            time.sleep(settings.probe_retry_seconds)
        still = []
        for page in pending:
            answer = fetch(page, settings.probe_timeout_seconds)
            ok = answer.problem(page) is None and (limits is None or answer.seconds <= limits[page])
            results[page] = (answer, attempt, ok)
            if not ok:
                still.append(page)
        pending = still
        if not pending:
            break
    return results


def measure(pages: list[Page], settings: AgentSettings) -> Baseline:
    """Before an update: is every page healthy, and how fast is it normally."""
    baseline = Baseline([])
    for page, (answer, attempts, ok) in _rounds(pages, settings, None).items():
        if not ok:
            problem = answer.problem(page) or "failed"
            baseline.verdicts.append(Verdict(page, False, f"{page.label}: {problem}", answer.seconds, None, attempts))
            continue
        samples = [answer.seconds]
        for _ in range(BASELINE_SAMPLES - 1):
            more = fetch(page, settings.probe_timeout_seconds)
            if more.problem(page) is None:
                samples.append(more.seconds)
        baseline.seconds[page] = statistics.median(samples)
        baseline.verdicts.append(Verdict(page, True, "ok", baseline.seconds[page], None, attempts))
    return baseline


def limit_for(baseline_seconds: float, slowdown: float, settings: AgentSettings) -> float:
    return max(baseline_seconds * slowdown, settings.probe_min_limit_seconds)


def verify(pages: list[Page], baseline: Baseline, slowdown: float, settings: AgentSettings) -> list[Verdict]:
    """After an update (or a rollback): each page healthy and not slower than its limit.

    Waits `probe_settle_seconds` first: right after a change PHP may still run the old code from its opcache.
    """
    time.sleep(settings.probe_settle_seconds)
    limits = {page: limit_for(baseline.seconds[page], slowdown, settings) for page in pages}
    verdicts = []
    for page, (answer, attempts, ok) in _rounds(pages, settings, limits).items():
        limit = limits[page]
        if ok:
            verdicts.append(Verdict(page, True, "ok", answer.seconds, limit, attempts))
            continue
        problem = answer.problem(page)
        if problem is None:  # healthy but slow
            base = baseline.seconds[page]
            problem = f"took {answer.seconds:.2f}s, limit {limit:.2f}s (baseline {base:.2f}s x {slowdown:g})"
        verdicts.append(Verdict(page, False, f"{page.label}: {problem}", answer.seconds, limit, attempts))
    return verdicts


def summary(verdicts: list[Verdict]) -> str:
    bad = [v.reason for v in verdicts if not v.ok]
    if bad:
        return "; ".join(bad)
    slowest = max((v.seconds or 0.0 for v in verdicts), default=0.0)
    return f"{len(verdicts)} page(s) ok, slowest {slowest * 1000:.0f} ms"
