"""The servers' door to the lab's S3: only S3 API requests pass, and a copy's source is authorized too.

    python -m lab.s3_gateway 10.77.0.1:9000 127.0.0.1:9000 POLICIES_FILE

moto listens on loopback, out of the servers' reach (each server has a
loopback of its own); this gateway listens on the bridge address and forwards
a request only if it is an S3 API call: signed (AWS Signature V4 for the
service `s3`, in the header or the query), aimed at a path of this server
(never moto's unauthenticated admin API, `/moto-api/...`, which hands out
every user's keys). Requests and responses pass byte for byte (a signature
covers the headers the client sent), one request per upstream connection.

moto authorizes each request against the caller's IAM policy, but for
CopyObject and UploadPartCopy only the destination: the source is read without
a check, where AWS requires s3:GetObject on it. The gateway checks the source
(`x-amz-copy-source`) against the caller's policies, read from POLICIES_FILE
({access key id: [policy document, ...]}, written by `lab.storage`, reread when
it changes); a caller it knows no policy for may not copy. A refusal is the S3
error AWS gives, 403 AccessDenied.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from lab import procs

_CHUNK = 64 * 1024
_ADMIN_PREFIX = "/moto-api"
# Headers that describe one connection, not the request (RFC 9110 7.6.1); never forwarded.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"}
_V4_CREDENTIAL = re.compile(r"Credential=([^/\s,]+)/[^/\s,]+/[^/\s,]+/([^/\s,]+)/aws4_request")
UPSTREAM_TIMEOUT = 600.0  # a large object's upload or download through a busy moto


class Denied(Exception):
    """A request the gateway refuses, with the reason it tells the caller."""


@dataclass(frozen=True)
class Caller:
    access_key_id: str
    service: str


def caller(headers: Any, query: str) -> Caller | None:
    """Who signed the request (SigV4, header or presigned query), and for which service."""
    authorization = headers.get("Authorization", "")
    match = _V4_CREDENTIAL.search(authorization) if authorization.startswith("AWS4-HMAC-SHA256") else None
    if match:
        return Caller(match.group(1), match.group(2))
    credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
    parts = credential.split("/")
    if len(parts) == 5 and parts[4] == "aws4_request":
        return Caller(parts[0], parts[3])
    return None


def _matches(patterns: Any, value: str, *, case_sensitive: bool) -> bool:
    items = [patterns] if isinstance(patterns, str) else list(patterns or [])
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, str(p)) for p in items)
    return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in items)


def allowed(policies: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM's evaluation for identity policies: an explicit Deny wins, then any Allow, else denied."""
    verdict = False
    for policy in policies:
        statements = policy.get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if "Condition" in statement or "NotAction" in statement or "NotResource" in statement:
                continue  # not evaluated here (the lab's policies have none): neither grants nor denies
            if not _matches(statement.get("Action", []), action, case_sensitive=False):
                continue
            if not _matches(statement.get("Resource", []), resource, case_sensitive=True):
                continue
            if statement.get("Effect") == "Deny":
                return False
            verdict = verdict or statement.get("Effect") == "Allow"
    return verdict


def copy_source(header: str) -> tuple[str, str, str | None]:
    """(bucket, key, version id) of an `x-amz-copy-source` header: `[/]bucket/key[?versionId=...]`."""
    path, _, query = header.partition("?")
    path = unquote(path).lstrip("/")
    bucket, sep, key = path.partition("/")
    if not bucket or not sep or not key or path.startswith("arn:"):
        raise Denied(f"copy source {header!r} is not bucket/key")
    version = parse_qs(query).get("versionId", [None])[0]
    return bucket, key, version


class Policies:
    """The policies file, reread when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_key: dict[str, list[dict[str, Any]]] = {}

    def of(self, access_key_id: str) -> list[dict[str, Any]]:
        with self._lock:
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                if stamp != self._stamp:
                    data = json.loads(self.path.read_text())
                    self._by_key = {str(k): list(v) for k, v in data.items()} if isinstance(data, dict) else {}
                    self._stamp = stamp
            except (OSError, ValueError):
                self._by_key, self._stamp = {}, None
            return self._by_key.get(access_key_id, [])


def check(method: str, target: str, headers: Any, policies: Policies) -> None:
    """Raise Denied unless the request is an S3 API call the gateway lets through."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        raise Denied("only requests for this server's paths are served")
    path = "/" + unquote(parts.path).lstrip("/")
    if path.lower().startswith(_ADMIN_PREFIX):
        raise Denied("the S3 server's admin API is not served here")
    who = caller(headers, parts.query)
    if who is None:
        raise Denied("anonymous requests are not served; sign with AWS Signature Version 4")
    if who.service != "s3":
        raise Denied(f"only the S3 API is served here, not {who.service!r}")
    source = headers.get("x-amz-copy-source")
    if source is not None and method == "PUT":
        bucket, key, version = copy_source(source)
        action = "s3:GetObjectVersion" if version else "s3:GetObject"
        if not allowed(policies.of(who.access_key_id), action, f"arn:aws:s3:::{bucket}/{key}"):
            raise Denied(f"not allowed to read the copy source {bucket}/{key} ({action})")


def _error_xml(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # an idle client connection is dropped after this many seconds
    server: _Gateway

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry signed query strings (presigned URLs): not logged

    def _refuse(self, reason: str) -> None:
        body = _error_xml("AccessDenied", reason)
        self.close_connection = True  # the refused request's body is never read
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body_chunks(self) -> Any:
        """The request body as the client framed it (Content-Length or chunked), raw."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size_line = self.rfile.readline(1024)
                yield size_line
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := self.rfile.readline(8192)) not in (b"\r\n", b"\n", b""):
                        yield trailer
                    yield b"\r\n"
                    return
                remaining = size + 2  # the chunk and its CRLF
                while remaining:
                    data = self.rfile.read(min(_CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
        length = int(self.headers.get("Content-Length") or 0)
        while length:
            data = self.rfile.read(min(_CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data

    def _forward(self) -> None:
        try:
            check(self.command, self.path, self.headers, self.server.policies)
        except Denied as denied:
            self._refuse(str(denied))
            return
        upstream = http.client.HTTPConnection(*self.server.target, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Connection", "close")
            upstream.endheaders()
            for data in self._body_chunks():
                upstream.send(data)
            response = upstream.getresponse()
            self.send_response_only(response.status, response.reason)
            framed = False
            for name, value in response.getheaders():
                lowered = name.lower()
                if lowered in _HOP_BY_HOP or lowered == "transfer-encoding":
                    continue
                framed = framed or lowered == "content-length"
                self.send_header(name, value)
            if not framed and self.command != "HEAD" and response.status not in (204, 304):
                self.close_connection = True  # the body ends where the connection does
                self.send_header("Connection", "close")
            self.end_headers()
            while data := response.read(_CHUNK):
                self.wfile.write(data)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = _forward


class _Gateway(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], policies: Policies) -> None:
        self.target = target
        self.policies = policies
        super().__init__(listen, _Handler)


# -- as a background process of the lab --------------------------------------------------

PID_FILE = "s3-gateway.pid"
LOG_FILE = "s3-gateway.log"


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def running(state_dir: Path, host: str, port: int) -> bool:
    """The recorded gateway is still our process and takes connections on host:port."""
    return procs.running(state_dir / PID_FILE) is not None and _accepts(host, port)


def start(state_dir: Path, listen: tuple[str, int], target: tuple[str, int], policies_file: Path) -> bool:
    """Start the gateway unless it runs; True if it had to be started."""
    if running(state_dir, *listen):
        return False
    stop(state_dir)  # a recorded one that no longer takes connections
    argv = [sys.executable, "-m", "lab.s3_gateway", f"{listen[0]}:{listen[1]}", f"{target[0]}:{target[1]}"]
    record = procs.spawn(
        [*argv, str(policies_file)],
        pid_file=state_dir / PID_FILE,
        log_file=state_dir / LOG_FILE,
        cwd=Path(__file__).resolve().parents[1],  # the repository root, where `lab` and `infra` import from
    )
    deadline = time.monotonic() + 10
    while not _accepts(*listen):
        if not procs.alive(record) or time.monotonic() > deadline:
            stop(state_dir)
            raise GatewayError(f"the S3 gateway did not start on {listen[0]}:{listen[1]}; see {state_dir / LOG_FILE}")
        time.sleep(0.05)
    return True


def stop(state_dir: Path) -> bool:
    return procs.stop_recorded(state_dir / PID_FILE)


class GatewayError(RuntimeError):
    pass


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9000, got {text!r}")
    return host, int(port)


def serve(listen: tuple[str, int], target: tuple[str, int], policies_file: Path) -> _Gateway:
    """A gateway bound to `listen` (not yet serving: call serve_forever)."""
    return _Gateway(listen, target, Policies(policies_file))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 3:
            raise ValueError("usage: python -m lab.s3_gateway LISTEN_HOST:PORT TARGET_HOST:PORT POLICIES_FILE")
        gateway = serve(_address(args[0]), _address(args[1]), Path(args[2]))
    except (ValueError, OSError) as exc:
        print(f"s3_gateway: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        gateway.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
