"""Helpers for the monitor tests: client plans made from the example stacks, Kuma snapshots, a local site."""

from __future__ import annotations

import contextlib
import copy
import datetime
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from infra.kuma_client import KumaSession
from infra.monitors import KEY_TAG, MIN_INTERVAL_SECONDS, is_owned
from infra.plan import CarePlan, MonitoringPlan, build_plan
from infra.spec import STACKS_DIR, ClientSpec, carestack_config, parse_stack

# Fields Kuma recomputes on every list (maintenance status), not state a sync sets.
VOLATILE = {"maintenance"}
# Where the tests' sites "are" unless a test serves one: a loopback port nobody listens on,
# so Kuma's checks never leave the machine (a public URL would mean DNS and the internet).
NOWHERE = "http://127.0.0.1:9"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_plan(stack: str, client_id: str, change: Callable[[dict[str, Any]], None] | None = None) -> CarePlan:
    """The plan of an example stack under another client id (each test owns its client in the shared Kuma).

    `change` edits the stack's `carestack:` settings first (tier, sites, overrides), as a client's edit would.
    """
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    config = copy.deepcopy(carestack_config(str(path), yaml.safe_load(path.read_text())))
    config["client"]["id"] = client_id
    if change:
        change(config)
    spec = parse_stack(f"{path} as {client_id}", config)
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def fast_monitoring(monitoring: MonitoringPlan, timeout_seconds: int = 5) -> MonitoringPlan:
    """A test-only variant: Kuma's shortest interval, no retries, and the update window three days
    away (a check inside the window would count as maintenance, not as down). The catalog is untouched."""
    in_three_days = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    weekday = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[in_three_days.weekday()]
    return replace(
        monitoring,
        interval_seconds=MIN_INTERVAL_SECONDS,
        retry_interval_seconds=MIN_INTERVAL_SECONDS,
        retries=0,
        timeout_seconds=timeout_seconds,
        maintenance=replace(monitoring.maintenance, weekday=weekday),
    )


def add_by_hand(session: KumaSession, **fields: Any) -> int:
    """A monitor someone made in Kuma's own UI, not through carestack (raw `add`, as the UI sends it); its id."""
    record: dict[str, Any] = {
        "method": "GET",
        "maxredirects": 10,
        "accepted_statuscodes": ["200-299"],
        "notificationIDList": {},
        "retryInterval": 60,
        "maxretries": 0,
        "resendInterval": 0,
        "timeout": 48,
        "upsideDown": False,
        "ignoreTls": False,
        "expiryNotification": False,
        "invertKeyword": False,
        **fields,
    }
    if session.version.conditions:
        record["conditions"] = []
    answer = session.api.sio.call("add", record, timeout=60)
    assert answer["ok"], answer
    return int(answer["monitorID"])


def loopback(plan: CarePlan) -> dict[str, str]:
    """Site addresses for every site of the plan, all on loopback."""
    return {site.id: NOWHERE for site in plan.sites}


def owned(session: KumaSession, client_id: str) -> dict[str, dict[str, Any]]:
    """The client's monitors in Kuma by key."""
    found: dict[str, dict[str, Any]] = {}
    for monitor in session.monitors():
        if is_owned(monitor, client_id):
            key = next(t["value"] for t in monitor["tags"] if t["name"] == KEY_TAG)
            assert key not in found, f"two monitors for {key}"
            found[key] = monitor
    return found


def snapshot(session: KumaSession) -> dict[int, dict[str, Any]]:
    """Every monitor as Kuma reports it, to compare before and after."""
    return {int(m["id"]): {k: v for k, v in m.items() if k not in VOLATILE} for m in session.monitors()}


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class LocalSite:
    """A real HTTP site on loopback serving pages that contain their keyword; stop/start keeps the port."""

    def __init__(self, pages: dict[str, str], port: int | None = None) -> None:
        self.pages = pages
        self.port = port or free_port()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.hosts: list[str] = []

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hosts.append(self.headers.get("Host", ""))
                text = site.pages.get(self.path)
                body = f"<html><body>{text}</body></html>".encode() if text else b"not found"
                self.send_response(200 if text else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None


@contextlib.contextmanager
def local_site(pages: dict[str, str]) -> Iterator[LocalSite]:
    site = LocalSite(pages)
    site.start()
    try:
        yield site
    finally:
        site.stop()


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
