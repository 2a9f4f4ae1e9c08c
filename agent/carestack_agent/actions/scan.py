"""scan SITE: the security scan; `scan SITE --accept` takes the known-good baseline.

Every check in `scan.all_checks()` looks at the site and compares with the
baseline under <state_dir>/scan/<site>/ (root-only, 0600): every file's path,
size, mode, owner and sha256, and the database facts. The first scan of a site
without a baseline takes one (the site as onboarded) and says so; the scan the
CLI runs right after a successful update moves the baseline on to the updated
files unless anything critical or high is found.
Critical or high findings fail the job, so its heartbeat pushes the SCAN
monitor down with a summary; every finding goes to the journal's end record and
the last full result to <state_dir>/scan/<site>/last.json; the bucket gets the
counts and the top findings' lines (the job's evidence record) and each baseline
taken, compressed. A check that could
not look (yara missing, database down) fails the scan too: "nothing found" is
never claimed for a check that did not run.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import Counter
from pathlib import Path

from .. import exitcodes
from ..config import Config, Scan
from ..evidence import compressed_json
from ..jobs import Context, JobFailed, JobResult, Settle, run_job
from ..journal import now_iso
from ..scan import all_checks
from ..scan import database as scan_database
from ..scan.base import (
    ALARMING,
    SEVERITIES,
    Baseline,
    CheckError,
    DatabaseTarget,
    Finding,
    ScanSite,
    rank,
    table_prefix,
)
from ..scan.files import cache_of, inventory, read_json, write_private
from ..scan.patterns import RULES_DIR

log = logging.getLogger("carestack_agent.scan")
BASELINE_ATTACHMENT = "scan-baseline"  # evidence/<site>/scan-baseline/<YYYY>/<MM>/<ended>-<run_id>.json.gz
JOURNALED = 200  # findings written into the journal's end record; last.json has all


def scan_dir(config: Config, site_id: str) -> Path:
    return config.agent.state_dir / "scan" / site_id


def baseline_file(config: Config, site_id: str) -> Path:
    return scan_dir(config, site_id) / "baseline.json"


def hashes_file(config: Config, site_id: str) -> Path:
    """The previous walk's inventory: the hash cache of the next one (never the reference)."""
    return scan_dir(config, site_id) / "hashes.json"


def regenerated(root: Path, exclude: tuple[str, ...]) -> tuple[str, ...]:
    """The site's backup excludes that are plain directories inside its root (caches), as relative prefixes."""
    out = []
    for pattern in exclude:
        path = Path(pattern)
        if path.is_absolute() and path.is_relative_to(root) and not any(c in pattern for c in "*?["):
            out.append(str(path.relative_to(root)).rstrip("/") + "/")
    return tuple(p for p in out if p != "./")


def scan_site(config: Config, site_id: str, files: dict[str, dict[str, object]]) -> ScanSite:
    site = config.site(site_id)
    settings = site.scan or Scan()
    db = (
        DatabaseTarget(site.database.name, site.database.socket, table_prefix(site.root))
        if site.database is not None
        else None
    )
    others = tuple(s.root for s in config.sites.values() if s.id != site.id and s.root != site.root)
    return ScanSite(
        id=site.id, domain=site.domain, root=site.root, kind=site.kind, upload_dirs=settings.upload_dirs,
        database=db, mariadb=config.agent.mariadb, yara=config.agent.yara, rules_dir=RULES_DIR,
        feed=settings.feed, core_checksums=settings.core_checksums, other_roots=others, files=files,
        nice=config.agent.nice, cache_dir=scan_dir(config, site_id), regenerated=regenerated(site.root, site.exclude),
    )  # fmt: skip


def load_baseline(config: Config, site_id: str) -> Baseline | None:
    data = read_json(baseline_file(config, site_id))
    if data is None:
        return None
    try:
        return Baseline.from_json(data)
    except ValueError as e:
        raise JobFailed(
            f"{baseline_file(config, site_id)}: {e}; take a new one with `scan {site_id} --accept`"
        ) from None


def walk(ctx: Context, *, trust_cache: bool) -> dict[str, dict[str, object]]:
    cached = read_json(hashes_file(ctx.config, ctx.site.id)) if trust_cache else None
    started = time.monotonic()
    files, hashed = inventory(ctx.site.root, cached if isinstance(cached, dict) else None)
    write_private(hashes_file(ctx.config, ctx.site.id), cache_of(files))
    ctx.figures.update(files=len(files), hashed=hashed, walk_seconds=round(time.monotonic() - started, 3))
    return files


def take_baseline(ctx: Context, site: ScanSite) -> Baseline:
    baseline = Baseline(now_iso(), site.files, scan_database.state(site))
    write_private(baseline_file(ctx.config, ctx.site.id), baseline.to_json())
    # A copy beside the run's evidence in the client's bucket: it outlives the server (and its root).
    ctx.attachments[BASELINE_ATTACHMENT] = compressed_json(baseline.to_json())
    return baseline


def summary(findings: list[Finding]) -> str:
    if not findings:
        return "no findings"
    counts = Counter(f.severity for f in findings)
    parts = ", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s])
    top = "; ".join(f.message for f in findings[:3])
    return f"{len(findings)} finding(s) ({parts}): {top}"


def do_accept(ctx: Context) -> str:
    files = walk(ctx, trust_cache=False)
    try:
        baseline = take_baseline(ctx, scan_site(ctx.config, ctx.site.id, files))
    except CheckError as e:
        raise JobFailed(f"baseline not taken: {e}") from None
    db = baseline.database
    extra = (
        f", {len(db.get('admins', []))} administrator(s), {len(db.get('cron_hooks', []))} cron hook(s)" if db else ""
    )
    return f"baseline taken: {len(files)} files{extra}"


def do_scan(ctx: Context, *, after_update: bool = False) -> str:
    """The scan; `after_update`: file changes are the update's (info), and the baseline moves on to them
    unless another check raised something critical or high (then the old baseline stays, so the changes
    are reported again until an operator looks)."""
    # Walk first, then load the baseline: the hash cache is freed before the baseline is read (peak memory).
    site = scan_site(ctx.config, ctx.site.id, walk(ctx, trust_cache=True))
    baseline = load_baseline(ctx.config, ctx.site.id)
    findings: list[Finding] = []
    failed: list[str] = []
    for check in all_checks():
        started = time.monotonic()
        try:
            found = check.run(site, baseline)
        except CheckError as e:
            failed.append(f"{check.name}: {e}")
            continue
        if after_update and check.name == "integrity":
            found = [dataclasses.replace(f, severity="info", message=f"after the update: {f.message}") for f in found]
        findings += found
        ctx.figures[f"{check.name}_seconds"] = round(time.monotonic() - started, 3)
    findings = rank(findings)
    note = ""
    if (baseline is None or after_update) and not failed and not any(f.severity in ALARMING for f in findings):
        take_baseline(ctx, site)
        note = "; baseline moved to the updated site" if baseline else "; no baseline yet: took one now"
    counts = Counter(f.severity for f in findings)
    ctx.figures.update({s: counts[s] for s in SEVERITIES})
    ctx.figures["findings"] = [f.to_json() for f in findings[:JOURNALED]]
    write_private(
        scan_dir(ctx.config, ctx.site.id) / "last.json",
        {"run_id": ctx.run_id, "at": now_iso(), "failed_checks": failed, "findings": [f.to_json() for f in findings]},
    )
    text = summary(findings) + note
    if failed:
        raise JobFailed(f"{len(failed)} check(s) could not run: {'; '.join(failed)}; {text}", exitcodes.FAILED)
    if any(f.severity in ALARMING for f in findings):
        raise JobFailed(text, exitcodes.FAILED)
    return text


def scan(
    config: Config,
    site_id: str,
    *,
    accept: bool = False,
    after_update: bool = False,
    wait: bool = False,
    settle: Settle | None = None,
) -> JobResult:
    site = config.site(site_id)
    timeout = site.jobs.scan_timeout_seconds
    body = do_accept if accept else functools.partial(do_scan, after_update=after_update)
    # Accepting is an operator's act, not the weekly job: it pushes no heartbeat.
    return run_job(config, site_id, "scan", body, timeout=timeout, wait=wait, push=not accept, settle=settle)
