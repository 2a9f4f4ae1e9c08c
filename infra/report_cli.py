"""`carestack report`: a client's SLA compliance report for a month or a range of days.

    carestack report STACK_FILE (--month YYYY-MM | --from DAY --to DAY)
                     [--format html|json|md|pdf] [--out PATH] [--lang en|nl]
    carestack report --all [--month YYYY-MM] --out DIR      (every client stack, and DIR/index.html)

Sources (each optional; a missing one leaves its sections saying so, never filled in):
- restic snapshots: --outputs FILE, the client stack's outputs (`pulumi stack output --show-secrets
  --json`, chmod 600); with --all, --outputs-dir DIR holding <client id>.outputs.json.
- monitoring history: Uptime Kuma, --credentials FILE (JSON url, username, password) or
  CARESTACK_KUMA_URL/_USERNAME/_PASSWORD.
- the support ledger: stacks/ledger.<client id>.csv beside the stack file, or --ledger FILE.
- branding: stacks/branding.yaml beside the stack file, or --branding FILE.
JSON is the document every other format is made from (docs/report.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.command import Verbs
from infra.evidence import EvidenceUnavailable, read_records
from infra.evidence_record import EvidenceRecord
from infra.kuma_client import KumaError, KumaLogin, KumaSession, connect, read_login
from infra.ledger import ledger_path, read_ledger
from infra.monitors.history import HistoryRangeError, read_timelines
from infra.monitors_cli import ENV_PASSWORD, ENV_URL, ENV_USER
from infra.plan import CarePlan, build_plan
from infra.report.access import ClientAccess, load_access, outputs_path
from infra.report.branding import Branding, branding_path, load_branding
from infra.report.build import Sources, build_report
from infra.report.overview import render_index
from infra.report.pdf import PdfError, html_to_pdf
from infra.report.period import Period, PeriodError, month_period, range_period
from infra.report.render_html import render_html
from infra.report.render_md import render_md
from infra.report.snapshots import RepositoryError, read_snapshots
from infra.report.text import LANGUAGES
from infra.spec import ClientSpec, SpecError, load_stack

FORMATS = ("html", "json", "md", "pdf")
# `--all` gathers this many clients side by side: their restic and S3 reads mostly wait (on the network
# and on each restic process's key derivation), and Kuma is read one client at a time over one session.
GATHER_WORKERS = 8
SUFFIX = {"html": ".html", "json": ".json", "md": ".md", "pdf": ".pdf"}

# Reads the Kuma history of a plan's monitors for a period: (timelines by monitor key, or None and why).
MonitoringReader = Callable[[CarePlan, Period], tuple[dict[str, Any] | None, str]]


class ReportUsageError(Exception):
    """Options that don't make a report: says which option and what would be valid."""


def no_monitoring(plan: CarePlan, period: Period) -> tuple[dict[str, Any] | None, str]:
    return None, "the monitoring history was not read (no Kuma login given: --credentials FILE or CARESTACK_KUMA_*)"


class KumaMonitoring:
    """Reads each client's monitors' history from Kuma over one session, opened at the first read (a
    login makes Kuma send the session every list it has: with `--all` it is paid once, not per client)
    and shared by the threads that gather clients, one read at a time. An unreachable Kuma is a note for
    every client, not an error; `close()` ends the session."""

    def __init__(self, login: KumaLogin) -> None:
        self.login = login
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()
        self._session: KumaSession | None = None
        self._unreachable = ""

    def __call__(self, plan: CarePlan, period: Period) -> tuple[dict[str, Any] | None, str]:
        with self._lock:
            if self._unreachable:
                return None, self._unreachable
            try:
                if self._session is None:
                    self._session = self._stack.enter_context(connect(self.login))
            except KumaError as e:
                self._unreachable = f"the monitoring history could not be read from {self.login.url}: {e}"
                return None, self._unreachable
            try:
                return dict(read_timelines(self._session, plan, period.start, period.end)), ""
            except (KumaError, HistoryRangeError) as e:
                if isinstance(e, KumaError):  # the session may be broken: the next client logs in again
                    self.close()
                return None, f"the monitoring history could not be read from {self.login.url}: {e}"

    def close(self) -> None:
        self._session = None
        self._stack.close()
        self._stack = contextlib.ExitStack()


def kuma_login(args: argparse.Namespace) -> KumaLogin | None:
    if args.credentials:
        return read_login(args.credentials)
    if os.environ.get(ENV_URL) or os.environ.get(ENV_PASSWORD):
        missing = [name for name in (ENV_URL, ENV_USER, ENV_PASSWORD) if not os.environ.get(name)]
        if missing:
            raise ReportUsageError(f"set {', '.join(missing)} as well (or give --credentials FILE)")
        return KumaLogin(os.environ[ENV_URL], os.environ[ENV_USER], os.environ[ENV_PASSWORD])
    return None


def period_of(args: argparse.Namespace, timezone: str, now: datetime) -> Period:
    if args.month and (args.from_ or args.to):
        raise ReportUsageError("give either --month or --from/--to, not both")
    if args.from_ or args.to:
        if not (args.from_ and args.to):
            raise ReportUsageError("--from and --to go together (--to is the first day not reported)")
        return range_period(args.from_, args.to, timezone, now)
    if args.month:
        return month_period(args.month, timezone, now)
    if args.all:
        return month_period(now.astimezone(UTC).strftime("%Y-%m"), timezone, now)
    raise ReportUsageError("which period? give --month YYYY-MM or --from YYYY-MM-DD --to YYYY-MM-DD")


def client_plan(stack: Path) -> CarePlan:
    spec = load_stack(stack)
    if not isinstance(spec, ClientSpec):
        raise ReportUsageError(f"{stack}: a platform stack has no care contract; give a client stack")
    return build_plan(spec)


def gather(
    plan: CarePlan, stack: Path, period: Period, outputs: Path | None, ledger: Path | None, monitoring: MonitoringReader
) -> Sources:
    """Every source the report reads; a bad ledger or outputs file is an error, a missing one a note."""
    sources = Sources()
    sources.timelines, note = monitoring(plan, period)
    if note:
        sources.notes["monitoring"] = note
    ledger_file = ledger or ledger_path(stack, plan.client.id)
    if ledger_file.exists() or ledger is not None:
        sources.ledger = read_ledger(ledger_file, plan)
    else:
        sources.notes["ledger"] = f"no support ledger at {ledger_file}"
    if outputs is None:
        for site in plan.sites:
            sources.notes[f"backups:{site.id}"] = "the repository was not read (no stack outputs given: --outputs FILE)"
        sources.notes["evidence"] = (
            "the agent's evidence records were not read (no stack outputs given: --outputs FILE)"
        )
        return sources
    access = load_access(outputs)
    for site in plan.sites:
        try:
            sources.snapshots[site.id] = read_snapshots(access, site.id)
        except RepositoryError as e:
            sources.notes[f"backups:{site.id}"] = str(e)
    read_evidence(access, plan, period, sources)
    return sources


def read_evidence(access: ClientAccess, plan: CarePlan, period: Period, sources: Sources) -> None:
    """Every site's records of the period; all or nothing, so no section counts from half the sites."""
    records: list[EvidenceRecord] = []
    try:
        bucket = access.evidence()
        for site in plan.sites:
            found = read_records(bucket, site.id, period.start, period.end)
            records += found
            sources.evidence_problems += [f"{p.key}: {p.reason}" for p in found.problems]
    except (EvidenceUnavailable, ValueError) as e:
        sources.notes["evidence"] = f"the agent's evidence records could not be read: {e}"
        return
    sources.evidence = records


def _branding(args: argparse.Namespace, stack: Path) -> Branding:
    path = args.branding or branding_path(stack)
    return load_branding(path) if (args.branding or path.exists()) else Branding()


def render(doc: dict[str, Any], fmt: str, lang: str, branding: Branding) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return render_md(doc, lang, branding.name)
    return render_html(doc, lang, branding)


def write(doc: dict[str, Any], fmt: str, lang: str, branding: Branding, out: Path | None) -> None:
    if fmt == "pdf":
        if out is None:
            raise ReportUsageError("--format pdf needs --out PATH")
        html_to_pdf(render_html(doc, lang, branding), out)
        return
    text = render(doc, fmt, lang, branding)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def report_one(args: argparse.Namespace, monitoring: MonitoringReader, now: datetime) -> int:
    plan = client_plan(args.stack)
    period = period_of(args, plan.client.timezone, now)
    sources = gather(plan, args.stack, period, args.outputs, args.ledger, monitoring)
    doc = build_report(plan, period, sources, now)
    write(doc, args.format, args.lang, _branding(args, args.stack), args.out)
    if args.out is not None:
        print(f"{args.out}: report of {plan.client.id} for {period.label} written ({args.format})", file=sys.stderr)
    return 0


def report_all(args: argparse.Namespace, monitoring: MonitoringReader, now: datetime) -> int:
    if args.out is None:
        raise ReportUsageError("--all writes one file per client and DIR/index.html: give --out DIR")
    folder = args.stacks or Path("stacks")
    stacks = sorted(folder.glob("Pulumi.*.yaml"))
    if not stacks:
        raise ReportUsageError(f"--stacks {folder}: no Pulumi.<stack>.yaml files there")
    args.out.mkdir(parents=True, exist_ok=True)
    docs, links, label = [], {}, ""
    branding = _branding(args, stacks[0])
    fmt = "html" if args.format == "pdf" else args.format
    clients: list[tuple[Path, CarePlan, Period, Path | None]] = []
    for stack in stacks:
        spec = load_stack(stack)
        if not isinstance(spec, ClientSpec):
            continue
        plan = build_plan(spec)
        outputs = None
        if args.outputs_dir is not None and outputs_path(args.outputs_dir, plan.client.id).exists():
            outputs = outputs_path(args.outputs_dir, plan.client.id)
        clients.append((stack, plan, period_of(args, plan.client.timezone, now), outputs))
    with ThreadPoolExecutor(max_workers=GATHER_WORKERS) as pool:
        gathered = list(pool.map(lambda c: gather(c[1], c[0], c[2], c[3], None, monitoring), clients))
    for (_, plan, period, _), sources in zip(clients, gathered, strict=True):
        label = period.label
        doc = build_report(plan, period, sources, now)
        name = f"{plan.client.id}{SUFFIX[fmt]}"
        write(doc, fmt, args.lang, branding, args.out / name)
        if args.format == "pdf":
            html_to_pdf(render_html(doc, args.lang, branding), args.out / f"{plan.client.id}.pdf")
        docs.append(doc)
        links[plan.client.id] = name
    (args.out / "index.html").write_text(render_index(docs, links, args.lang, branding, label), encoding="utf-8")
    print(f"{args.out}: {len(docs)} client report(s) and index.html written", file=sys.stderr)
    return 0


def run(args: argparse.Namespace, monitoring: MonitoringReader | None = None, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    try:
        if monitoring is None:
            login = kuma_login(args)
            monitoring = no_monitoring if login is None else KumaMonitoring(login)
        if args.all == (args.stack is not None):
            raise ReportUsageError("give a STACK_FILE, or --all for every client stack (not both)")
        with contextlib.closing(monitoring) if isinstance(monitoring, KumaMonitoring) else contextlib.nullcontext():
            return report_all(args, monitoring, now) if args.all else report_one(args, monitoring, now)
    except (ReportUsageError, PeriodError) as exc:
        print(f"carestack report: {exc}", file=sys.stderr)
        return 2
    except (SpecError, PdfError, KumaError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"carestack report: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1


def register(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "report",
        help="write a client's SLA compliance report (uptime, incidents, backups, updates, support, credits)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("stack", type=Path, nargs="?", metavar="STACK_FILE")
    parser.add_argument("--all", action="store_true", help="every client stack in --stacks, plus DIR/index.html")
    parser.add_argument("--month", metavar="YYYY-MM", help="a month in the client's time zone (to date if current)")
    parser.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first day reported")
    parser.add_argument("--to", metavar="YYYY-MM-DD", help="first day not reported")
    parser.add_argument("--format", default="html", choices=FORMATS, help="html (default), json, md or pdf")
    parser.add_argument("--out", type=Path, metavar="PATH", help="file (or with --all: directory) to write")
    parser.add_argument("--lang", default="en", choices=LANGUAGES, help="language of the report (default: en)")
    parser.add_argument("--outputs", type=Path, metavar="FILE", help="the client stack's outputs (S3, restic)")
    parser.add_argument("--outputs-dir", type=Path, metavar="DIR", help="with --all: <client id>.outputs.json files")
    parser.add_argument("--stacks", type=Path, metavar="DIR", help="with --all: where the stack files are (stacks/)")
    parser.add_argument("--credentials", type=Path, metavar="FILE", help="Uptime Kuma: JSON url, username, password")
    parser.add_argument("--ledger", type=Path, metavar="FILE", help="the support ledger (default: beside the stack)")
    parser.add_argument("--branding", type=Path, metavar="FILE", help="agency name and logo (stacks/branding.yaml)")
    parser.set_defaults(run=lambda args: run(args))
