"""apt: the host's Debian packages, with the plan's policy and an exact rollback.

Discover: `apt-get update`, then `apt-get -s upgrade` lists every upgradable
package with the origins of its new version. The plan's policy picks:
`security` takes a package only if its new version comes from a security
archive (suite `*-security`, as Debian's and Ubuntu's are), `all` takes all,
`none` nothing. Held packages (`apt-mark hold`) are never touched; a plain
`upgrade` never removes or newly installs a package. The chosen packages are
simulated once more as one transaction (`install --only-upgrade pkg=ver ...`),
which gives the exact set of changes, dependencies included.

Prepare: the .deb of every previous version is secured in a rollback directory
under state_dir/apt/rollback/<run> (apt's cache, a download, or rebuilt from
the installed package: see debs.py), and the new versions are downloaded, so
the site is in flux only while dpkg runs.

Apply: a marker (state_dir/apt/pending.json) names the transaction before dpkg
starts; then `apt-get install` of exactly those versions, with the old
conffiles kept. Rollback: `dpkg --configure -a` (a killed dpkg), then the
secured .debs are installed again (`--allow-downgrades`). The packages are the
host's, not one site's: a host-wide lock (locks/_apt.lock) serializes every
site's apt steps, and the next apt step of any site first rolls back a
transaction whose run died (the marker is still there, its lock is free).

`apt_sources` (agent config) makes the provider read only those sources
(a directory of .list/.sources files) with its own package lists under
state_dir/apt/lists, leaving the system's apt state alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..jobs import Context
from ..lock import LockBusy, SiteLock
from ..proc import Completed, Deadline, run
from . import debs
from .base import Change, Offer, ProviderError, Remembered

HOST_LOCK = "_apt"  # not a valid site id, so it never collides with a site's lock
# How long apt waits for dpkg's own lock (another apt run, unattended-upgrades).
DPKG_LOCK_WAIT_SECONDS = 300
DPKG_RETRY_SECONDS = 1.0
# Upgrades and rollbacks alike keep the host's edited config files and never ask about them.
KEEP_CONFFILES = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")
ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "NEEDRESTART_MODE": "a",
}
# `Inst name [old] (new Label:Version/Archive, ... [arch])` from a simulated run.
INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]+)\] )?\((?P<new>\S+) (?P<releases>.*) \[(?P<arch>[^\]]+)\]\)"
)
REMV = re.compile(r"^Remv (?P<name>\S+)")


@dataclass(frozen=True)
class Upgradable:
    name: str
    old: str | None
    new: str
    arch: str
    security: bool


def from_security_archive(releases: str) -> bool:
    """Whether any origin of the new version is a security archive (`Debian-Security:12/bookworm-security`)."""
    for release in releases.split(", "):
        label, _, rest = release.partition(":")
        archive = rest.rsplit("/", 1)[-1]
        if archive.endswith("-security") or label.lower().endswith("security"):
            return True
    return False


def parse_simulation(text: str) -> tuple[list[Upgradable], list[str]]:
    """Packages installed/upgraded and packages removed by a simulated apt-get run."""
    installs, removals = [], []
    for line in text.splitlines():
        found = INST.match(line)
        if found:
            installs.append(
                Upgradable(
                    found["name"], found["old"], found["new"], found["arch"], from_security_archive(found["releases"])
                )
            )
        elif removed := REMV.match(line):
            removals.append(removed["name"])
    return installs, removals


def selected(candidates: list[Upgradable], policy: str) -> list[Upgradable]:
    if policy == "all":
        return list(candidates)
    if policy == "security":
        return [c for c in candidates if c.security]
    return []


class AptProvider:
    name = "apt"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.policy = ctx.site.updates.apt_policy
        self.state = ctx.config.agent.state_dir / "apt"
        self.marker = self.state / "pending.json"
        self.lock = SiteLock(ctx.config.agent.state_dir, HOST_LOCK, f"update {ctx.site.id}")
        self._locked = False

    # -- plumbing ----------------------------------------------------------------------

    def options(self) -> list[str]:
        opts = ["-q", "-o", f"DPkg::Lock::Timeout={DPKG_LOCK_WAIT_SECONDS}"]
        sources = self.ctx.config.agent.apt_sources
        if sources is not None:
            lists = self.state / "lists"
            (lists / "partial").mkdir(parents=True, exist_ok=True)
            opts += ["-o", "Dir::Etc::SourceList=/dev/null", "-o", f"Dir::Etc::SourceParts={sources}",
                     "-o", f"Dir::State::Lists={lists}", "-o", "Dir::Cache::pkgcache=",
                     "-o", "Dir::Cache::srcpkgcache=",
                     # the lists live under the agent's private state_dir, where apt's _apt user cannot write
                     "-o", "APT::Sandbox::User=root"]  # fmt: skip
        return opts

    def _apt(self, args: list[str], deadline: Deadline | None = None) -> Completed:
        return run(["apt-get", *self.options(), *args], env=ENV, deadline=deadline or self.ctx.deadline)

    def _hold(self, deadline: Deadline) -> None:
        """The host-wide apt lock, for the rest of this run (waits for another site's apt steps)."""
        if self._locked:
            return
        try:
            self.lock.acquire(wait=True, timeout=max(0.0, deadline.remaining()))
        except LockBusy as e:
            raise ProviderError(f"apt: another update holds the host's packages until the deadline ({e})") from None
        self._locked = True

    def close(self) -> None:
        if self._locked:
            self.lock.release()
            self._locked = False

    def installed(self, names: list[str], deadline: Deadline) -> dict[str, str]:
        """Each package's installed version; one dpkg left unfinished (killed) is marked so it never matches."""
        if not names:
            return {}
        done = run(["dpkg-query", "--show", "--showformat=${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\\n",
                    *names], env=ENV, deadline=deadline)  # fmt: skip
        found: dict[str, str] = {}
        for line in done.stdout.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[2][1] in "nc":  # status: not installed, or only its conffiles left
                continue
            version = parts[1] if parts[2][1] == "i" else f"{parts[1]} (unfinished)"
            package, _, arch = parts[0].partition(":")
            found[package] = version
            found[f"{package}:{arch}"] = version
        return found

    # -- the provider ------------------------------------------------------------------

    def discover(self, failed: Remembered) -> Offer:
        offer = Offer(self.name)
        if self.policy == "none":
            offer.notes.append("apt: policy none")
            return offer
        deadline = self.ctx.deadline
        self._hold(deadline)
        self._finish_dead_run(offer)
        refreshed = self._apt(["update"])
        if refreshed.returncode != 0:
            raise ProviderError(f"apt-get update failed: {refreshed.last_error()}")
        simulated = self._apt(["-s", "upgrade"])
        if simulated.returncode != 0:
            raise ProviderError(f"apt-get -s upgrade failed: {simulated.last_error()}")
        candidates, _ = parse_simulation(simulated.stdout)
        chosen = selected(candidates, self.policy)
        if len(chosen) < len(candidates):
            offer.notes.append(f"apt: {len(candidates) - len(chosen)} non-security update(s) left (policy security)")
        offer.notes += self._held_notes(deadline)
        pinned = []
        for c in chosen:
            why = failed.blocked(Change(self.name, "package", c.name, c.old, c.new))
            if why:
                offer.notes.append(why)
            else:
                pinned.append(f"{c.name}={c.new}")
        if not pinned:
            return offer
        # The exact transaction: the chosen versions and whatever they pull in.
        plan = self._apt(["-s", "install", "--only-upgrade", *pinned])
        if plan.returncode != 0:
            raise ProviderError(f"apt cannot plan the upgrade of {', '.join(pinned)}: {plan.last_error()}")
        installs, removals = parse_simulation(plan.stdout)
        if removals:
            offer.notes.append(f"apt: upgrading would remove {', '.join(removals)}; left for a person")
            return offer
        offer.changes = [Change(self.name, "package", u.name, u.old, u.new) for u in installs]
        offer.data["pinned"] = [f"{u.name}={u.new}" for u in installs]
        return offer

    def _held_notes(self, deadline: Deadline) -> list[str]:
        held = run(["apt-mark", "showhold"], env=ENV, deadline=deadline).stdout.split()
        if not held:
            return []
        policy = run(["apt-cache", *self.options(), "policy", *held], env=ENV, deadline=deadline).stdout
        notes = []
        for block in re.split(r"^(?=\S)", policy, flags=re.M):
            name = block.split(":\n", 1)[0]
            versions = dict(re.findall(r"^\s+(Installed|Candidate): (\S+)", block, flags=re.M))
            if versions.get("Installed") not in (None, "(none)", versions.get("Candidate")):
                notes.append(f"apt: {name} held at {versions['Installed']} ({versions['Candidate']} available)")
        return notes

    def prepare(self, offer: Offer) -> None:
        deadline = self.ctx.deadline
        rollback_dir = self.state / "rollback" / self.ctx.run_id
        self._drop_old_rollback_dirs(keep=rollback_dir)
        current = self.installed([c.name for c in offer.changes], deadline)
        sources = {}
        for c in offer.changes:
            if c.from_version is None:
                continue
            if current.get(c.name) != c.from_version:
                raise ProviderError(f"apt: {c.name} is at {current.get(c.name)}, not {c.from_version} as planned")
            package, _, arch = c.name.partition(":")
            arch = arch or self._arch_of(package, deadline)
            try:
                _, how = debs.secure(package, c.from_version, arch, rollback_dir, deadline, self.options())
            except OSError as e:
                raise ProviderError(f"apt: no copy of {c.name} {c.from_version} to roll back to: {e}") from None
            sources[c.name] = how
        fetched = self._apt(["install", "--download-only", "-y", *offer.data["pinned"]])
        if fetched.returncode != 0:
            raise ProviderError(f"apt: downloading {', '.join(offer.data['pinned'])} failed: {fetched.last_error()}")
        offer.data["rollback_dir"] = str(rollback_dir)
        offer.data["rollback_copies"] = sources

    def _arch_of(self, package: str, deadline: Deadline) -> str:
        done = run(["dpkg-query", "--show", "--showformat=${Architecture}", package], env=ENV, deadline=deadline)
        return done.stdout.strip() or "all"

    def _drop_old_rollback_dirs(self, keep: Path) -> None:
        """Rollback copies of finished runs go; a dead run's (named by the marker) stay until rolled back."""
        pending = self._pending()
        needed = {keep, Path(pending["offer"]["data"].get("rollback_dir", ""))} if pending else {keep}
        root = self.state / "rollback"
        for path in root.glob("*") if root.exists() else []:
            if path not in needed:
                shutil.rmtree(path, ignore_errors=True)

    def apply(self, offer: Offer) -> list[Change]:
        self._write_pending(offer)
        done = self._apt(["install", "-y", "--only-upgrade", *KEEP_CONFFILES, *offer.data["pinned"]])
        if done.returncode != 0:
            raise ProviderError(f"apt-get install failed: {done.last_error()}")
        now = self.installed([c.name for c in offer.changes], self.ctx.deadline)
        wrong = [f"{c.name} is at {now.get(c.name)}" for c in offer.changes if now.get(c.name) != c.to_version]
        if wrong:
            raise ProviderError(f"apt: after the upgrade {', '.join(wrong)}")
        return offer.changes

    def rollback(self, offer: Offer) -> str | None:
        deadline = Deadline(self.ctx.site.jobs.restore_timeout_seconds)
        self._hold(deadline)
        self._finish_dpkg(deadline)
        names = [c.name for c in offer.changes]
        now = self.installed(names, deadline)
        back = [c for c in offer.changes if now.get(c.name) != c.from_version]
        rollback_dir = Path(offer.data.get("rollback_dir", ""))
        files = []
        for c in back:
            if c.from_version is None:
                continue
            package, _, arch = c.name.partition(":")
            found = sorted(rollback_dir.glob(debs.deb_name(package, c.from_version, arch or "*")))
            if not found:
                raise ProviderError(f"apt: the rollback copy of {c.name} {c.from_version} is missing")
            files.append(str(found[0]))
        removals = [f"{c.name}-" for c in back if c.from_version is None and c.name in now]
        if files or removals:
            # --reinstall: a package dpkg left half-installed still shows the old version number
            done = self._apt(
                ["install", "-y", "--reinstall", "--allow-downgrades", *KEEP_CONFFILES, *files, *removals], deadline
            )
            if done.returncode != 0:
                raise ProviderError(f"apt: reinstalling the previous versions failed: {done.last_error()}")
        now = self.installed(names, deadline)
        wrong = [f"{c.name} is at {now.get(c.name)}" for c in offer.changes if now.get(c.name) != c.from_version]
        if wrong:
            raise ProviderError(f"apt: after the rollback {', '.join(wrong)}")
        self._clear_pending(offer)
        return "reinstalled " + ", ".join(f"{c.name} {c.from_version or '(removed)'}" for c in offer.changes)

    def _finish_dpkg(self, deadline: Deadline) -> None:
        """`dpkg --configure -a`: what a dpkg cut short left unconfigured (apt refuses to work before).

        The dpkg of a killed run may still be running on its own (only apt-get dies with the agent),
        holding dpkg's lock: wait for it, within the deadline.
        """
        while True:
            done = run(["dpkg", "--configure", "-a"], env=ENV, deadline=deadline)
            if done.returncode == 0 or "lock" not in done.stderr or deadline.remaining() < DPKG_RETRY_SECONDS:
                return  # what is still wrong (a half-installed package) the reinstall below repairs
            time.sleep(DPKG_RETRY_SECONDS)

    def finish(self, offer: Offer) -> None:
        self._clear_pending(offer)

    # -- a transaction whose run died --------------------------------------------------

    def _pending(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("offer"), dict) else None

    def _write_pending(self, offer: Offer) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self.marker.with_name("pending.json.tmp")
        record = {"site": self.ctx.site.id, "run_id": self.ctx.run_id, "offer": offer.to_json()}
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.marker)

    def _clear_pending(self, offer: Offer) -> None:
        """Remove the marker if it names this offer's run (another site's dead run keeps its own)."""
        pending = self._pending()
        if pending is not None and pending.get("run_id") == offer.data.get("run_id"):
            self.marker.unlink(missing_ok=True)

    def _finish_dead_run(self, offer: Offer) -> None:
        """Holding the host lock, a marker can only be a dead run's: roll its packages back first."""
        pending = self._pending()
        if pending is None:
            return
        self.rollback(Offer.from_json(pending["offer"]))
        offer.notes.append(f"apt: rolled back the interrupted upgrade of {pending['site']} (run {pending['run_id']})")
