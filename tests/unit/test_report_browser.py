"""The HTML report in a real headless browser (Debian's chromium): charts drawn, nothing wider than
A4's printable width, and a PDF of A4 pages. Set CARESTACK_REPORT_SHOTS=DIR to keep the screenshots."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from infra.report.branding import load_branding
from infra.report.build import build_report
from infra.report.pdf import html_to_pdf
from infra.report.render_html import render_html
from tests.report_browser import laid_out, screenshots
from tests.report_sample import NOW, ROOT, sample_period, sample_sources, studio_plan

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def html() -> str:
    plan, period = studio_plan(), sample_period()
    doc = build_report(plan, period, sample_sources(plan, period), NOW)
    return render_html(doc, "en", load_branding(ROOT / "docs" / "examples" / "branding.yaml"))


def test_the_report_is_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    urls = set(re.findall(r"""(?:src|href)=["']([^"']+)""", html)) | set(re.findall(r"url\(([^)]*)\)", html))
    assert all(u.startswith("data:") for u in urls), urls
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_charts_are_drawn_and_nothing_overflows_a4(html: str, tmp_path: Path) -> None:
    probe, dom = laid_out(html, tmp_path)
    assert probe["scroll"] <= probe["width"], probe
    assert probe["wide"] == [], probe
    assert dom.count('class="chart"') == 3 * 2  # daily uptime, response times, backups for each site
    assert dom.count('class="bar"') == 2 * 30  # a bar per day of November per site
    assert dom.count('class="line"') == 4  # a line per checked page
    assert dom.count('class="point"') == 4 * 30  # and a dot per day on it
    assert dom.count('class="gap"') == 1  # the missed backup of the first site


def test_it_prints_to_a4_pages_and_screenshots_are_kept(html: str, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    html_to_pdf(html, pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes and all(abs(float(w) - 595) < 2 and abs(float(h) - 842) < 2 for w, h in boxes), boxes
    screenshots(html, tmp_path, "report")
    keep = os.environ.get("CARESTACK_REPORT_SHOTS")
    if keep:
        shutil.copy(pdf, Path(keep) / "report.pdf")
