"""`carestack sla-doc STACK_FILE [--lang en|nl] [--format md|html] [--out PATH]`: the client's SLA text.

Every number in the document comes from the client's CarePlan (tier catalog +
stack). Without --out the document goes to standard output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.command import Verbs
from infra.plan import build_plan
from infra.sla_doc import LANGUAGES, SlaDocError, build_document, check_language
from infra.sla_doc_render import FORMATS, check_format, render
from infra.spec import Catalog, ClientSpec, SpecError, load_stack


def sla_document(stack: Path, lang: str = "en", fmt: str = "md", catalog: Catalog | None = None) -> str:
    """The SLA text of a client stack; SpecError for a bad stack, SlaDocError for bad options."""
    check_language(lang)
    check_format(fmt)
    spec = load_stack(stack, catalog)
    if not isinstance(spec, ClientSpec):
        raise SlaDocError(f"{stack}: a platform stack has no care contract; give a client stack")
    return render(build_document(build_plan(spec), lang), fmt)


def _run(args: argparse.Namespace) -> int:
    try:
        text = sla_document(args.stack, args.lang, args.format)
    except (SpecError, SlaDocError) as exc:
        print(exc, file=sys.stderr)
        return 2 if isinstance(exc, SlaDocError) else 1
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{args.out}: can't write the document: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{args.out}: SLA document written ({args.format}, {args.lang})", file=sys.stderr)
    return 0


def register(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "sla-doc",
        help="write the client-facing SLA text of a client stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", type=Path, metavar="STACK_FILE")
    parser.add_argument("--lang", default="en", choices=LANGUAGES, help="language of the text (default: en)")
    parser.add_argument("--format", default="md", choices=FORMATS, help="md or self-contained html (default: md)")
    parser.add_argument("--out", type=Path, metavar="PATH", help="write here instead of standard output")
    parser.set_defaults(run=_run)
