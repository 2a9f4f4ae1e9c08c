"""`carestack failover` / `carestack failback`: a client's sites onto the standby and back, fenced.

Failover, for the chosen sites of a client whose server is lost:
  refusals first (tier without failover, site already failed over, standby without
  room, a traffic switch that cannot work) -> lease "restoring" (every server's
  agent refuses the sites' jobs) -> converge the standby with the plans placed on
  it plus this one -> restore each site's latest complete snapshot -> every checked
  page answers on the standby -> switch traffic -> lease held by the standby (its
  jobs run) -> evidence (measured RTO and RPO) in the client's bucket.
Failback: a final backup on the standby -> restore onto the own server -> verify ->
  switch back -> release the lease -> the sites removed from the standby (their
  timers, files, databases, vhosts, users; the client's drills placed again) -> evidence.

Where the servers are and how they are reached is a `Realm`: production builds
one from the stack and its outputs (`infra.failover_cli`), the lab from its
state (`lab.failover`). This module never knows which.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from infra.evidence_record import SCHEMA_VERSION as EVIDENCE_SCHEMA
from infra.evidence_record import record_key
from infra.failover_lease import Lease, LeaseStore
from infra.failover_room import Room, room_problem
from infra.plan import CarePlan, SitePlan
from infra.traffic.base import DnsRecord, SwitchError, TrafficSwitch

RESTORING = "carestack failover"  # the lease's holder while no server may run the sites' jobs
PAGE_ATTEMPTS = 10  # PHP-FPM and opcache may take a few seconds after a restore


class FailoverError(Exception):
    pass


@dataclass(frozen=True)
class AgentAnswer:
    returncode: int
    stdout: str
    stderr: str

    def tail(self) -> str:
        return " | ".join((self.stderr or self.stdout).strip().splitlines()[-5:])


@dataclass(frozen=True)
class Standby:
    name: str
    size: Room  # from the platform stack


class Realm(Protocol):
    """Where a client's servers and bucket are, and how the controller reaches them."""

    def standby(self) -> Standby: ...

    def address(self, server: str) -> str:
        """The address the sites' traffic goes to on that server (DNS A record)."""

    def placed_on(self, server: str, exclude: str) -> list[CarePlan]:
        """The plans of other clients whose sites run on `server` now (for room and for its converge)."""

    def leases(self, plan: CarePlan) -> LeaseStore: ...

    def bucket_client(self, plan: CarePlan) -> Any:
        """A boto3 S3 client allowed to write in the plan's bucket (evidence records)."""

    def converge(self, server: str, plans: Sequence[CarePlan], echo: Callable[[str], None]) -> None:
        """Converge `server` with exactly these plans placed on it."""

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer: ...

    def clear_standby(self, server: str, plan: CarePlan, sites: Sequence[SitePlan]) -> None:
        """After a failback: the sites off `server` (their timers, files, databases, vhosts, users), and the
        client's restore drills placed there again."""

    def fetch(self, server: str, domain: str, path: str) -> tuple[int | None, str]:
        """A page of a site from that server (by address, the domain in the Host header)."""

    def switch(self, plan: CarePlan) -> TrafficSwitch: ...


@dataclass
class SiteOutcome:
    site: str
    snapshot_time: str | None = None
    rpo_seconds: float | None = None
    pages_ok: int = 0


@dataclass
class Outcome:
    client: str
    action: str  # "failover" | "failback"
    server: str  # where the sites run now
    sites: list[SiteOutcome]
    steps: dict[str, float] = field(default_factory=dict)
    rto_seconds: float = 0.0
    rto_target_minutes: int = 0
    switched: str = ""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def on_server(plan: CarePlan, server: str, sites: Sequence[SitePlan] | None = None) -> CarePlan:
    """The client's plan with (some of) its sites placed on another server; everything else as the plan says.

    Placed there, the sites are pending: their names point at their own server until traffic is switched,
    so the CA would validate the order on the lost server and the converge would fail. The standby
    serves them with its self-signed certificate until a converge after the switch orders theirs."""
    chosen = plan.sites if sites is None else sites
    pending = tuple(dataclasses.replace(site, dns="pending") for site in chosen)
    return dataclasses.replace(plan, hosting=dataclasses.replace(plan.hosting, server=server), sites=pending)


def job_timers(plan: CarePlan) -> list[str]:
    """The timers of the plan's sites' jobs on their own server (the drills run on the standby)."""
    return [f"carestack-{job.name}@{site.id}.timer" for site in plan.sites for job in site.jobs if not job.on_standby]


def _chosen(plan: CarePlan, site_ids: Sequence[str]) -> list[SitePlan]:
    known = {site.id: site for site in plan.sites}
    names = {site.name: site for site in plan.sites}
    chosen = []
    for wanted in site_ids:
        site = known.get(wanted) or names.get(wanted)
        if site is None:
            raise FailoverError(f"--site {wanted}: no such site of {plan.client.id} (sites: {', '.join(known)})")
        chosen.append(site)
    return chosen or list(plan.sites)


class _Clock:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()
        self.steps: dict[str, float] = {}

    def step(self, name: str, what: str, run: Callable[[], str]) -> None:
        self.out.write(f"- {what} ...\n")
        self.out.flush()
        began = time.monotonic()
        note = run()
        self.steps[name] = round(time.monotonic() - began, 1)
        self.out.write(f"  {note} ({self.steps[name]:.1f}s)\n")
        self.out.flush()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


# --- failover ------------------------------------------------------------------


def failover_refusal(realm: Realm, plan: CarePlan, sites: Sequence[SitePlan]) -> None:
    """Every reason not to start, before anything changes."""
    if plan.sla.failover is None:
        raise FailoverError(
            f"{plan.client.id}: its tier {plan.client.tier} has no failover (no sla.failover): "
            "the standby does not take its sites"
        )
    standby = realm.standby()
    leases = realm.leases(plan)
    held = [(site.id, leases.get(site.id)) for site in sites]  # a failover cut short (RESTORING) may be repeated
    already = [
        f"{site} is held by {lease.holder} since {lease.since:%Y-%m-%d %H:%M} UTC"
        for site, lease in held
        if lease and lease.holder != RESTORING
    ]
    if already:
        raise FailoverError(f"{plan.client.id} is already failed over: {'; '.join(already)} (fail back first)")
    if plan.hosting.server == standby.name:
        raise FailoverError(f"{plan.client.id}: its sites already run on the standby {standby.name}")
    placed = realm.placed_on(standby.name, exclude=plan.client.id)
    if problem := room_problem(standby.name, standby.size, placed, on_server(plan, standby.name, sites)):
        raise FailoverError(problem)
    try:
        realm.switch(plan).check(_records(realm, plan, sites, standby.name))
    except SwitchError as exc:
        raise FailoverError(f"traffic switch {plan.sla.failover.traffic}: {exc}") from None


def _records(realm: Realm, plan: CarePlan, sites: Sequence[SitePlan], server: str) -> list[DnsRecord]:
    assert plan.sla.failover is not None
    address = realm.address(server)
    return [DnsRecord(site.domain, "A", address, plan.sla.failover.dns_ttl_seconds) for site in sites]


def failover(
    realm: Realm, plan: CarePlan, site_ids: Sequence[str] = (), *, out: TextIO, dry_run: bool = False
) -> Outcome:
    sites = _chosen(plan, site_ids)
    failover_refusal(realm, plan, sites)
    assert plan.sla.failover is not None
    standby = realm.standby().name
    primary = plan.hosting.server
    outcome = Outcome(plan.client.id, "failover", standby, [SiteOutcome(s.id) for s in sites])
    outcome.rto_target_minutes = plan.sla.failover.rto_minutes
    placed = realm.placed_on(standby, exclude=plan.client.id)
    records = _records(realm, plan, sites, standby)
    if dry_run:
        out.write(_failover_steps(plan, sites, standby, placed, records))
        outcome.dry_run = True
        return outcome
    clock = _Clock(out)
    leases = realm.leases(plan)
    began = datetime.now(UTC)

    def fence() -> str:
        for site in sites:
            leases.put(Lease(plan.client.id, site.id, RESTORING, primary, began, f"restoring onto {standby}"))
        return f"lease/<site>.json written for {len(sites)} site(s): no server runs their jobs now"

    clock.step("fence", f"fence {', '.join(s.id for s in sites)}", fence)
    here = on_server(plan, standby, sites)
    clock.step(
        "converge",
        f"{standby}: converge with {plan.client.id}'s plan",
        lambda: _converge(realm, standby, [*placed, here], out),
    )
    clock.step(
        "restore",
        f"{standby}: restore each site's latest complete snapshot",
        lambda: _restore(realm, standby, sites, outcome, began, plan.backup.restore_timeout_seconds),
    )
    clock.step("pages", f"{standby}: every checked page answers", lambda: _verify(realm, standby, sites, outcome))
    switch = realm.switch(plan)
    clock.step("switch", f"switch traffic to {standby} ({switch.name})", lambda: _switch(switch, records, outcome, out))
    outcome.rto_seconds = round(clock.elapsed, 1)

    limit = plan.sla.failover

    def hold() -> str:
        for site in sites:
            leases.put(
                Lease(plan.client.id, site.id, standby, primary, began, "failover",
                      began + timedelta(days=limit.warn_after_days), began + timedelta(days=limit.max_days))
            )  # fmt: skip
        return f"{standby} holds the sites: its jobs run, {primary}'s refuse"

    clock.step("lease", f"lease the sites to {standby}", hold)
    outcome.steps = clock.steps
    _evidence(realm, plan, outcome, began)
    out.write(
        f"{plan.client.id} runs on {standby} after {outcome.rto_seconds:.0f}s; "
        f"the plan promises {outcome.rto_target_minutes} min (max {plan.sla.failover.max_days} days on the standby)\n"
    )
    return outcome


def _failover_steps(
    plan: CarePlan, sites: Sequence[SitePlan], standby: str, placed: Sequence[CarePlan], records: Sequence[DnsRecord]
) -> str:
    assert plan.sla.failover is not None
    ids = ", ".join(site.id for site in sites)
    beside = ", ".join(p.client.id for p in placed) or "no other client"
    lines = [
        f"failover of {plan.client.id} from {plan.hosting.server} to {standby} (dry run: nothing changes)",
        f"1. lease {ids}: no server runs their jobs",
        f"2. converge {standby} with {plan.client.id} beside {beside}",
        f"3. restore each site's latest complete snapshot on {standby}",
        f"4. check {sum(len(s.checks) for s in sites)} page(s) on {standby}",
        f"5. switch traffic ({plan.sla.failover.traffic}):",
        *(f"     {record.zone_line()}" for record in records),
        f"6. lease the sites to {standby}; record RTO and RPO (plan: {plan.sla.failover.rto_minutes} min)",
    ]
    return "\n".join(lines) + "\n"


def _converge(realm: Realm, server: str, plans: Sequence[CarePlan], out: TextIO) -> str:
    realm.converge(server, plans, lambda line: None)
    return f"{server} carries {', '.join(p.client.id for p in plans) or 'no client'}"


def _restore(
    realm: Realm, server: str, sites: Sequence[SitePlan], outcome: Outcome, began: datetime, timeout: float
) -> str:
    by_id = {s.site: s for s in outcome.sites}
    for site in sites:
        answer = realm.agent(server, ["restore", site.id, "--wait"], timeout=timeout)
        if answer.returncode != 0:
            raise FailoverError(f"restoring {site.id} on {server} failed: {answer.tail()}")
    status = realm.agent(server, ["status", "--json"], timeout=60)
    jobs = json.loads(status.stdout)["sites"] if status.stdout.strip().startswith("{") else {}
    for site in sites:
        figures = ((jobs.get(site.id) or {}).get("jobs", {}).get("restore") or {}).get("figures") or {}
        when = figures.get("snapshot_time")
        by_id[site.id].snapshot_time = when
        if when:
            taken = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
            # a failback's final backup is newer than its start: nothing written before it is lost
            by_id[site.id].rpo_seconds = max(0.0, round((began - taken).total_seconds(), 1))
    return ", ".join(f"{s.site} (snapshot {s.snapshot_time or '?'})" for s in outcome.sites)


def _verify(realm: Realm, server: str, sites: Sequence[SitePlan], outcome: Outcome) -> str:
    wrong = []
    by_id = {s.site: s for s in outcome.sites}
    for site in sites:
        for check in site.checks:
            status, found = None, False
            for attempt in range(PAGE_ATTEMPTS):
                status, body = realm.fetch(server, site.domain, check.path)
                found = check.keyword in body
                if status == check.status and found:
                    by_id[site.id].pages_ok += 1
                    break
                time.sleep(1.0 + attempt * 0.5)
            else:
                wrong.append(f"{site.id} {check.path}: HTTP {status}, keyword found: {found}")
    if wrong:
        raise FailoverError(f"{server} does not answer as the plan says: {'; '.join(wrong)}")
    return f"{sum(s.pages_ok for s in outcome.sites)} page(s) with their keywords"


def _switch(switch: TrafficSwitch, records: Sequence[DnsRecord], outcome: Outcome, out: TextIO) -> str:
    try:
        outcome.switched = switch.switch(records, out)
    except SwitchError as exc:
        raise FailoverError(f"traffic switch {switch.name}: {exc}") from None
    return outcome.switched


def _evidence(realm: Realm, plan: CarePlan, outcome: Outcome, began: datetime) -> None:
    """One evidence record per site (job failover/failback) with the measured RTO and RPO."""
    ended = datetime.now(UTC)
    run_id = began.strftime("%Y%m%dT%H%M%S") + "-" + outcome.action
    s3 = realm.bucket_client(plan)
    for site in outcome.sites:
        record = {
            "schema": EVIDENCE_SCHEMA,
            "client": plan.client.id,
            "site": site.site,
            "job": outcome.action,
            "run_id": run_id,
            "host": outcome.server,
            "started": began.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ended": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "result": "ok",
            "exit_code": 0,
            "message": f"{site.site} runs on {outcome.server} ({outcome.action})",
            "figures": {
                "rto_seconds": outcome.rto_seconds,
                "rto_target_minutes": outcome.rto_target_minutes,
                "rpo_seconds": site.rpo_seconds,
                "snapshot_time": site.snapshot_time,
                "steps": outcome.steps,
                "switched": outcome.switched,
            },
        }
        key = record_key(site.site, outcome.action, ended, run_id)
        s3.put_object(Bucket=plan.storage.bucket, Key=key, Body=json.dumps(record, indent=2).encode())


# --- failback ------------------------------------------------------------------


def failback(realm: Realm, plan: CarePlan, *, out: TextIO, dry_run: bool = False) -> Outcome:
    if plan.sla.failover is None:
        raise FailoverError(f"{plan.client.id}: its tier {plan.client.tier} has no failover, so nothing to fail back")
    leases = realm.leases(plan)
    active = leases.active()
    if not active:
        raise FailoverError(f"{plan.client.id}: no active failover (no lease in {plan.storage.bucket}/lease/)")
    standby = realm.standby().name
    restoring = [lease.site for lease in active if lease.holder != standby]
    if restoring:
        raise FailoverError(
            f"{plan.client.id}: {', '.join(restoring)} did not finish failing over (lease holder is not {standby}); "
            "finish or repeat the failover first"
        )
    held = {lease.site for lease in active}
    sites = [site for site in plan.sites if site.id in held]
    primary = plan.hosting.server
    outcome = Outcome(plan.client.id, "failback", primary, [SiteOutcome(s.id) for s in sites])
    outcome.rto_target_minutes = plan.sla.failover.rto_minutes
    records = _records(realm, plan, sites, primary)
    try:
        realm.switch(plan).check(records)
    except SwitchError as exc:
        raise FailoverError(f"traffic switch {plan.sla.failover.traffic}: {exc}") from None
    if dry_run:
        ids = ", ".join(s.id for s in sites)
        out.write(
            f"failback of {plan.client.id} from {standby} to {primary} (dry run: nothing changes)\n"
            f"1. final backup of {ids} on {standby}\n2. restore onto {primary}\n3. check the pages on {primary}\n"
            f"4. switch traffic back ({plan.sla.failover.traffic}):\n"
            + "".join(f"     {r.zone_line()}\n" for r in records)
            + f"5. release the leases; remove {plan.client.id}'s sites from {standby}\n"
        )
        outcome.dry_run = True
        return outcome
    clock = _Clock(out)
    began = datetime.now(UTC)

    def final_backup() -> str:
        for site in sites:
            answer = realm.agent(standby, ["backup", site.id, "--reason", "manual", "--wait"], timeout=3600)
            if answer.returncode != 0:
                raise FailoverError(f"the final backup of {site.id} on {standby} failed: {answer.tail()}")
        return f"{len(sites)} site(s) backed up on {standby}"

    clock.step("backup", f"{standby}: final backup", final_backup)
    clock.step(
        "restore",
        f"{primary}: restore the final snapshots",
        lambda: _restore(realm, primary, sites, outcome, began, plan.backup.restore_timeout_seconds),
    )
    clock.step("pages", f"{primary}: every checked page answers", lambda: _verify(realm, primary, sites, outcome))
    switch = realm.switch(plan)
    clock.step(
        "switch", f"switch traffic back to {primary} ({switch.name})", lambda: _switch(switch, records, outcome, out)
    )

    def release() -> str:
        for site in sites:
            leases.release(site.id)
        return f"{primary} runs the sites' jobs again"

    clock.step("release", "release the leases", release)
    outcome.rto_seconds = round(clock.elapsed, 1)

    def clear() -> str:
        realm.clear_standby(standby, plan, sites)
        return f"{len(sites)} site(s) removed from {standby}; its drills of {plan.client.id} as the plan places them"

    clock.step("standby", f"{standby}: remove {plan.client.id}'s sites", clear)
    outcome.steps = clock.steps
    _evidence(realm, plan, outcome, began)
    out.write(f"{plan.client.id} runs on {primary} again after {outcome.rto_seconds:.0f}s of failback\n")
    return outcome


# --- the 30-day limit -----------------------------------------------------------


@dataclass(frozen=True)
class ActiveFailover:
    client: str
    sites: tuple[str, ...]
    holder: str
    since: datetime
    age_days: float
    max_days: int
    warn_after_days: float

    @property
    def warning(self) -> bool:
        return self.age_days >= self.warn_after_days

    def line(self) -> str:
        sign = "WARNING: " if self.warning else ""
        return (
            f"{sign}{self.client}: {', '.join(self.sites)} on {self.holder} since {self.since:%Y-%m-%d %H:%M} UTC, "
            f"{self.age_days:.1f} of {self.max_days} days"
            + (f" (fail back before day {self.max_days})" if self.warning else "")
        )


def active_failover(plan: CarePlan, leases: Sequence[Lease], now: datetime | None = None) -> ActiveFailover | None:
    if not leases or plan.sla.failover is None:
        return None
    since = min(lease.since for lease in leases)
    return ActiveFailover(
        plan.client.id,
        tuple(lease.site for lease in leases),
        leases[0].holder,
        since,
        round(((now or datetime.now(UTC)) - since).total_seconds() / 86400, 2),
        plan.sla.failover.max_days,
        plan.sla.failover.warn_after_days,
    )
