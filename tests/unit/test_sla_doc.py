"""`carestack sla-doc`: the client's SLA text in both languages and formats, every number from the plan."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.plan import build_plan
from infra.sla_doc import LANGUAGES, SlaDocError, build_document
from infra.sla_doc_cli import sla_document
from infra.sla_doc_text import APT, CHANNEL, DAYS, HOSTING, KEEP, TEXT, WORDPRESS
from infra.spec import ClientSpec, example_stacks, load_catalog, load_stack

ROOT = Path(__file__).resolve().parents[2]
CLIENT_STACKS = [p for p in example_stacks() if isinstance(load_stack(p), ClientSpec)]
STUDIO = ROOT / "stacks" / "Pulumi.studio.yaml"


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("lang", ["en", "nl"])
@pytest.mark.parametrize("stack", CLIENT_STACKS, ids=lambda p: p.name)
def test_renders_for_every_example_stack(stack: Path, lang: str, fmt: str) -> None:
    spec = load_stack(stack)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    text = sla_document(stack, lang, fmt)
    assert plan.client.name in text
    for site in plan.sites:
        assert site.url in text
    sections = re.findall(r"^## \d+\. (.+)$", text, re.M) if fmt == "md" else re.findall(r"<h2>\d+\. (.+?)</h2>", text)
    assert len(sections) == 12
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in text


def test_html_is_self_contained_and_prints_to_a4() -> None:
    text = sla_document(STUDIO, "en", "html")
    assert "@page { size: A4;" in text
    # nothing fetched from elsewhere: no scripts, links, images, imports or CSS urls
    for needle in ("<script", "<link", "<img", "src=", "href=", "@import", "url("):
        assert needle not in text
    assert "<style>" in text and "<table>" in text


def test_every_number_comes_from_the_plan() -> None:
    spec = load_stack(STUDIO)
    assert isinstance(spec, ClientSpec)
    plan = build_plan(spec)
    text = sla_document(STUDIO, "en", "md")
    sla = plan.sla
    assert f"The uptime target is {sla.uptime_target_percent} % of each calendar month." in text
    assert f"{sla.downtime_budget_minutes_per_month} minutes of downtime per month" in text
    assert f"{sla.downtime_budget_hours_per_year} hours per year" in text
    assert "| critical | 15 minutes | 2 hours |" in text and "| low | next business day | 5 business days |" in text
    assert "Every Tuesday from 06:00, for 2 hours (Europe/Berlin)." in text
    assert "Backups run every hour at :15; at most 1 hour of changes can be lost." in text
    assert "Kept: 24 hourly, 14 daily and 4 weekly" in text
    assert "alerted within 5 minutes by e-mail, text message (SMS) and webhook" in text
    assert "restored onto a standby server within 3 hours and can run there for up to 30 days" in text
    assert "| 99 % | 25 % of the monthly fee (EUR 45.00) |" in text
    assert "Credits are capped at 100 % of the monthly fee (EUR 180.00) per month." in text
    assert "The time bank includes 4 hours of support work each month." in text
    assert "Scheduled restore drills are not part of this tier." in text


def test_dutch_words_numbers_and_money() -> None:
    text = sla_document(ROOT / "stacks" / "Pulumi.shop.yaml", "nl", "md")
    assert "De beschikbaarheidsnorm is 99,95 % van elke kalendermaand." in text
    assert "| 99,5 % | 25 % van het maandbedrag (EUR 162,50) |" in text
    assert "| kritiek | 15 minuten | 2 uur |" in text
    assert "Back-ups zijn 7 dagen onveranderbaar" in text
    assert "Een hersteloefening vindt elke maand op dag 1 om 05:00 plaats" in text
    assert "Elke dinsdag vanaf 06:00" in text


def test_without_a_fee_credits_are_percentages() -> None:
    text = sla_document(ROOT / "stacks" / "Pulumi.bakery.yaml", "en", "md")
    assert "| 99.5 % | 10 % of the monthly fee |" in text
    assert "EUR" not in text
    assert "Credits are capped at 50 % of the monthly fee per month." in text
    assert "Failover to a standby server (not part of this tier)." in text


def _studio_with(tmp_path: Path, change: Any) -> Path:
    document = yaml.safe_load(STUDIO.read_text())
    change(document["config"])
    path = tmp_path / "Pulumi.studio.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def test_a_changed_tier_value_changes_the_document(tmp_path: Path) -> None:
    before = sla_document(STUDIO, "en", "md")
    catalog = yaml.safe_load((ROOT / "infra" / "catalog" / "tiers.yaml").read_text())
    standard = catalog["tiers"]["standard"]
    standard["sla"]["time_bank"]["per_month"] = "6h"
    standard["sla"]["severities"]["critical"]["response"] = "30m"
    standard["monitoring"]["alert_within"] = "10m"
    catalog_path = tmp_path / "tiers.yaml"
    catalog_path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    after = sla_document(STUDIO, "en", "md", catalog=load_catalog(catalog_path))
    assert "includes 4 hours of support" in before and "includes 6 hours of support" in after
    assert "| critical | 15 minutes | 2 hours |" in before and "| critical | 30 minutes | 2 hours |" in after
    assert "alerted within 5 minutes" in before and "alerted within 10 minutes" in after


def test_a_stack_override_changes_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def lower_target(config: dict[str, Any]) -> None:
        config["carestack:overrides"]["sla"] = {
            "uptime_target": 99.0,
            "credits": {"bands": [{"below": 99.0, "percent": 20}]},
        }

    stack = _studio_with(tmp_path, lower_target)
    out = tmp_path / "sla.html"
    assert main(["sla-doc", str(stack), "--lang", "en", "--format", "html", "--out", str(out)]) == 0
    text = out.read_text()
    assert "The uptime target is 99 % of each calendar month." in text
    spec = load_stack(stack)
    assert isinstance(spec, ClientSpec)
    assert f"{build_plan(spec).sla.downtime_budget_minutes_per_month} minutes of downtime" in text
    assert "<td>99 %</td><td>20 % of the monthly fee (EUR 36.00)</td>" in text
    assert "SLA document written (html, en)" in capsys.readouterr().err


def test_cli_writes_markdown_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sla-doc", str(STUDIO), "--lang", "nl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Service level agreement\n") and "## 4. Prioriteiten, reactie- en oplostijden" in out


@pytest.mark.parametrize(("option", "value"), [("--lang", "de"), ("--format", "pdf")])
def test_cli_rejects_unknown_language_and_format(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sla-doc", str(STUDIO), option, value])
    assert exited.value.code == 2
    valid = "'en', 'nl'" if option == "--lang" else "'md', 'html'"
    assert f"argument {option}: invalid choice: '{value}' (choose from {valid})" in capsys.readouterr().err


def test_unknown_language_and_format_are_named_errors() -> None:
    with pytest.raises(SlaDocError, match=r"unknown language 'de' \(valid: en, nl\)"):
        sla_document(STUDIO, "de", "md")
    with pytest.raises(SlaDocError, match=r"unknown format 'pdf' \(valid: md, html\)"):
        sla_document(STUDIO, "en", "pdf")
    spec = load_stack(STUDIO)
    assert isinstance(spec, ClientSpec)
    with pytest.raises(SlaDocError, match="unknown language 'fr'"):
        build_document(build_plan(spec), "fr")


def test_cli_names_a_bad_stack_and_a_platform_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def bad_fee(config: dict[str, Any]) -> None:
        config["carestack:fee"]["currency"] = "Euro"

    assert main(["sla-doc", str(_studio_with(tmp_path, bad_fee))]) == 1
    assert "carestack:fee.currency: expected an ISO 4217 currency code" in capsys.readouterr().err
    assert main(["sla-doc", str(ROOT / "stacks" / "Pulumi.platform.yaml")]) == 2
    assert "a platform stack has no care contract; give a client stack" in capsys.readouterr().err


def test_html_prints_to_a4_in_a_real_browser(tmp_path: Path) -> None:
    html_file, pdf = tmp_path / "sla.html", tmp_path / "sla.pdf"
    html_file.write_text(sla_document(ROOT / "stacks" / "Pulumi.shop.yaml", "nl", "html"))
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--print-to-pdf={pdf}",
            html_file.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    # A4 is 210 x 297 mm = 595.3 x 841.9 points; a dozen short sections fit on a few pages
    assert boxes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)
    assert 1 <= len(re.findall(rb"/Type\s*/Page\b", data)) <= 4


def test_every_language_words_every_sentence_and_value() -> None:
    assert LANGUAGES == ("en", "nl")
    for table in (TEXT, DAYS, CHANNEL, KEEP, APT, WORDPRESS, HOSTING):
        keys = {lang: set(words) if isinstance(words, dict) else len(words) for lang, words in table.items()}
        assert set(keys) == set(LANGUAGES) and keys["en"] == keys["nl"]
