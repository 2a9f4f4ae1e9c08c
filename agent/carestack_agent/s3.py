"""A small S3 client in the standard library: PUT, GET and LIST of objects, signed with AWS SigV4.

Servers carry no SDK: the agent writes its evidence records with this. The bucket, endpoint and region
come from the site's restic repository (`s3:http(s)://host[:port]/bucket[/prefix]`), the keys from its
credentials file. Path-style addressing (what restic and the lab's S3 use). Each request has a short
timeout and a few retries of what may pass (no connection, 5xx, 429); an answer that will not change
(403, 404, ...) is final at once. Errors name the endpoint, the bucket and the status, never a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

DEFAULT_REGION = "us-east-1"
SERVICE = "s3"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_REPOSITORY = re.compile(r"^s3:(?P<scheme>https?)://(?P<host>[^\s/]+)/(?P<bucket>[^\s/]+)(?:/(?P<prefix>\S*))?$")
_AWS_HOST = re.compile(r"^s3[.-](?P<region>[a-z0-9-]+)\.amazonaws\.com(:\d+)?$")
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(Exception):
    """A request that did not succeed; `transient` says whether trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, transient: bool = False, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.code = code  # S3's error code, e.g. AccessDenied, InvalidAccessKeyId

    @property
    def keys_rejected(self) -> bool:
        """S3 does not know the keys or their signature: nothing signed with them can touch the bucket."""
        return self.code in ("InvalidAccessKeyId", "SignatureDoesNotMatch")


@dataclass(frozen=True)
class Bucket:
    """Where to send requests and with what keys (the secret never appears in repr)."""

    scheme: str
    host: str  # host[:port]
    bucket: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.host}"


def bucket_of(repository: str, credentials: Mapping[str, str]) -> Bucket:
    """The bucket of an `s3:` restic repository, with the keys of its credentials file."""
    match = _REPOSITORY.match(repository)
    if match is None:
        raise S3Error(f"repository {repository!r} is not s3:http(s)://host[:port]/bucket[/prefix]")
    aws = _AWS_HOST.match(match["host"])
    region = aws["region"] if aws else credentials.get("AWS_DEFAULT_REGION") or credentials.get("AWS_REGION")
    return Bucket(
        scheme=match["scheme"],
        host=match["host"],
        bucket=match["bucket"],
        region=region or DEFAULT_REGION,
        access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        session_token=credentials.get("AWS_SESSION_TOKEN") or None,
    )


def _quote(text: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(text, safe=safe)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    bucket: Bucket,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_sha256: str,
    now: datetime,
) -> dict[str, str]:
    """The request's headers with the SigV4 `Authorization` (path already URI-encoded, query raw)."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed |= {"host": bucket.host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha256}
    if bucket.session_token:
        signed["x-amz-security-token"] = bucket.session_token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            path,
            "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items())),
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            payload_sha256,
        ]
    )
    scope = f"{day}/{bucket.region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + bucket.secret_access_key).encode(), day)
    for part in (bucket.region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={bucket.access_key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return signed


@dataclass
class S3Client:
    bucket: Bucket
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 0.5  # first wait; doubles

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        # Content-MD5: S3 refuses uploads without it into a bucket with object lock retention.
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        self._request("PUT", key, body=body, headers={"content-type": content_type, "content-md5": md5})

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""
        try:
            return self._request("GET", key)
        except S3Error as e:
            if e.status == 404:
                return None
            raise

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under `prefix`, in S3's (lexical) order."""
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._request("GET", "", query=query))
            for item in root.iter(f"{_NS}Contents"):
                yield item.findtext(f"{_NS}Key") or ""
            token = root.findtext(f"{_NS}NextContinuationToken")
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return

    def _request(
        self, method: str, key: str, *, body: bytes = b"", query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:  # fmt: skip
        path = "/" + _quote(self.bucket.bucket) + ("/" + _quote(key, safe="-_.~/") if key else "")
        query = dict(query or {})
        wait = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return self._once(method, path, query, dict(headers or {}), body)
            except S3Error as e:
                if not e.transient or attempt == self.attempts:
                    raise
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")

    def _once(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> bytes:
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign(self.bucket, method, path, query, headers, payload, datetime.now(UTC))
        if body or method == "PUT":
            signed["content-length"] = str(len(body))
        target = path + ("?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items())) if query else "")
        where = f"{self.bucket.endpoint} bucket {self.bucket.bucket}"
        cls = http.client.HTTPSConnection if self.bucket.scheme == "https" else http.client.HTTPConnection
        conn = cls(self.bucket.host, timeout=self.timeout)
        try:
            conn.request(method, target, body=body or None, headers=signed)
            response = conn.getresponse()
            data = response.read()
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise S3Error(f"{where}: {method} failed ({type(e).__name__}: {e})", transient=True) from None
        finally:
            conn.close()
        if 200 <= response.status < 300:
            return data
        code = _error_code(data)
        raise S3Error(
            f"{where}: {method} answered {response.status}{f' {code}' if code else ''}",
            status=response.status,
            transient=response.status >= 500 or response.status in (408, 429),
            code=code or "",
        )


def _error_code(data: bytes) -> str:
    try:
        return ET.fromstring(data).findtext("Code") or ""
    except ET.ParseError:
        return ""
