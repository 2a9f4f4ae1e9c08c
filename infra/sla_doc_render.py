"""Write an SLA document (infra.sla_doc) as Markdown or as one self-contained HTML page.

The HTML carries its style inline, loads nothing from elsewhere, and is laid
out for A4 paper: print it from a browser, or hand it to a PDF renderer.
"""

from __future__ import annotations

from html import escape

from infra.sla_doc import Document, Items, Paragraph, SlaDocError, Table

FORMATS = ("md", "html")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise SlaDocError(f"unknown format {fmt!r} (valid: {', '.join(FORMATS)})")
    return fmt


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", "", f"**{doc.subtitle}**", ""]
    for number, section in enumerate(doc.sections, start=1):
        lines += [f"## {number}. {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                lines += [block.text, ""]
            elif isinstance(block, Items):
                if block.heading:
                    lines += [block.heading, ""]
                lines += [f"- {item}" for item in block.items] + [""]
            else:
                header, *rows = block.rows
                lines.append("| " + " | ".join(_md_cell(c) for c in header) + " |")
                lines.append("|" + "|".join("---" for _ in header) + "|")
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# A4 portrait, margins for a binder; nothing is loaded from elsewhere.
_CSS = """
@page { size: A4; margin: 20mm 18mm 20mm 22mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 10.5pt; line-height: 1.45;
       color: #1d2430; max-width: 170mm; margin: 0 auto; padding: 12mm 0; }
h1 { font-size: 20pt; margin: 0 0 2mm; color: #12304f; }
.subtitle { font-size: 12pt; color: #4a5868; margin: 0 0 8mm; }
h2 { font-size: 13pt; color: #12304f; border-bottom: 0.4mm solid #c9d3de; padding-bottom: 1mm;
     margin: 7mm 0 2mm; break-after: avoid; page-break-after: avoid; }
section { break-inside: avoid-page; }
p { margin: 0 0 2mm; }
ul { margin: 0 0 3mm; padding-left: 6mm; }
li { margin: 0 0 1mm; overflow-wrap: anywhere; }
.heading { font-weight: bold; margin: 2mm 0 1mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; break-inside: avoid; }
th, td { text-align: left; padding: 1.5mm 2mm; border-bottom: 0.2mm solid #c9d3de; vertical-align: top; }
th { background: #eef2f6; font-weight: bold; }
@media print { body { padding: 0; max-width: none; } }
"""


def html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(doc.lang)}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(doc.title)} - {escape(doc.subtitle)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(doc.title)}</h1>",
        f'<p class="subtitle">{escape(doc.subtitle)}</p>',
    ]
    for number, section in enumerate(doc.sections, start=1):
        parts += ["<section>", f"<h2>{number}. {escape(section.title)}</h2>"]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                parts.append(f"<p>{escape(block.text)}</p>")
            elif isinstance(block, Items):
                if block.heading:
                    parts.append(f'<p class="heading">{escape(block.heading)}</p>')
                parts.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>")
            else:
                parts.append(_table(block))
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _table(table: Table) -> str:
    header, *rows = table.rows
    head = "<tr>" + "".join(f"<th>{escape(c)}</th>" for c in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def render(doc: Document, fmt: str) -> str:
    return html(doc) if check_format(fmt) == "html" else markdown(doc)
