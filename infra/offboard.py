"""`carestack offboard`: a leaving client's final backup, its hand-over, and its sites off the servers.

  refusals first (a site failed over, an output directory holding something else,
  a server that carries only some of the sites) -> the sites' timers stopped (no
  update or job after the final backup) -> a final complete backup of every site
  -> the agent's hand-over (files .tar.gz, dump .sql.gz, manifest) fetched into the
  output directory and checked against the manifest's sha256 -> README.md for the
  client -> the sites removed from their server (and their drill timers from the
  standby) -> the client's monitors removed from Kuma. The bucket stays: its
  snapshots are kept for the contract's retention and carestack deletes none.

A run cut short is run again: a server that no longer carries any of the sites
means the removal already happened, and only the monitors are reconciled.
Where the servers are and how they are reached is the realm's (production:
`infra.offboard_realm`; the lab: `lab.realm`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

from infra.failover import AgentAnswer
from infra.failover_lease import LeaseStore
from infra.handover_readme import SiteHandover, handover_readme
from infra.plan import CarePlan

REMOTE_HANDOVER = "/var/lib/carestack/handover"  # + /<client>: root's, 0700; removed with the client's sites
BACKUP_TIMEOUT = 6 * 3600
_VALIDATED = re.compile(r"\(\d+ site\(s\): (.*)\)\s*$")  # `carestack-agent validate`'s line


class OffboardError(Exception):
    pass


class OffboardRealm(Protocol):
    """Where a client's server, standby, bucket and monitors are, and how the controller reaches them."""

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer: ...

    def leases(self, plan: CarePlan) -> LeaseStore: ...

    def stop_jobs(self, server: str, plan: CarePlan) -> None:
        """Disable the timers of the plan's sites' jobs on `server`."""

    def download(self, server: str, remote: str, local: Path) -> None:
        """Copy one root-only file from the server (created 0600 here)."""

    def drill_server(self, plan: CarePlan) -> str | None:
        """The standby that runs the client's restore drills, if they are placed there."""

    def remove_sites(self, plan: CarePlan, servers: Sequence[str], echo: Callable[[str], None]) -> None:
        """Run the offboarding playbook for the plan's sites on these servers."""

    def remove_monitors(self, plan: CarePlan) -> int:
        """Delete the client's monitors (and status page) from Kuma; how many changes that took."""


@dataclass
class Outcome:
    client: str
    server: str
    out: str
    sites: list[SiteHandover] = field(default_factory=list)
    bucket: str = ""
    kept_until: str = ""
    monitor_changes: int = 0
    already_removed: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def kept_until(plan: CarePlan, now: datetime) -> datetime:
    """The last day the final snapshot must still be kept: the plan's retention, or its lock if longer."""
    return now + timedelta(days=max(plan.storage.retention_days, plan.storage.object_lock_days))


def _sites_on(realm: OffboardRealm, server: str) -> list[str]:
    listed = realm.agent(server, ["validate"], timeout=60)
    found = _VALIDATED.search(listed.stdout) if listed.returncode == 0 else None
    if found is None:
        raise OffboardError(f"{server}: the agent does not answer `validate` ({listed.tail() or 'no output'})")
    return [s for s in found[1].split(", ") if s != "none"]


def _ours(out_dir: Path, plan: CarePlan) -> bool:
    """The directory holds nothing but an earlier run's hand-over of this client (a rerun)."""
    prefixes = tuple(f"{site.id}-" for site in plan.sites)
    return all(p.name == "README.md" or p.name.startswith(prefixes) for p in out_dir.iterdir())


def refusal(realm: OffboardRealm, plan: CarePlan, out_dir: Path) -> bool:
    """Every reason not to start, before anything changes; True when the sites are already off the server."""
    if out_dir.exists() and (not out_dir.is_dir() or not _ours(out_dir, plan)):
        raise OffboardError(f"--out {out_dir}: exists and holds other things; give a new or empty directory")
    held = [lease for lease in realm.leases(plan).active() if lease.site in {s.id for s in plan.sites}]
    if held:
        where = ", ".join(f"{lease.site} on {lease.holder}" for lease in held)
        raise OffboardError(f"{plan.client.id} is failed over ({where}): fail back first, then offboard")
    server = plan.hosting.server
    there = set(_sites_on(realm, server))
    ours = [site.id for site in plan.sites]
    missing = [site for site in ours if site not in there]
    if missing and len(missing) < len(ours):
        raise OffboardError(
            f"{server} carries only some of {plan.client.id}'s sites (missing: {', '.join(missing)}): converge it "
            "with `carestack configure` first, so that every site gets its final backup"
        )
    return bool(missing)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_handover(realm: OffboardRealm, server: str, site_id: str, remote: str, out_dir: Path) -> SiteHandover:
    manifest_path = out_dir / f"{site_id}-manifest.json"
    realm.download(server, f"{remote}/{manifest_path.name}", manifest_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    sizes: dict[str, int] = {}
    for name, entry in manifest["files"].items():
        local = out_dir / name
        realm.download(server, f"{remote}/{name}", local)
        if _sha256(local) != entry["sha256"] or local.stat().st_size != entry["bytes"]:
            raise OffboardError(f"{local}: differs from the server's manifest (sha256); run offboard again")
        sizes[name] = entry["bytes"]
    return SiteHandover(site_id, manifest["snapshot"], str(manifest.get("snapshot_time") or ""), sizes)


def offboard(
    realm: OffboardRealm,
    plan: CarePlan,
    out_dir: Path,
    *,
    out: TextIO,
    dry_run: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    server = plan.hosting.server
    removed = refusal(realm, plan, out_dir)
    until = kept_until(plan, now())
    outcome = Outcome(plan.client.id, server, str(out_dir), bucket=plan.storage.bucket,
                      kept_until=f"{until:%Y-%m-%d}", already_removed=removed, dry_run=dry_run)  # fmt: skip
    standby = realm.drill_server(plan)
    servers = [server] + ([standby] if standby and standby != server else [])
    if dry_run:
        sites = ", ".join(site.id for site in plan.sites)
        if removed:
            say(f"would: the sites are already off {server}; remove what is left there and the client's monitors")
        else:
            say(f"would: stop the timers of {sites} on {server}; back up each one a last time ({'reason:offboard'})")
            say(f"would: write each site's files, dump and manifest into {out_dir}, with a README.md")
        say(f"would: remove the sites from {', '.join(servers)} and the client's monitors from Kuma")
        say(f"would keep the bucket {plan.storage.bucket}: its snapshots stay at least until {until:%Y-%m-%d}")
        return outcome
    if removed:
        say(f"- the sites are already off {server} (an earlier offboard): only what is left is removed")
    else:
        say(f"- stopping the timers of {plan.client.id}'s sites on {server}")
        realm.stop_jobs(server, plan)
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        remote = f"{REMOTE_HANDOVER}/{plan.client.id}"
        for site in plan.sites:
            say(f"- {site.id}: the final backup")
            backup = realm.agent(server, ["backup", site.id, "--reason", "offboard", "--wait"], BACKUP_TIMEOUT)
            if backup.returncode != 0:
                raise OffboardError(
                    f"{site.id}: the final backup failed ({backup.tail()}); nothing was removed. The timers are "
                    "stopped: offboard again once the cause is fixed, or `carestack configure` to resume the jobs"
                )
            say(f"- {site.id}: the hand-over")
            made = realm.agent(server, ["handover", site.id, "--out", remote, "--wait"], BACKUP_TIMEOUT)
            if made.returncode != 0:
                raise OffboardError(f"{site.id}: the hand-over failed ({made.tail()}); nothing was removed")
            outcome.sites.append(_fetch_handover(realm, server, site.id, remote, out_dir))
        readme = out_dir / "README.md"
        readme.write_text(handover_readme(plan, outcome.sites, until, now()), encoding="utf-8")
        readme.chmod(0o600)
        say(f"- the hand-over is in {out_dir} ({len(outcome.sites)} site(s), README.md)")
    say(f"- removing the sites from {', '.join(servers)}")
    realm.remove_sites(plan, servers, say)
    outcome.monitor_changes = realm.remove_monitors(plan)
    say(f"- the client's monitors removed from Kuma ({outcome.monitor_changes} change(s))")
    say(
        f"the bucket {plan.storage.bucket} is kept: its snapshots stay at least until {until:%Y-%m-%d} "
        "(carestack deletes none); see docs/offboarding.md for `pulumi destroy` and deleting the bucket after that"
    )
    return outcome
