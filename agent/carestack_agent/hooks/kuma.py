"""Uptime Kuma push heartbeats: GET {push_base_url}/{token}?status=up|down&msg=...&ping=ms.

Messages go out in plain words (wording.plain): they reach people.
The token is a secret (it is the URL path), so the URL is never logged, never
journaled and never put in an exception message: failures are reported with
the job name only. A failed push never fails the job.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..secrets import SecretError, read_env_file
from ..wording import plain

log = logging.getLogger("carestack_agent.kuma")

MSG_LIMIT = 200


def one_line(text: str, limit: int = MSG_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def push(
    base_url: str | None,
    tokens_file: Path | None,
    job: str,
    *,
    up: bool,
    msg: str,
    ping_ms: int | None = None,
    timeout: float = 10.0,
) -> bool:
    """Send one heartbeat for `job` (BACKUP, PRUNE, CHECK, UPDATE). True if Kuma accepted it."""
    if not base_url or tokens_file is None:
        return False
    key = job.upper()
    try:
        token = read_env_file(tokens_file).get(key, "")
    except SecretError as e:
        log.warning("push for %s skipped: %s", job, e)
        return False
    if not token:
        return False  # a job without a token pushes nothing
    query = {"status": "up" if up else "down", "msg": one_line(plain(msg))}  # people read it: no raw exits
    if ping_ms is not None:
        query["ping"] = str(max(0, int(ping_ms)))
    url = f"{base_url.rstrip('/')}/{urllib.parse.quote(token, safe='')}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as r:
            body = r.read(4096)
            if r.status != 200:
                log.warning("push for %s: Kuma answered HTTP %d", job, r.status)
                return False
            if b'"ok":false' in body.replace(b" ", b""):
                log.warning("push for %s: Kuma refused the heartbeat (unknown or inactive push monitor)", job)
                return False
            return True
    except urllib.error.HTTPError as e:
        log.warning("push for %s: Kuma answered HTTP %d", job, e.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or type(e).__name__
        log.warning("push for %s failed: %s", job, reason if isinstance(reason, str) else type(reason).__name__)
    return False
