"""The local history of page timings: one JSON line per request, in a root-only file per site.

<state_dir>/perf/<site>.jsonl (0600 under a 0700 directory) holds every timed
request of the last `keep_days`: when (UTC), the page's path, the status, the
time to the first byte, the total time and the body's bytes, or the error of a
request that got no usable answer. Each run reads it, drops what is past
retention, adds its own samples and replaces the file atomically, so a crash
leaves the previous history whole. A line that cannot be read (a disk error, a
hand edit) is dropped and counted, never allowed to stop the trend.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    at: datetime  # aware, UTC
    path: str
    status: int | None
    first_byte_ms: float | None
    total_ms: float | None
    size: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.total_ms is not None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: Any) -> Sample:
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise ValueError("not a sample object with a path")
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError("time without a zone")

        def number(name: str) -> float | None:
            value = data.get(name)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} is not a number >= 0")
            return float(value)

        status = data.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise ValueError("status is not an integer")
        error = data.get("error")
        return cls(
            at=at.astimezone(UTC),
            path=data["path"],
            status=status,
            first_byte_ms=number("first_byte_ms"),
            total_ms=number("total_ms"),
            size=int(number("size") or 0),
            error=str(error) if error is not None else None,
        )


def history_file(state_dir: Path, site_id: str) -> Path:
    return state_dir / "perf" / f"{site_id}.jsonl"


@dataclass
class Loaded:
    samples: list[Sample]
    unreadable: int  # lines dropped because they could not be read


def load(path: Path) -> Loaded:
    samples: list[Sample] = []
    unreadable = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    samples.append(Sample.from_json(json.loads(line)))
                except (ValueError, TypeError, KeyError):
                    unreadable += 1
    except FileNotFoundError:
        pass
    return Loaded(samples, unreadable)


def pruned(samples: Iterable[Sample], now: datetime, keep_days: int) -> list[Sample]:
    """The samples within retention, oldest first."""
    oldest = now - timedelta(days=keep_days)
    return sorted((s for s in samples if s.at >= oldest), key=lambda s: s.at)


def save(path: Path, samples: Iterable[Sample]) -> None:
    """Replace the history atomically with `samples`, root-only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample.to_json(), separators=(",", ":"), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
