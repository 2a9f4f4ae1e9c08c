"""The HTML report in a real headless browser (Debian's chromium): charts drawn, nothing wider than
A4's printable width, and a PDF of A4 pages. Set CARESTACK_REPORT_SHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.report.branding import load_branding
from infra.report.build import build_report
from infra.report.pdf import browser, headless_args, html_to_pdf
from infra.report.render_html import render_html
from tests.report_sample import NOW, ROOT, sample_period, sample_sources, studio_plan

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")

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


@pytest.fixture(scope="module")
def html() -> str:
    plan, period = studio_plan(), sample_period()
    doc = build_report(plan, period, sample_sources(plan, period), NOW)
    return render_html(doc, "en", load_branding(ROOT / "docs" / "examples" / "branding.yaml"))


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser(), *headless_args(str(tmp / "profile")), "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_report_is_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    urls = set(re.findall(r"""(?:src|href)=["']([^"']+)""", html)) | set(re.findall(r"url\(([^)]*)\)", html))
    assert all(u.startswith("data:") for u in urls), urls
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_charts_are_drawn_and_nothing_overflows_a4(html: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = _chromium(
        tmp_path, f"--window-size={A4_PRINTABLE_PX},1200", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()
    )
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, done.stderr[-2000:]
    probe = json.loads(match[1].replace("&quot;", '"'))
    assert probe["scroll"] <= probe["width"], probe
    assert probe["wide"] == [], probe
    dom = done.stdout
    assert dom.count('class="chart"') == 3 * 2  # daily uptime, response times, backups for each site
    assert dom.count('class="bar"') == 2 * 30  # a bar per day of November per site
    assert dom.count('class="line"') == 4  # a line per checked page
    assert dom.count('class="gap"') == 1  # the missed backup of the first site


def test_it_prints_to_a4_pages_and_screenshots_are_kept(html: str, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    html_to_pdf(html, pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in boxes), boxes
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    shots = []
    for name, size in (("report-top.png", "794,1123"), ("report-full.png", "794,4200")):
        shot = tmp_path / name
        done = _chromium(tmp_path, f"--window-size={size}", f"--screenshot={shot}", page.as_uri())
        assert shot.is_file() and shot.stat().st_size > 10_000, done.stderr[-2000:]
        shots.append(shot)
    keep = os.environ.get("CARESTACK_REPORT_SHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
        shutil.copy(pdf, Path(keep) / "report.pdf")
