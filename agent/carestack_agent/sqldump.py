"""A client's MySQL/MariaDB SQL dump: what it is (checked before anything changes) and its URLs rewritten.

`inspect` reads the whole dump once before the import: it must be a MySQL or
MariaDB dump (a PostgreSQL dump, plain or custom format, or an SQLite database
is refused by name: its SQL would fail half-way, or worse, import partly),
it must hold the WordPress tables with the table prefix the site uses, and it
yields its uncompressed size (for the free-space check) and the site's URL as
stored in the `home` option (what the rewrite replaces).

`rewrite` streams the dump into the importer: every single-quoted SQL string
literal that mentions the old URL is unescaped, rewritten by
`serialized.UrlRewrite` (serialize()-aware), and escaped again the way
mysqldump does; everything else is copied byte for byte. Statements that
would switch to or create another database (`USE`, `CREATE DATABASE` from
`mysqldump --databases`) are dropped: the dump goes into the database the
agent chose, never one the old host named.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .serialized import UrlRewrite

SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_MYSQL_SIGNS = (b"-- MySQL dump", b"-- MariaDB dump", b"-- phpMyAdmin SQL Dump", b"/*!40101 SET", b"/*!40000 ")
_POSTGRES_SIGNS = (b"-- PostgreSQL database dump", b"SET client_encoding", b"pg_catalog.", b" FROM stdin;")
_CREATE_TABLE = re.compile(rb"CREATE TABLE (?:IF NOT EXISTS )?`([^`]+)`")
_INSERT = re.compile(rb"INSERT INTO `([^`]+)`")
_HOME_ROW = re.compile(rb"'(home|siteurl)',\s*'((?:[^'\\]|\\.)*)'")
_OTHER_DATABASE = re.compile(rb"\s*(?:USE\s|CREATE DATABASE\s)", re.IGNORECASE)
# Inside a literal: anything but a quote or a backslash, an escaped character, or a doubled quote.
# Possessive: a literal that does not end on this line fails at once instead of backtracking.
_LITERAL = rb"'(?:[^'\\]++|\\.|'')*+'"
_IDENTIFIER = rb"`[^`]*+`"
_TOKEN = re.compile(_LITERAL + rb"|" + _IDENTIFIER, re.DOTALL)
_COMPLETE_LINE = re.compile(rb"(?:[^'`]++|" + _LITERAL + rb"|" + _IDENTIFIER + rb")*+", re.DOTALL)
_ESCAPED = re.compile(rb"\\(.)|''", re.DOTALL)
_UNESCAPE = {b"0": b"\x00", b"b": b"\x08", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"Z": b"\x1a"}
_ESCAPE_CHARS = re.compile(rb"[\\'\"\x00\n\r\x1a]")
_ESCAPES = {b"\\": b"\\\\", b"'": b"\\'", b'"': b'\\"', b"\x00": b"\\0", b"\n": b"\\n", b"\r": b"\\r",
            b"\x1a": b"\\Z"}  # fmt: skip


class DumpError(ValueError):
    """The dump cannot be imported; the message names the file and what would be valid."""


class OtherEngineDump(DumpError):
    """A dump of another database engine (PostgreSQL, SQLite)."""


def open_dump(path: Path) -> IO[bytes]:
    """The dump's SQL, decompressed when it is gzip (by its magic, whatever its name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads as IO[bytes]
    return open(path, "rb")


def check_engine(path: Path, head: bytes) -> None:
    """Refuse anything but a MySQL/MariaDB dump, naming what it is."""
    if head.startswith(b"SQLite format 3\x00"):
        raise OtherEngineDump(f"{path}: an SQLite database file, not a MySQL/MariaDB SQL dump (mysqldump output)")
    if head.startswith(b"PGDMP"):
        raise OtherEngineDump(
            f"{path}: a PostgreSQL dump (pg_dump custom format), not a MySQL/MariaDB SQL dump (mysqldump output)"
        )
    if any(sign in head for sign in _POSTGRES_SIGNS):
        raise OtherEngineDump(
            f"{path}: a PostgreSQL dump (pg_dump SQL), not a MySQL/MariaDB SQL dump (mysqldump output)"
        )
    if not (any(sign in head for sign in _MYSQL_SIGNS) or _CREATE_TABLE.search(head)):
        raise DumpError(
            f"{path}: not a MySQL/MariaDB SQL dump (expected mysqldump or mariadb-dump output, plain or gzip)"
        )


@dataclass
class DumpFacts:
    sql_bytes: int = 0  # uncompressed
    tables: list[str] = field(default_factory=list)
    home: str | None = None  # the `home` option (else `siteurl`) of the WordPress options table
    prefix: str | None = None  # the WordPress table prefix the options table has


def inspect(path: Path, *, wordpress: bool) -> DumpFacts:
    """Everything the import needs to know about the dump, read before anything changes."""
    try:
        with open_dump(path) as sql:
            head = sql.read(SNIFF_BYTES)
            check_engine(path, head)
            facts = DumpFacts(sql_bytes=len(head))
            siteurl: str | None = None
            in_options = False  # inside an INSERT into the options table (mariadb-dump puts each row on a line)
            for line in _lines(head, sql):
                m = _CREATE_TABLE.match(line)
                if m:
                    facts.tables.append(m.group(1).decode("utf-8", "replace"))
                    continue
                m = _INSERT.match(line)
                if m:
                    in_options = m.group(1).endswith(b"options")
                    if in_options:
                        facts.prefix = facts.prefix or m.group(1)[: -len(b"options")].decode("utf-8", "replace")
                if in_options:
                    for name, value in _HOME_ROW.findall(line):
                        url = unescape(value).decode("utf-8", "replace")
                        if name == b"home":
                            facts.home = facts.home or url
                        else:
                            siteurl = siteurl or url
                    in_options = not line.rstrip().endswith(b";")
            facts.sql_bytes = sql.tell()  # uncompressed, also through gzip
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DumpError(f"{path}: cannot read the dump ({e})") from None
    facts.home = facts.home or siteurl
    if wordpress:
        options = [t for t in facts.tables if t.endswith("options")]
        if not options or facts.home is None:
            raise DumpError(
                f"{path}: no WordPress options table with a home or siteurl row (tables: "
                f"{', '.join(facts.tables[:8]) or 'none'}); a WordPress site needs its own database's dump"
            )
        facts.prefix = facts.prefix or options[0][: -len("options")]
    return facts


def _lines(head: bytes, rest: IO[bytes]) -> Iterator[bytes]:
    """The dump's lines, the already-read head first (a line may cross the head's end)."""
    carry = b""
    for chunk in _chunks(head, rest):
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        yield from parts
    if carry:
        yield carry


def _chunks(head: bytes, rest: IO[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := rest.read(1024 * 1024):
        yield chunk


def unescape(body: bytes) -> bytes:
    """A MySQL string literal's body (between the quotes) as the stored bytes."""
    if b"\\" not in body and b"''" not in body:
        return body
    return _ESCAPED.sub(_unescape_one, body)


def _unescape_one(m: re.Match[bytes]) -> bytes:
    escaped = m.group(1)
    if escaped is None:  # a doubled quote
        return b"'"
    if escaped in (b"%", b"_"):  # MySQL keeps the backslash of \% and \_
        return m.group(0)
    return _UNESCAPE.get(escaped, escaped)


def escape(value: bytes) -> bytes:
    """Stored bytes as a MySQL string literal's body, escaped as mysqldump escapes."""
    return _ESCAPE_CHARS.sub(lambda m: _ESCAPES[m.group(0)], value)


@dataclass
class RewriteFigures:
    literals_changed: int = 0
    statements_dropped: list[str] = field(default_factory=list)


def rewrite(src: IO[bytes], dst: IO[bytes], rw: UrlRewrite, figures: RewriteFigures) -> None:
    """Copy the dump from `src` to `dst`, each string literal that names the old URL rewritten.

    A line is tokenized by one regular expression (in C): a line that does not
    mention the old host is copied as it is, and only literals that do are
    handled in Python. A literal that goes on past the line's end (a raw
    newline inside it) is carried into the next line.
    """
    pending = b""  # a statement part whose string literal goes on in the next line

    def literal(m: re.Match[bytes]) -> bytes:
        token = m.group(0)
        if token[:1] != b"'" or not rw.might_touch(token):
            return token
        value = unescape(token[1:-1])
        new = rw.value(value)
        if new == value:
            return token
        figures.literals_changed += 1
        return b"'" + escape(new) + b"'"

    for raw in _lines(b"", src):
        line = pending + raw + b"\n"
        if not pending:
            if line.startswith(b"--") or not line.strip():
                dst.write(line)
                continue
            if _OTHER_DATABASE.match(line):
                figures.statements_dropped.append(line.strip()[:80].decode("utf-8", "replace"))
                continue
        if _COMPLETE_LINE.fullmatch(line) is None:
            pending = line
            continue
        pending = b""
        dst.write(_TOKEN.sub(literal, line) if rw.might_touch(line) else line)
    if pending:
        raise DumpError("the dump ends inside a string literal (it is cut short)")
