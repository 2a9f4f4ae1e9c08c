"""Inline SVG charts drawn from the report document: daily uptime bars, response times, backup timeline.

Plain SVG with a viewBox, so a chart scales to the page width and prints without scripts or fonts
from elsewhere; colours are the only styling.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

WIDTH = 700
GOOD, BAD, NONE, INK, GRID = "#2e7d32", "#c62828", "#9e9e9e", "#333", "#ddd"
LINES = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f")


def _svg(height: int, body: list[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 10) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{INK}">{escape(text)}</text>'


def uptime_bars(days: list[dict[str, Any]], target: float, label: str) -> str:
    """One bar per day from a floor below the worst day (or the target) to 100 %."""
    height, left, top, bottom = 150, 40, 10, 24
    values = [d["percent"] for d in days if d["percent"] is not None]
    floor = min([target, *values])
    floor = max(0.0, min(floor - (100 - floor) * 0.25, 99.0))
    span = 100 - floor
    plot_h = height - top - bottom
    step = (WIDTH - left - 5) / max(1, len(days))
    body = [f'<line x1="{left}" y1="{top}" x2="{WIDTH - 5}" y2="{top}" stroke="{GRID}"/>']
    ty = top + plot_h * (100 - target) / span
    body.append(
        f'<line x1="{left}" y1="{ty:.1f}" x2="{WIDTH - 5}" y2="{ty:.1f}" stroke="{INK}" stroke-dasharray="4 3"/>'
    )
    body.append(_text(left - 4, top + 4, "100%", "end", 9))
    if ty - top > 10:  # else the target's label would sit on the 100 % label
        body.append(_text(left - 4, ty + 3, f"{target:g}%", "end", 9))
    body.append(_text(left - 4, top + plot_h, f"{floor:.4g}%", "end", 9))
    for n, day in enumerate(days):
        x = left + n * step + step * 0.15
        w = step * 0.7
        if day["percent"] is None:
            body.append(f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{plot_h}" fill="{NONE}" opacity="0.4"/>')
        else:
            h = max(1.0, plot_h * (day["percent"] - floor) / span)
            colour = GOOD if day["percent"] >= target else BAD
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(day["day"])}: {day["percent"]:.3f} %</title></rect>'
            )
        if n % max(1, len(days) // 10) == 0:
            body.append(_text(x + w / 2, height - 8, day["day"][5:], "middle", 9))
    return _svg(height, body, label)


def response_lines(series: list[dict[str, Any]], all_days: list[str], label: str) -> str:
    """A line per checked page through its daily mean response time."""
    height, left, top, bottom = 150, 40, 10, 36
    plot_h = height - top - bottom
    peak = max([d["mean_ms"] for s in series for d in s["days"]] + [1.0])
    step = (WIDTH - left - 10) / max(1, len(all_days) - 1)
    # One day: its points in the middle, not on the axis.
    first_x = left + (WIDTH - left - 10) / 2 if len(all_days) == 1 else left
    index = {day: n for n, day in enumerate(all_days)}
    body = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 5}" y2="{top + plot_h}" stroke="{GRID}"/>',
        _text(left - 4, top + 4, f"{peak:.0f}", "end", 9),
        _text(left - 4, top + plot_h, "0", "end", 9),
    ]
    for n, s in enumerate(series):
        colour = LINES[n % len(LINES)]
        points = " ".join(
            f"{first_x + index[d['day']] * step:.1f},{top + plot_h * (1 - d['mean_ms'] / peak):.1f}"
            for d in s["days"]
            if d["day"] in index
        )
        if points:
            body.append(f'<polyline class="line" points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        # A dot per day as well: a period of one day has a point and no line.
        for point in points.split():
            x, y = point.split(",")
            body.append(f'<circle class="point" cx="{x}" cy="{y}" r="2" fill="{colour}"/>')
        lx = left + n * 150
        body.append(f'<rect x="{lx}" y="{height - 12}" width="10" height="4" fill="{colour}"/>')
        body.append(_text(lx + 14, height - 7, s["check"], "start", 9))
    return _svg(height, body, label)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def backup_timeline(backups: dict[str, Any], start: str, end: str, label: str, ends: tuple[str, str]) -> str:
    """The period as a bar: a tick per complete snapshot, red spans where a gap exceeded the RPO."""
    height, left, right, top, bar = 60, 10, 10, 10, 22
    a, b = _when(start), _when(end)
    total = (b - a).total_seconds() or 1.0

    def x(moment: str) -> float:
        offset = min(max((_when(moment) - a).total_seconds(), 0.0), total)
        return left + (WIDTH - left - right) * offset / total

    body = [
        f'<rect x="{left}" y="{top}" width="{WIDTH - left - right}" height="{bar}" fill="#f1f1f1" stroke="{GRID}"/>'
    ]
    for snap in backups["snapshots"]:
        sx = x(snap)
        body.append(f'<line class="snap" x1="{sx:.1f}" y1="{top}" x2="{sx:.1f}" y2="{top + bar}" stroke="{GOOD}"/>')
    # Drawn over the ticks and at least 3 units wide: a two-hour gap in a month is under a unit.
    for gap in backups["gaps_over_rpo"]:
        x1, x2 = x(gap["start"]), x(gap["end"])
        body.append(
            f'<rect class="gap" x="{x1:.1f}" y="{top - 3}" width="{max(3.0, x2 - x1):.1f}" height="{bar + 6}" '
            f'fill="{BAD}"><title>{gap["minutes"]:.0f} min</title></rect>'
        )
    body.append(_text(left, height - 8, ends[0], "start", 9))
    body.append(_text(WIDTH - right, height - 8, ends[1], "end", 9))
    return _svg(height, body, label)
