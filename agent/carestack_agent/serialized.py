"""URL rewriting that keeps PHP's serialize() format intact (WordPress options, widgets, theme mods, meta).

WordPress stores arrays and objects as `serialize()` text, whose strings carry
their length in bytes: `s:23:"http://old.example/shop";`. A plain search and
replace to a URL of another length leaves the length wrong and PHP's
`unserialize()` then fails; WordPress silently drops the whole value (the
widgets, the theme's settings). So every value is parsed first: if it is
serialized, the strings inside it are rewritten (recursively: a string may
itself hold serialized text, or JSON) and each length is recomputed from the
new bytes (UTF-8: bytes, never characters). Anything else gets a plain replace.

Everything works on bytes, as PHP does. Array and object keys are kept as they
are (as WP-CLI's search-replace does): a key is a name, not content. A value
that looks serialized but does not parse (already corrupt) gets a plain replace
and is counted, so the operator hears about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# A URL ends where a host name or path segment cannot go on: `http://old.example`
# must not rewrite `http://old.example.org` or `http://old.example-shop.com`.
_URL_END = rb"(?![A-Za-z0-9_-]|\.[A-Za-z0-9])"
_SERIALIZED_START = re.compile(rb"(?:[aOsidbCE]:|N;)")
_SCALAR = {
    ord("i"): re.compile(rb"i:[+-]?[0-9]+;"),
    ord("b"): re.compile(rb"b:[01];"),
    ord("d"): re.compile(rb"d:(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NAN|-?INF);"),
    ord("r"): re.compile(rb"r:[0-9]+;"),
    ord("R"): re.compile(rb"R:[0-9]+;"),
    ord("N"): re.compile(rb"N;"),
}
_LENGTH = re.compile(rb"[sOCE]:([0-9]+):\"")
_COUNT = re.compile(rb"([0-9]+):\{")
_COUNT_AFTER_NAME = re.compile(rb":([0-9]+):\{")
MAX_DEPTH = 256  # deeper than anything WordPress writes; beyond it a value is left as it is


class NotSerialized(ValueError):
    """The bytes are not one complete serialize() value."""


@dataclass
class Counts:
    """What a rewrite did, for the job's figures."""

    strings: int = 0  # strings (SQL values or strings inside serialized ones) that changed
    serialized: int = 0  # serialized values rewritten with recomputed lengths
    unparsable: int = 0  # looked serialized, did not parse: replaced as plain text
    too_deep: int = 0  # nested beyond MAX_DEPTH: left unchanged

    def add(self, other: Counts) -> None:
        self.strings += other.strings
        self.serialized += other.serialized
        self.unparsable += other.unparsable
        self.too_deep += other.too_deep


def _json_escaped(url: bytes) -> bytes:
    return url.replace(b"/", b"\\/")


@dataclass
class UrlRewrite:
    """Rewrites the old site's URL (both schemes, plain and JSON-escaped) to the new one."""

    old: str
    new: str
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        old, new = _base(self.old, "old URL"), _base(self.new, "new URL")
        host_and_path = old.split("://", 1)[1]
        new_bytes = new.encode()
        pairs: dict[bytes, bytes] = {}
        for scheme in ("http", "https"):
            source = f"{scheme}://{host_and_path}".encode()
            pairs[source.lower()] = new_bytes
            pairs[_json_escaped(source).lower()] = _json_escaped(new_bytes)
        self._pairs = {k: v for k, v in pairs.items() if k != v.lower()}  # a scheme change alone keeps one
        alternatives = b"|".join(re.escape(k) for k in sorted(self._pairs, key=len, reverse=True))
        # with nothing to change, a pattern that never matches (an empty alternation would match everywhere)
        self._pattern = re.compile(b"(?:" + alternatives + b")" + _URL_END if self._pairs else rb"(?!)", re.IGNORECASE)
        self._host = re.compile(re.escape(urlsplit(old).netloc.encode()), re.IGNORECASE)

    @property
    def changes_anything(self) -> bool:
        return bool(self._pairs)

    def might_touch(self, data: bytes) -> bool:
        """A cheap pre-check: the old host appears at all (in any escaping)."""
        return self._host.search(data) is not None

    def plain(self, data: bytes) -> bytes:
        return self._pattern.sub(lambda m: self._pairs[m.group(0).lower()], data)

    def value(self, data: bytes) -> bytes:
        """One stored value rewritten: serialize()-aware when it is serialized, else a plain replace."""
        if not self.might_touch(data):
            return data
        counts = Counts()
        out = rewrite_value(data, self, counts, 0)
        self.counts.add(counts)
        return out


def _base(url: str, what: str) -> str:
    """scheme://host[/path] without a trailing slash; a ValueError names what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{what}: must be http(s)://host[/path], got {url!r}")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def rewrite_value(data: bytes, rewrite: UrlRewrite, counts: Counts, depth: int) -> bytes:
    """A string's bytes rewritten; serialized text is parsed and re-emitted with new lengths."""
    stripped = data.rstrip(b" \t\r\n")
    if _SERIALIZED_START.match(stripped):
        try:
            out, end = _value(stripped, 0, rewrite, counts, depth)
            if end != len(stripped):
                raise NotSerialized(f"trailing data at byte {end}")
        except NotSerialized:
            counts.unparsable += 1
        except _TooDeep:
            counts.too_deep += 1
            return data
        else:
            if out != stripped:
                counts.serialized += 1
                counts.strings += 1
            return out + data[len(stripped) :]
    out = rewrite.plain(data)
    if out != data:
        counts.strings += 1
    return out


class _TooDeep(Exception):
    pass


def _value(d: bytes, i: int, rw: UrlRewrite, counts: Counts, depth: int) -> tuple[bytes, int]:
    """The serialized value starting at d[i], rewritten, and the index after it."""
    if depth > MAX_DEPTH:
        raise _TooDeep()
    if i >= len(d):
        raise NotSerialized("ends inside a value")
    kind = d[i]
    scalar = _SCALAR.get(kind)
    if scalar is not None:
        m = scalar.match(d, i)
        if not m:
            raise NotSerialized(f"bad {chr(kind)}: value at byte {i}")
        return m.group(0), m.end()
    if kind == ord("s"):
        payload, end = _counted(d, i)
        if d[end : end + 2] != b'";':
            raise NotSerialized(f"string at byte {i} does not end where its length says")
        new = rewrite_value(payload, rw, counts, depth + 1) if rw.might_touch(payload) else payload
        return b's:%d:"%s";' % (len(new), new), end + 2
    if kind == ord("a"):
        m = _COUNT.match(d, i + 2) if d[i + 1 : i + 2] == b":" else None
        if not m:
            raise NotSerialized(f"bad array at byte {i}")
        body, end = _members(d, m.end(), int(m.group(1)), rw, counts, depth)
        return d[i : m.end()] + body, end
    if kind == ord("O"):
        _, after_name = _counted(d, i)
        m = _COUNT_AFTER_NAME.match(d, after_name + 1) if d[after_name : after_name + 1] == b'"' else None
        if not m:
            raise NotSerialized(f"bad object at byte {i}")
        body, end = _members(d, m.end(), int(m.group(1)), rw, counts, depth)
        return d[i : m.end()] + body, end
    if kind == ord("C"):  # a class's own serialization: its data is rewritten like any string, its length recomputed
        _, after_name = _counted(d, i)
        m = _COUNT_AFTER_NAME.match(d, after_name + 1) if d[after_name : after_name + 1] == b'"' else None
        if not m:
            raise NotSerialized(f"bad custom object at byte {i}")
        start, length = m.end(), int(m.group(1))
        data = d[start : start + length]
        if len(data) != length or d[start + length : start + length + 1] != b"}":
            raise NotSerialized(f"custom object at byte {i} does not end where its length says")
        new = rewrite_value(data, rw, counts, depth + 1) if rw.might_touch(data) else data
        head = d[i : after_name + 1] + b":%d:{" % len(new)
        return head + new + b"}", start + length + 1
    if kind == ord("E"):  # an enum case: a name, never content
        _, end = _counted(d, i)
        if d[end : end + 2] != b'";':
            raise NotSerialized(f"bad enum at byte {i}")
        return d[i : end + 2], end + 2
    raise NotSerialized(f"unknown type {chr(kind)!r} at byte {i}")


def _counted(d: bytes, i: int) -> tuple[bytes, int]:
    """`X:N:"` followed by N bytes: those bytes and the index after them."""
    m = _LENGTH.match(d, i)
    if not m:
        raise NotSerialized(f"bad length at byte {i}")
    start = m.end()
    end = start + int(m.group(1))
    if end > len(d):
        raise NotSerialized(f"length at byte {i} runs past the end")
    return d[start:end], end


def _members(d: bytes, i: int, count: int, rw: UrlRewrite, counts: Counts, depth: int) -> tuple[bytes, int]:
    """`count` key/value pairs and the closing brace; keys are kept, values rewritten."""
    parts: list[bytes] = []
    for _ in range(count):
        if d[i : i + 1] not in (b"i", b"s"):
            raise NotSerialized(f"bad key at byte {i}")
        key_end = _value(d, i, _KEEP, Counts(), depth + 1)[1]
        parts.append(d[i:key_end])
        value, i = _value(d, key_end, rw, counts, depth + 1)
        parts.append(value)
    if d[i : i + 1] != b"}":
        raise NotSerialized(f"missing closing brace at byte {i}")
    return b"".join(parts) + b"}", i + 1


class _Keep(UrlRewrite):
    """Parses without changing anything (array keys)."""

    def __init__(self) -> None:
        self.counts = Counts()

    def might_touch(self, data: bytes) -> bool:
        return False

    def plain(self, data: bytes) -> bytes:
        return data


_KEEP = _Keep()
