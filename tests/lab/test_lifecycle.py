"""The lab's life: a no-op second `lab up`, recovery after a crash, `lab down` leaving nothing behind.

Crash and down run on a second, small lab (the platform stack only: two
servers) in its own state directory, subnet, bridge and ports, sharing the
main lab's base image, so the session's main lab stays up for the other tests.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.spec import example_stacks
from lab import hosts, procs
from lab.config import LabConfig, load_config
from lab.down import lab_down
from lab.footprint import footprint, lab_processes
from lab.state import LabState
from lab.up import lab_up

pytestmark = pytest.mark.lab

SECOND_LAB = {
    "subnet": "10.77.9.0/24",
    "bridge": "cslab9",
    "apt_port": 3159,
    "s3_port": 9009,
    "kuma_port": 3009,
    "alert_port": 9109,
}


def _supervisor_pids(state: LabState, config: LabConfig) -> dict[str, int]:
    found = {}
    for host in state.hosts:
        record = procs.running(hosts.host(config, host.name, host.address).supervisor_pid)
        assert record is not None, f"{host.name} has no running supervisor"
        found[host.name] = record.pid
    return found


def test_a_second_lab_up_changes_nothing(lab: LabState) -> None:
    config = load_config(lab.state_dir)
    before = _supervisor_pids(lab, config)
    out = io.StringIO()
    result = lab_up(config, out=out)
    assert result.changed == [], out.getvalue()
    assert "nothing to do (no-op)" in out.getvalue()
    assert _supervisor_pids(result.state, config) == before
    assert [h.machine_id for h in result.state.hosts] == [h.machine_id for h in lab.hosts]


@pytest.fixture(scope="module")
def second_lab(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabConfig]:
    main = load_config(lab.state_dir)
    config = LabConfig(tmp_path_factory.mktemp("second-lab"), image_cache=str(main.image_dir), **SECOND_LAB)
    lab_up(config, [example_stacks()[0]], out=io.StringIO())
    yield config
    lab_down(config, out=io.StringIO())  # whatever a failed test left


def _crash(config: LabConfig) -> None:
    """What a power cut of the CLI's world looks like: every lab process but the guests killed hard."""
    state = LabState.load(config.state_dir)
    guests = {pid for h in state.hosts for pid in hosts.guest_pids(hosts.host(config, h.name, h.address))}
    killed = [record for pid in lab_processes(config) if pid not in guests and (record := procs.record_of(pid))]
    for record in killed:
        procs.signal_pid(record.pid, signal.SIGKILL)
    for record in killed:  # a crash is over when its processes are gone (and their ports free)
        assert procs.wait_gone(record, 10.0)


def test_lab_up_recovers_from_a_crashed_run(second_lab: LabConfig) -> None:
    before = LabState.load(second_lab.state_dir)
    _crash(second_lab)
    out = io.StringIO()
    result = lab_up(second_lab, [example_stacks()[0]], out=out)
    assert "recovered" in out.getvalue(), out.getvalue()
    for host in before.hosts:
        h = hosts.host(second_lab, host.name, host.address)
        assert hosts.running(h)
        assert len(hosts.nspawn_pids(h)) == 1, "the orphaned guest was not replaced by exactly one new one"
        answer = result.state.ssh(host.name, "hostname; cat /etc/machine-id", timeout=30)
        assert answer.stdout.split() == [host.name, host.machine_id], answer.stderr


def _mentions(pid: str, needles: list[bytes]) -> bool:
    try:
        seen = Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return any(needle in seen for needle in needles)


def test_lab_down_leaves_nothing_behind(second_lab: LabConfig) -> None:
    assert not footprint(second_lab).empty()
    state = LabState.load(second_lab.state_dir)
    lab_down(second_lab, out=io.StringIO())

    # Checked here on the machine's own terms, not with the lab's code.
    needles = [str(second_lab.state_dir).encode()] + [f"{h.address}".encode() for h in state.hosts]
    needles.append(f"{state.bridge_address}:".encode())
    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
    assert [pid for pid in pids if _mentions(pid, needles)] == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(second_lab.state_dir) not in mounts
    assert not Path(f"/sys/class/net/{second_lab.bridge}").exists()
    assert [n for n in Path("/run/netns").iterdir() if n.name.startswith(f"{second_lab.bridge}-")] == []
    rules = subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True, check=True).stdout
    assert second_lab.bridge not in rules and second_lab.bridge.upper() not in rules
    cgroups = f"carestack-lab-{second_lab.bridge}-*"
    assert [*Path("/sys/fs/cgroup").glob(cgroups), *Path("/sys/fs/cgroup").glob(f"*/{cgroups}")] == []
    assert not second_lab.state_dir.exists()
    assert footprint(second_lab).empty()
    assert Path(second_lab.image_cache, "rootfs").is_dir(), "a shared image must survive a lab's down"


def test_status_reports_the_running_lab_as_json(lab: LabState) -> None:
    env = {**os.environ, "CARESTACK_LAB_DIR": str(lab.state_dir)}
    before = (lab.state_dir / "lab.json").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "lab.cli", "lab", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {s["name"] for s in report["servers"] if s["running"] and s["ssh"]} == {h.name for h in lab.hosts}
    assert all(site["http_status"] == 200 for site in report["sites"]), report["sites"]
    assert report["services"]["kuma"]["credentials"] == str(lab.kuma_credentials_file)
    assert (lab.state_dir / "lab.json").read_text() == before, "status changed the lab's state"
