"""The agency's support ledger for one client: read and validate it.

A ledger is a CSV file next to the client's stack (`stacks/ledger.<client id>.csv`,
or a help desk's export in that shape) or the same rows as a YAML list under
`entries:`. Columns: date, minutes, kind (small_job, incident, request),
severity (one of the plan's), reported, responded, fixed, and an optional note.
Times are "YYYY-MM-DD HH:MM" in the client's time zone, or ISO 8601 with an
offset; a local time that a daylight-saving change skips or repeats needs the
offset. Every problem is reported at once, naming the file, row and column and
what would be valid, like the stack files.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from infra.plan import CarePlan
from infra.spec import SpecError

KINDS = ("small_job", "incident", "request")
COLUMNS = ("date", "minutes", "kind", "severity", "reported", "responded", "fixed", "note")
REQUIRED = ("date", "minutes", "kind")
TIMES = ("reported", "responded", "fixed")
# One ledger row is one piece of work on one day.
MAX_MINUTES = 24 * 60

_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$")
_OFFSET_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})$")


class LedgerError(SpecError):
    """Every problem found in one ledger file."""


@dataclass(frozen=True)
class LedgerEntry:
    row: int
    date: date
    minutes: int
    kind: str
    severity: str | None
    reported: datetime | None  # aware, UTC
    responded: datetime | None
    fixed: datetime | None
    note: str


@dataclass(frozen=True)
class Ledger:
    source: str
    entries: tuple[LedgerEntry, ...]


def ledger_path(stack_file: Path, client_id: str) -> Path:
    """Where a client's ledger lives: beside its stack file, CSV unless only a YAML ledger exists."""
    folder = Path(stack_file).parent
    csv_path = folder / f"ledger.{client_id}.csv"
    for suffix in (".yaml", ".yml"):
        yaml_path = folder / f"ledger.{client_id}{suffix}"
        if not csv_path.exists() and yaml_path.exists():
            return yaml_path
    return csv_path


def _choice(value: str, valid: tuple[str, ...] | list[str], what: str) -> str:
    close = difflib.get_close_matches(value, list(valid), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what} {value!r}{hint} (valid: {', '.join(valid)})"


def parse_time(text: str, zone: ZoneInfo) -> datetime:
    """A ledger time as an aware UTC instant; raises ValueError saying what would be valid."""
    if _OFFSET_TIME.match(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    if not _LOCAL_TIME.match(text):
        raise ValueError(
            f'expected "YYYY-MM-DD HH:MM" in the client\'s time zone or ISO 8601 with an offset, got {text!r}'
        )
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a real date and time: {text!r}") from None
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        # A gap (spring forward) or a repeated hour (fall back): the wall time alone doesn't say when.
        roundtrip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        kind = "does not exist" if roundtrip != naive else "happens twice"
        raise ValueError(
            f"{text} {kind} in {zone.key} (daylight saving time changes); give the offset, e.g. "
            f"{naive.isoformat(sep=' ', timespec='minutes')}{_offset(first)}"
        )
    return first.astimezone(UTC)


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _rows(path: Path) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str]]:
    """(where, row) pairs and problems with the file's shape."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LedgerError(str(path), ["file not found"]) from None
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LedgerError(str(path), [f"not valid YAML: {exc}"]) from None
        entries = data.get("entries") if isinstance(data, Mapping) else None
        if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
            raise LedgerError(str(path), ["entries: expected a list of rows, each a mapping of column: value"])
        return [(f"entries[{i}]", e) for i, e in enumerate(entries)], _column_problems(
            {str(k) for e in entries for k in e}, "entries[*]"
        )
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    problems = _column_problems(set(header), "header")
    rows: list[tuple[str, Mapping[str, Any]]] = [
        (f"row {i} (line {reader.line_num})", row) for i, row in enumerate(reader, start=1)
    ]
    for where, row in rows:
        if None in row:
            problems.append(f"{where}: more values than the header has columns")
    return rows, problems


def _column_problems(columns: set[str], where: str) -> list[str]:
    problems = [f"{where}: unknown column; {_choice(c, COLUMNS, 'column')}" for c in sorted(columns - set(COLUMNS))]
    problems += [f"{where}: the column {c!r} is required" for c in REQUIRED if c not in columns]
    return problems


def _text(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _entry(where: str, number: int, row: Mapping[str, Any], plan: CarePlan, problems: list[str]) -> LedgerEntry | None:
    zone = ZoneInfo(plan.client.timezone)
    before = len(problems)

    def bad(column: str, message: str) -> None:
        problems.append(f"{where}, column {column}: {message}")

    day: date | None = None
    try:
        day = date.fromisoformat(_text(row, "date"))
    except ValueError:
        bad("date", f"expected a date YYYY-MM-DD, got {_text(row, 'date')!r}")
    minutes = 0
    raw_minutes = _text(row, "minutes")
    if not raw_minutes.isdigit() or int(raw_minutes) > MAX_MINUTES:
        bad("minutes", f"expected whole minutes 0..{MAX_MINUTES}, got {raw_minutes!r}")
    else:
        minutes = int(raw_minutes)
    kind = _text(row, "kind").lower().replace(" ", "_").replace("-", "_")
    if kind not in KINDS:
        bad("kind", _choice(_text(row, "kind"), KINDS, "kind"))
    severities = [s.name for s in plan.sla.severities]
    severity = _text(row, "severity").lower() or None
    if severity is not None and severity not in severities:
        bad("severity", _choice(severity, severities, f"severity for tier {plan.client.tier}"))
        severity = None
    if not _text(row, "severity") and kind == "incident":
        bad("severity", f"an incident needs a severity ({', '.join(severities)})")
    times: dict[str, datetime | None] = {}
    for column in TIMES:
        text = _text(row, column)
        times[column] = None
        if text:
            try:
                times[column] = parse_time(text, zone)
            except ValueError as exc:
                bad(column, str(exc))
    if severity is not None and times["reported"] is None and not _text(row, "reported"):
        bad("reported", "a ticket with a severity needs the time it was reported")
    order = [(c, times[c]) for c in TIMES if times[c] is not None]
    for (first, a), (then, b) in itertools.pairwise(order):
        if a is not None and b is not None and b < a:
            bad(then, f"{_text(row, then)} is before {first} {_text(row, first)}")
    if len(problems) > before or day is None:
        return None
    return LedgerEntry(
        number, day, minutes, kind, severity, times["reported"], times["responded"], times["fixed"], _text(row, "note")
    )


def read_ledger(path: Path, plan: CarePlan) -> Ledger:
    """The validated ledger, or a LedgerError with every problem in it."""
    path = Path(path)
    rows, problems = _rows(path)
    entries = []
    for number, (where, row) in enumerate(rows, start=1):
        entry = _entry(where, number, row, plan, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise LedgerError(str(path), problems)
    return Ledger(str(path), tuple(entries))
