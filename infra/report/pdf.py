"""`--format pdf`: the HTML report printed to A4 by headless Chromium.

Chromium rather than WeasyPrint: it is the browser the screenshot test already drives, so the PDF is
the page the test checked (inline SVG included, which WeasyPrint renders only in part), and it needs
no Python extra. Debian: `apt install chromium`. The page's own @page rule sets A4 and margins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_SECONDS = 120


class PdfError(Exception):
    """No PDF could be made: says why and what to install."""


def browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError(f"--format pdf needs a headless Chromium ({' or '.join(BROWSERS)}); on Debian: apt install chromium")


def headless_args(profile: str) -> list[str]:
    args = ["--headless", "--disable-gpu", "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
    return args


def html_to_pdf(html: str, out: Path) -> None:
    exe = browser()
    with tempfile.TemporaryDirectory(prefix="carestack-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        target = Path(tmp) / "report.pdf"
        command = [
            exe,
            *headless_args(str(Path(tmp) / "profile")),
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{exe} did not print the report within {TIMEOUT_SECONDS} s") from None
        if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise PdfError(f"{exe} made no PDF (exit {done.returncode}): {last}")
        shutil.move(str(target), out)
