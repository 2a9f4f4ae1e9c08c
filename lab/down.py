"""`carestack lab down`: stop everything the lab started, by PID, and remove what it created.

Order: servers (clean shutdown), ssh control masters, services, then mounts,
namespaces, firewall rules and the bridge, then the state directory (all of
it, or all but the caches with `--keep-image`). Finally the machine is
searched for anything of the lab that is still there (`footprint`); a
leftover process is stopped by its PID, anything else is reported as an error.
"""

from __future__ import annotations

import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from lab import access, aptproxy, hosts, network, procs, servers, services, storage
from lab.config import CONFIG_FILE, LabConfig, settings_saved
from lab.errors import LabError
from lab.footprint import footprint
from lab.lock import LOCK_FILE, exclusive
from lab.progress import Progress
from lab.system import require_root


def _remove_state(config: LabConfig, keep_image: bool) -> None:
    if not config.state_dir.exists():
        return
    for entry in config.state_dir.iterdir():
        if keep_image and entry == config.cache_dir:
            continue
        if entry.name == LOCK_FILE:  # held by this command until it ends (then removed with the empty dir)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def lab_down(config: LabConfig, *, keep_image: bool = False, out: TextIO = sys.stdout) -> None:
    progress = Progress(out)
    require_root()
    if not config.state_dir.exists():
        print(f"no lab in {config.state_dir}: nothing to do", file=out)
        return
    if not settings_saved(config.state_dir):
        # Nothing of a lab ever started here (or `down` already stopped it all): its network and its
        # processes cannot be told by name, and the defaults are another lab's (csbr0, 10.77.0.0/24).
        with exclusive(config.state_dir):
            _remove_state(config, keep_image)
        kept = f"; kept the caches in {config.cache_dir}" if keep_image else ""
        print(f"no lab set up in {config.state_dir} (no {CONFIG_FILE}): nothing to stop{kept}", file=out)
        return
    with exclusive(config.state_dir):
        names = hosts.host_names(config)
        with progress.step("servers") as step:
            with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:  # each shutdown takes about a second
                was_running = list(pool.map(lambda name: servers.take_down(config, name, remove_data=False), names))
            stopped = [name for name, yes in zip(names, was_running, strict=True) if yes]
            step.note(f"stopped {', '.join(stopped) or 'none (none was running)'}", changed=bool(names))

        with progress.step("ssh control masters and services") as step:
            access.close_masters(config)
            done = {
                **services.stop(config),
                "s3": storage.stop(config),
                "apt proxy": aptproxy.stop(config),
            }
            step.note(
                "stopped " + (", ".join(name for name, was in done.items() if was) or "none"),
                changed=any(done.values()),
            )

        with progress.step(f"network: firewall rules, namespaces, bridge {config.bridge}") as step:
            network.firewall_down(config)
            for netns in network.lab_netns(config):  # a namespace whose host record was lost
                network.remove_netns(netns)
            network.remove_bridge(config)
            step.note("removed", changed=True)

        with progress.step("state directory") as step:
            _remove_state(config, keep_image)
            step.note(
                f"kept the caches in {config.cache_dir}" if keep_image else f"removed {config.state_dir}", changed=True
            )

        with progress.step("nothing left behind") as step:
            left = footprint(config)
            if left.processes:
                progress.line(f"stopping leftovers by PID: {left.describe()}")
            for pid in left.processes:
                record = procs.record_of(pid)
                if record is not None:
                    procs.stop(record, 5.0)
            left = footprint(config)
            if not left.empty():
                raise LabError(f"lab down left behind: {left.describe()}")
            step.note("no process, mount, namespace, link or firewall rule of the lab remains")
    print(f"lab down: {progress.total:.1f}s", file=out)
