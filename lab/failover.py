"""`carestack lab failover CLIENT`: the client's sites restored onto the standby, as when its server is lost.

The tier's failover promise (a standby restore within the plan's RTO), done for
real: the standby is converged with the client's plan placed on it (the sites'
users, databases, PHP pools and vhosts, the agent with the same repository and
keys), the agent there restores each site's latest snapshot, and the standby
must answer every page the plan checks, with its keyword. The report gives each
step's time and the whole against the plan's RTO.

The client's own server keeps running, so in the lab this is a drill: at the
end the standby's jobs for these sites are stopped again. Two servers must not
run one site's jobs at once: their site locks are per server, and one server's
`forget` could drop a pre-update snapshot the other is about to roll back to.
In a real failover (the server is lost) the agency points the sites' DNS at the
standby and leaves its jobs running.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

from infra.ansible_vars import Client
from infra.plan import CarePlan
from lab import onboard
from lab.config import LabConfig
from lab.errors import LabError
from lab.lock import exclusive
from lab.placement import PlacedClient
from lab.progress import Progress
from lab.state import LabState
from lab.status import fetch_page

RESTORE_TIMEOUT = 1800
PAGE_ATTEMPTS = 10  # PHP-FPM and opcache may take a few seconds after the swap


@dataclass(frozen=True)
class PageAnswer:
    site: str
    path: str
    status: int | None
    keyword_found: bool
    expected_status: int

    @property
    def ok(self) -> bool:
        return self.status == self.expected_status and self.keyword_found


@dataclass(frozen=True)
class FailoverReport:
    client: str
    standby: str
    steps: dict[str, float]  # step -> seconds
    restored: dict[str, str]  # site -> the agent's summary of its restore
    pages: list[PageAnswer]
    rto_seconds: float  # from the start until every page answered
    rto_target_minutes: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def on_standby(plan: CarePlan, standby: str) -> CarePlan:
    """The client's plan with its sites placed on the standby; everything else as the plan says.

    The sites' names still point at the client's server (a drill moves no DNS), so on the standby
    they are pending: no certificate is ordered there, the CA would validate on the other server."""
    sites = tuple(dataclasses.replace(site, dns="pending") for site in plan.sites)
    return dataclasses.replace(plan, hosting=dataclasses.replace(plan.hosting, server=standby), sites=sites)


def _check_pages(state: LabState, standby: str, plan: CarePlan) -> list[PageAnswer]:
    address = state.host(standby).address
    answers = []
    for site in plan.sites:
        for check in site.checks:
            for attempt in range(PAGE_ATTEMPTS):
                status, body = fetch_page(address, site.domain, check.path)
                answer = PageAnswer(site.id, check.path, status, check.keyword in body, check.status)
                if answer.ok:
                    break
                time.sleep(1.0 + attempt * 0.5)
            answers.append(answer)
    return answers


def failover(config: LabConfig, client_id: str, out: TextIO = sys.stdout) -> FailoverReport:
    state = LabState.load(config.state_dir)
    try:
        lab_client = state.client(client_id)
    except KeyError as exc:
        raise LabError(str(exc.args[0])) from None
    plan = state.plan(client_id)
    if plan.sla.failover is None:
        raise LabError(f"{client_id}: its tier {plan.client.tier} promises no standby restore (no sla.failover)")
    if state.standby is None:
        raise LabError("the lab has no standby server (the platform stack names it)")
    standby = state.standby
    progress = Progress(out)
    started = time.monotonic()
    steps: dict[str, float] = {}
    with exclusive(config.state_dir):
        with progress.step(f"{standby}: converge with {client_id}'s plan") as step:
            tokens, _ = onboard.sync_monitors(state, [PlacedClient(lab_client.stack, plan)])
            secrets = onboard.client_secrets(state, client_id, tokens[client_id])
            result = onboard.converge_servers(
                config, state, [Client(on_standby(plan, standby), secrets)], [standby], progress.line, "failover.log"
            )
            step.note(f"{result.changed} tasks changed", changed=result.changed > 0)
        steps["converge"] = step.seconds

        restored = {}
        with progress.step(f"{standby}: restore each site's latest snapshot") as step:
            for site in plan.sites:
                answer = state.ssh(
                    standby, f"carestack-agent restore {shlex.quote(site.id)} --wait", timeout=RESTORE_TIMEOUT
                )
                if answer.returncode != 0:
                    detail = " | ".join((answer.stderr or answer.stdout).strip().splitlines()[-5:])
                    raise LabError(f"restoring {site.id} on {standby} failed: {detail}")
                restored[site.id] = answer.stdout.strip().splitlines()[-1] if answer.stdout.strip() else "restored"
            step.note(", ".join(restored), changed=True)
        steps["restore"] = step.seconds

        with progress.step(f"{standby}: the plan's pages answer") as step:
            pages = _check_pages(state, standby, plan)
            failing = [p for p in pages if not p.ok]
            if failing:
                wrong = [f"{p.site} {p.path}: HTTP {p.status}, keyword found: {p.keyword_found}" for p in failing]
                raise LabError(f"{standby} does not answer as the plan says: {'; '.join(wrong)}")
            step.note(f"{len(pages)} pages with their keywords")
        steps["pages"] = step.seconds
        rto = time.monotonic() - started

        with progress.step(f"{standby}: stop {client_id}'s jobs (its own server still runs them)") as step:
            timers = [
                f"carestack-{job.name}@{site.id}.timer"
                for site in plan.sites
                for job in site.jobs
                if not job.on_standby
            ]
            answer = state.ssh(standby, f"systemctl disable --now {shlex.join(timers)}", timeout=60)
            if answer.returncode != 0:
                raise LabError(f"could not stop the jobs on {standby}: {answer.stderr.strip()}")
            step.note(f"{len(timers)} timers disabled", changed=True)
    target = plan.sla.failover.rto_minutes
    progress.line(f"{client_id} ran on {standby} after {rto:.0f}s; the plan promises {target} min")
    return FailoverReport(client_id, standby, steps, restored, pages, rto, target)
