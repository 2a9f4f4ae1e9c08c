"""The scan's pieces that need no site: the vulnerability feed's format and errors, version ranges,
ranking, what counts as code under uploads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from carestack_agent.scan.base import CheckError, Finding, rank
from carestack_agent.scan.uploads import _runs
from carestack_agent.scan.vulns import affected, load_feed


def test_version_ranges_compare_the_way_wordpress_does() -> None:
    assert affected("5.0.1", ">=4.0 <5.0.2")
    assert not affected("5.0.2", ">=4.0 <5.0.2")
    assert affected("5.0-beta1", "<5.0")  # a beta comes before its release
    assert not affected("3.9", ">=4.0 <5.0.2")
    assert affected("1.2", "=1.2") and affected("1.2", "<=1.2")


def test_a_bad_feed_names_every_broken_entry_and_field(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps({"format": 1, "vulnerabilities": [
        {"type": "plugin", "slug": "ok", "affected": "<1.0", "fixed_in": "1.0", "reference": "R-1"},
        {"type": "addon", "slug": "x", "affected": "<1.0", "reference": "R-2"},
        {"type": "theme", "slug": "", "affected": "about 1.0", "reference": "R-3", "severity": "urgent"},
    ]}))  # fmt: skip
    with pytest.raises(CheckError) as e:
        load_feed(str(feed))
    text = str(e.value)
    assert "vulnerabilities[1].type: must be one of plugin, theme, core, got 'addon'" in text
    assert "vulnerabilities[2].slug: must be a non-empty string" in text
    assert "vulnerabilities[2].affected: not a version comparison: 'about'" in text
    assert "vulnerabilities[2].severity: must be one of critical, high, medium, info, got 'urgent'" in text
    assert "vulnerabilities[0]" not in text


def test_a_feed_that_is_not_the_format_says_what_it_must_be(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text("[]")
    with pytest.raises(CheckError, match=re.escape('must be {"format": 1, "vulnerabilities"')):
        load_feed(str(feed))
    with pytest.raises(CheckError, match="cannot read it"):
        load_feed(str(tmp_path / "missing.json"))


def test_code_under_uploads_includes_double_extensions_and_server_config() -> None:
    assert _runs("wp-content/uploads/a/shell.php.jpg")
    assert _runs("wp-content/uploads/.htaccess") and _runs("wp-content/uploads/x.PHTML")
    assert not _runs("wp-content/uploads/2026/photo.jpg") and not _runs("wp-content/uploads/notes.phpish.txt")


def test_findings_rank_by_severity_then_executable_files_first() -> None:
    findings = [
        Finding("integrity", "info", "a", "wp-content/uploads/a.jpg"),
        Finding("integrity", "high", "b", "readme.html"),
        Finding("integrity", "high", "c", "wp-content/themes/t/x.js"),
        Finding("core", "critical", "d", "wp-includes/x.php"),
    ]
    assert [f.message for f in rank(findings)] == ["d", "c", "b", "a"]
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding("x", "severe", "y")
