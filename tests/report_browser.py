"""The HTML report in Debian's headless chromium, for the report's browser tests (sample and lab):
what the page lays out (every element's right edge against A4's printable width) and its screenshots."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.report.pdf import browser, headless_args

A4_PRINTABLE_PX = 703  # 210 mm - 2 x 12 mm margins at 96 px per inch
# Injected into a copy of the page by the test only (the report has no script): every element's
# right edge, and the page's scroll width, against the viewport.
PROBE = """<script>
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 0.5)
    .map(e => e.tagName + '.' + e.className.baseVal + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
  document.body.setAttribute('data-probe', JSON.stringify({width, scroll: document.documentElement.scrollWidth, wide}));
});
</script>"""
# What a person looks at: the first A4 page, and the whole report.
SHOTS = (("top", "794,1123"), ("full", "794,4200"))


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser(), *headless_args(str(tmp / "profile")), "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def laid_out(html: str, tmp: Path) -> tuple[dict[str, Any], str]:
    """(the probe's findings, the DOM) of the page at A4's printable width."""
    page = tmp / "probed.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = chromium(tmp, f"--window-size={A4_PRINTABLE_PX},1200", "--virtual-time-budget=5000", "--dump-dom",
                    page.as_uri())  # fmt: skip
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, done.stderr[-2000:]
    return json.loads(match[1].replace("&quot;", '"')), done.stdout


def screenshots(html: str, tmp: Path, name: str) -> list[Path]:
    """`<name>-top.png` and `<name>-full.png`; copied to CARESTACK_REPORT_SHOTS when it names a directory."""
    page = tmp / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    shots = []
    for part, size in SHOTS:
        shot = tmp / f"{name}-{part}.png"
        done = chromium(tmp, f"--window-size={size}", f"--screenshot={shot}", page.as_uri())
        assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]
        shots.append(shot)
    keep = os.environ.get("CARESTACK_REPORT_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
    return shots
