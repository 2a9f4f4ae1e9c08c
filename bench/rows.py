"""One row of the project's benchmark table, as a bench script hands it to `bench/run.py`.

Each bench script prints its own detailed table and, for the rows of the summary, calls
`record(...)`: the measure, the anchor (what a user would do instead, and its median when the
script measured it side by side), the goal and whether it was met. When `bench/run.py` runs the
script it names a file in CARESTACK_BENCH_ROWS and the rows are appended there as JSON lines;
run alone, `record` does nothing. Nothing here asserts a timing.
"""

from __future__ import annotations

import json
import math
import os

ROWS_ENV = "CARESTACK_BENCH_ROWS"


def record(
    measure: str,
    median: float,
    unit: str,
    *,
    anchor: str | None = None,
    anchor_median: float | None = None,
    goal: str | None = None,
    met: bool | None = None,
) -> None:
    """Hand one summary row to `bench/run.py` (no-op outside it). `met` is the script's own verdict
    on `goal`; the ratio is median / anchor_median when both were measured."""
    path = os.environ.get(ROWS_ENV)
    if not path:
        return
    ratio = None
    if anchor_median and not math.isnan(anchor_median) and not math.isnan(median):
        ratio = median / anchor_median
    row = {
        "measure": measure,
        "median": None if math.isnan(median) else median,
        "unit": unit,
        "anchor": anchor,
        "anchor_median": anchor_median,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


def at_most(value: float, limit: float) -> bool | None:
    """A goal `value <= limit`; None when the value was not measured."""
    return None if math.isnan(value) else value <= limit
