"""Figures of the Ansible roles: converging a fresh shared host with three sites, and a rerun.

    .venv/bin/python bench/bench_converge.py [--runs 2] [--reruns 3] [--keep]

Brings up a lab of its own (state directory, subnet, bridge and ports apart
from a developer's lab; the base image is shared) with the platform stack only,
so its shared-1 and standby-1 are fresh Debian servers nobody converged. For
each fresh server (at most two per lab) it converges the bakery and studio
clients (three sites: two WordPress, one PHP) onto it exactly as
`carestack configure` does, with real S3 buckets and scoped keys, Kuma push
tokens and the agent, then converges again `--reruns` times. Prints medians.
Goal: a rerun under 30 s. Needs root.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rows import at_most, record  # noqa: E402

from infra.ansible_vars import Client, ClientSecrets, HostAccess, Realization  # noqa: E402
from infra.configure import ANSIBLE_DIR, ConvergeResult, converge  # noqa: E402
from infra.plan import build_plan  # noqa: E402
from infra.spec import STACKS_DIR, ClientSpec, load_stack  # noqa: E402
from lab import acme_server, s3, services, storage  # noqa: E402
from lab.config import LabConfig, load_config  # noqa: E402
from lab.down import lab_down  # noqa: E402
from lab.onboard import realization as lab_realization  # noqa: E402
from lab.onboard import sync_monitors  # noqa: E402
from lab.placement import PlacedClient  # noqa: E402
from lab.state import LabState  # noqa: E402
from lab.up import lab_up  # noqa: E402

CLIENT_STACKS = ("Pulumi.bakery.yaml", "Pulumi.studio.yaml")  # both on shared-1: three sites
PLATFORM_STACK = STACKS_DIR / "Pulumi.platform.yaml"
FRESH_HOSTS = ("shared-1", "standby-1")
SERVER = "shared-1"  # the plans' server name; each fresh host in turn plays it


def bench_config(state_dir: Path) -> LabConfig:
    """Its own subnet, bridge and ports; the developer lab's cached base image."""
    return LabConfig(
        state_dir,
        subnet="10.77.30.0/24",
        bridge="csbconv",
        apt_port=3180,
        s3_port=9030,
        kuma_port=3030,
        alert_port=9130,
        image_cache=str(load_config().image_dir),
    )


def clients(state: LabState, config: LabConfig) -> list[Client]:
    """The two clients with real buckets and scoped keys in the bench lab's S3, and their Kuma push tokens."""
    placed = []
    for name in CLIENT_STACKS:
        spec = load_stack(STACKS_DIR / name)
        assert isinstance(spec, ClientSpec)
        placed.append(PlacedClient(STACKS_DIR / name, build_plan(spec)))
    tokens, _ = sync_monitors(state, placed)
    # As the lab provisions its clients: buckets and keys made before IAM is enforced, and the S3
    # gateway told each key's policy (the gateway serves the S3 API only, not IAM).
    stored = storage.bring_up(config, placed).clients
    result = []
    for client in placed:
        keys = s3.read_env_file(stored[client.id].env_file)
        assert keys is not None, f"no S3 keys for {client.id}"
        password = secrets.token_urlsafe(24)
        result.append(
            Client(client.plan, ClientSecrets(password, keys.access_key_id, keys.secret_access_key, tokens[client.id]))
        )
    return result


def timed(
    label: str, run: int, clients_: list[Client], realization: Realization, state: LabState, log: Path
) -> ConvergeResult:
    with open(log, "a") as out:
        out.write(f"\n===== {label} {run} =====\n")
        result = converge(clients_, realization, ssh_config=state.ssh_config, ssh_key=state.ssh_key, stream=out)
    if not result.ok:
        sys.exit(f"{label} converge {run} failed; see {log}")
    print(
        f"  {label:6} {run}: {result.seconds:6.1f} s  changed={result.changed}  results={results(result)}", flush=True
    )
    return result


def results(result: ConvergeResult) -> int:
    """Task results (one per host, task and loop item): about one module round trip each."""
    return sum(1 for line in result.output.splitlines() if line.startswith(("ok: ", "changed: ")))


def round_trip_seconds(state: LabState, address: str, workdir: Path) -> float:
    """What one module call costs right now: 20 no-op commands minus 1, over the same ssh setup."""
    inventory = {"all": {"hosts": {"probe": {"ansible_host": address, "ansible_user": "root"}}}}
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg")}
    seconds = []
    for count in (1, 21):
        play = [
            {
                "hosts": "all",
                "gather_facts": False,
                "tasks": [{"ansible.builtin.command": "true", "loop": list(range(count)), "changed_when": False}],
            }
        ]
        (workdir / "probe.yml").write_text(json.dumps(play))
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(workdir / "inventory.json")]
        cmd += ["-e", f"ansible_ssh_common_args='-F {state.ssh_config}'", str(workdir / "probe.yml")]
        started = time.monotonic()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        seconds.append(time.monotonic() - started)
    return (seconds[1] - seconds[0]) / 20


def row(label: str, results: list[ConvergeResult]) -> str:
    seconds = [r.seconds for r in results]
    changed = sorted({r.changed for r in results})
    return (
        f"{label:28} {len(seconds):>4} {statistics.median(seconds):>8.1f} {min(seconds):>7.1f} {max(seconds):>7.1f}"
        f"  {','.join(map(str, changed))}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, choices=(1, 2), help="fresh hosts to converge (lab has two)")
    parser.add_argument("--reruns", type=int, default=3, help="reruns after each fresh converge")
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/carestack-bench-converge"))
    parser.add_argument("--keep", action="store_true", help="leave the bench lab up")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_converge: run as root (it boots a lab)")
    config = bench_config(args.state_dir)
    log = args.state_dir.with_name(args.state_dir.name + ".log")
    print(f"bench lab in {args.state_dir} (log {log}); load average {os.getloadavg()[0]:.1f}", flush=True)
    with open(log, "w") as out:
        state = lab_up(config, [PLATFORM_STACK], out=out).state
    try:
        these = clients(state, config)
        fresh: list[ConvergeResult] = []
        reruns: list[ConvergeResult] = []
        trips: list[float] = []
        for run, host in enumerate(FRESH_HOSTS[: args.runs], 1):
            # The lab's own realization (its S3, Kuma, CA, admin range and key, feed), the plans' server
            # played by this fresh host.
            realization = dataclasses.replace(
                lab_realization(state), hosts={SERVER: HostAccess(state.host(host).address, "root", None)}, standby=None
            )
            # The CA validates each site's names at this host (the lab's DNS for the CA, as `lab up` sets it).
            names = {name: state.host(host).address for c in these for site in c.plan.sites for name in site.names}
            acme_server.resolve(services.start_acme(config), names)
            fresh.append(timed("fresh", run, these, realization, state, log))
            reruns += [timed("rerun", n, these, realization, state, log) for n in range(1, args.reruns + 1)]
            with tempfile.TemporaryDirectory() as tmp:
                trips.append(round_trip_seconds(state, state.host(host).address, Path(tmp)))
    finally:
        if not args.keep:
            with open(log, "a") as out:
                lab_down(config, keep_image=True, out=out)
    print()
    print(f"{'converge, bakery + studio (3 sites)':28} {'runs':>4} {'median s':>8} {'min':>7} {'max':>7}  changed")
    print(row("fresh shared host", fresh))
    print(row("rerun (goal: < 30 s)", reruns))
    print(f"task results per rerun: {statistics.median(results(r) for r in reruns):.0f}; one module round trip")
    print(f"cost {statistics.median(trips):.2f} s (20 no-op commands) at the time of the runs")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (the machine's 2 cores are shared)")
    record("converge: fresh shared host, 3 sites", statistics.median(r.seconds for r in fresh), "s")
    rerun_s = statistics.median(r.seconds for r in reruns)
    record("converge: rerun, 3 sites", rerun_s, "s", goal="< 12 s quiet, changed=0",
           met=at_most(rerun_s, 12) and all(r.changed == 0 for r in reruns))  # fmt: skip
    tasks = statistics.median(results(r) for r in reruns)
    record("converge: task results per rerun", tasks, "tasks", goal="<= 36", met=at_most(tasks, 36))
    return 0


if __name__ == "__main__":
    sys.exit(main())
