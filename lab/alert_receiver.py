"""The lab's alert receiver: the webhook that stands in for the agency's e-mail and SMS gateways.

In the lab every alert channel of a client (e-mail, SMS, webhook) becomes a
Kuma webhook notification to this receiver; the query string says which
channel and contact it stands for (`?client=studio&channel=sms&to=Erik`).
Every POST is appended as one JSON object per line to `alerts.jsonl`
(mode 0600) in the state directory; `read_alerts` gives them back as `Alert`s
for the tests and the demo.

    receiver = start(state_dir, host="127.0.0.1", port=9099)   # a background process, idempotent
    receiver.url                                                # the webhook URL for Kuma
    read_alerts(state_dir)
    stop(state_dir)

    with serve(state_dir, port=0) as receiver:                  # a thread, for tests
        ...
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab import procs
from lab.errors import LabError

ALERTS_FILE = "alerts.jsonl"
PID_FILE = "alert-receiver.pid"
LOG_FILE = "alert-receiver.log"
ADDRESS_FILE = "alert-receiver.json"
ALERT_PATH = "/alert"
# Kuma's heartbeat status codes (src/util.ts: DOWN, UP, PENDING, MAINTENANCE).
_STATUS = {0: "down", 1: "up", 2: "pending", 3: "maintenance"}
_MAX_BODY = 1024 * 1024


class AlertReceiverError(LabError):
    pass


@dataclass(frozen=True)
class AlertReceiver:
    host: str
    port: int
    pid: int  # 0 when it runs as a thread in this process

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{ALERT_PATH}"


@dataclass(frozen=True)
class Alert:
    received_at: float
    client: str | None
    channel: str | None
    to: str | None
    monitor: str | None
    status: str | None  # "down", "up", ... ; None for a test notification
    message: str
    body: Any


class _Recorder:
    """Appends records to the alerts file; one lock so concurrent POSTs never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(line)


def _handler(recorder: _Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # a health check
            self._reply(200, b"alert receiver\n")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._reply(413, b"too large\n")
                return
            raw = self.rfile.read(length).decode("utf-8", errors="replace")
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            recorder.append({"received_at": time.time(), "path": url.path, "query": query, "body": body})
            self._reply(200, b"recorded\n")

        def _reply(self, code: int, text: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:  # keep the log to what we record
            pass

    return Handler


def _server(state_dir: Path, host: str, port: int) -> ThreadingHTTPServer:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return ThreadingHTTPServer((host, port), _handler(_Recorder(state_dir / ALERTS_FILE)))


@contextlib.contextmanager
def serve(state_dir: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[AlertReceiver]:
    """Run the receiver in a thread of this process (port 0: any free port)."""
    httpd = _server(Path(state_dir), host, port)
    thread = threading.Thread(target=httpd.serve_forever, name="alert-receiver", daemon=True)
    thread.start()
    try:
        yield AlertReceiver(host, httpd.server_address[1], 0)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# -- as a background process -----------------------------------------------------------


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def running(state_dir: Path) -> AlertReceiver | None:
    state_dir = Path(state_dir)
    record = procs.running(state_dir / PID_FILE)
    try:
        address = json.loads((state_dir / ADDRESS_FILE).read_text())
        host, port = str(address["host"]), int(address["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record is None or not _answers(host, port):
        return None
    return AlertReceiver(host, port, record.pid)


def start(state_dir: Path, host: str = "127.0.0.1", port: int = 9099, timeout: float = 10.0) -> AlertReceiver:
    """Start the receiver as a background process; a live recorded one on the same address is reused."""
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    live = running(state_dir)
    if live is not None:
        if (live.host, live.port) != (host, port):
            raise AlertReceiverError(f"the alert receiver of {state_dir} already runs on {live.host}:{live.port}")
        return live
    stop(state_dir)
    log = state_dir / LOG_FILE
    record = procs.spawn(
        [sys.executable, "-m", "lab.alert_receiver", str(state_dir), f"{host}:{port}"],
        pid_file=state_dir / PID_FILE,
        log_file=log,
        cwd=Path(__file__).resolve().parents[1],  # the repository root, where `lab` and `infra` import from
    )
    (state_dir / ADDRESS_FILE).write_text(json.dumps({"host": host, "port": port}))
    deadline = time.monotonic() + timeout
    while not _answers(host, port):
        if not procs.alive(record) or time.monotonic() > deadline:
            stop(state_dir)
            raise AlertReceiverError(f"the alert receiver did not start on {host}:{port}; see {log}")
        time.sleep(0.05)
    return AlertReceiver(host, port, record.pid)


def stop(state_dir: Path) -> bool:
    state_dir = Path(state_dir)
    stopped = procs.stop_recorded(state_dir / PID_FILE)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / ADDRESS_FILE).unlink()
    return stopped


# -- reading --------------------------------------------------------------------------


def _alert(record: dict[str, Any]) -> Alert:
    query: dict[str, str] = record.get("query") or {}
    body = record.get("body")
    heartbeat = body.get("heartbeat") if isinstance(body, dict) else None
    monitor = body.get("monitor") if isinstance(body, dict) else None
    return Alert(
        received_at=float(record["received_at"]),
        client=query.get("client"),
        channel=query.get("channel"),
        to=query.get("to"),
        monitor=monitor.get("name") if isinstance(monitor, dict) else None,
        status=_STATUS.get(int(heartbeat.get("status", -1))) if isinstance(heartbeat, dict) else None,
        message=str(body.get("msg", "")) if isinstance(body, dict) else str(body),
        body=body,
    )


def read_alerts(state_dir: Path) -> list[Alert]:
    """Every notification received so far, oldest first."""
    try:
        lines = (Path(state_dir) / ALERTS_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [_alert(json.loads(line)) for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """`python -m lab.alert_receiver STATE_DIR HOST:PORT` (what `start` runs)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or ":" not in args[1]:
        print("usage: python -m lab.alert_receiver STATE_DIR HOST:PORT", file=sys.stderr)
        return 2
    host, _, port = args[1].rpartition(":")
    httpd = _server(Path(args[0]), host, int(port))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    httpd.serve_forever()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
