"""Which processes `lab down` takes for its lab's: never another lab's, even one that shares its image,
and never its own caller's."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock

from lab import down
from lab.config import load_config
from lab.footprint import _names_state_dir, _points_inside

ROOT = Path(__file__).resolve().parents[2]

STATE = b"/var/lib/carestack-lab"
IMAGE = b"/var/lib/carestack-lab/cache/image"


def argv(*words: str) -> bytes:
    return b"\0".join(w.encode() for w in words) + b"\0"


def test_a_process_naming_the_state_directory_is_the_labs() -> None:
    assert _names_state_dir(
        argv("systemd-nspawn", "--directory=/var/lib/carestack-lab/hosts/shop-1/root"), STATE, IMAGE
    )
    assert _names_state_dir(argv("apt-cacher-ng", "CacheDir=/var/lib/carestack-lab/cache/apt"), STATE, IMAGE)
    assert _names_state_dir(argv("tool", "/var/lib/carestack-lab"), STATE, IMAGE)


def test_another_lab_that_shares_the_image_is_not_the_labs() -> None:
    other = argv("carestack", "lab", "up", "--subnet", "10.22.0.0/24", "--image-dir", IMAGE.decode())
    assert not _names_state_dir(other, STATE, IMAGE)
    assert not _names_state_dir(argv("debootstrap", IMAGE.decode() + "/rootfs.partial"), STATE, IMAGE)


def test_a_longer_name_is_another_directory() -> None:
    assert not _names_state_dir(argv("nspawn", "--directory=/var/lib/carestack-lab-2/hosts/a"), STATE, IMAGE)


def test_the_environment_counts_but_not_the_working_directory_or_the_image() -> None:
    assert _points_inside(b"DATA_DIR=/var/lib/carestack-lab/run/kuma/\0", STATE, IMAGE)
    assert not _points_inside(b"PWD=/var/lib/carestack-lab/run\0", STATE, IMAGE)
    assert not _points_inside(b"IMAGE=/var/lib/carestack-lab/cache/image/rootfs\0", STATE, IMAGE)


def test_the_process_that_called_it_is_never_the_labs(tmp_path: Path) -> None:
    """A bench or test names the state directory on its own command line and runs `lab down`: the
    leftovers it stops are the lab's processes, never its caller (nor a caller's caller)."""
    state_dir = tmp_path / "lab"
    child = (
        "import json; from pathlib import Path; from lab.config import LabConfig; "
        "from lab.footprint import lab_processes; "
        f"print(json.dumps(lab_processes(LabConfig(Path({str(state_dir)!r})))))"
    )
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(state_dir)])
    try:
        # the shell is the caller: its command line names the state directory, as a bench's does
        caller = subprocess.run(
            ["sh", "-ec", f'{shlex.quote(sys.executable)} -c {shlex.quote(child)}; echo "$$"', "sh", str(state_dir)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
    finally:
        sibling.kill()
        sibling.wait()
    listed, shell_pid = caller.stdout.splitlines()
    assert sibling.pid in json.loads(listed)  # a process of the lab's own is found
    assert int(shell_pid) not in json.loads(listed)


def test_down_where_no_lab_was_set_up_touches_no_network_and_no_process(tmp_path: Path) -> None:
    """Without saved settings `lab down` would fall back to the default lab's bridge and subnet, and
    take another lab down: it only removes the directory's files."""
    state_dir = tmp_path / "lab"
    (state_dir / "cache" / "image").mkdir(parents=True)
    (state_dir / "run").mkdir()
    config = load_config(state_dir)
    out = io.StringIO()
    with mock.patch.object(down.network, "remove_bridge", side_effect=AssertionError("network touched")), \
         mock.patch.object(down, "footprint", side_effect=AssertionError("processes searched")):  # fmt: skip
        down.lab_down(config, keep_image=True, out=out)
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "cache"]  # as `down --keep-image` leaves it
    assert out.getvalue() == (
        f"no lab set up in {state_dir} (no config.json): nothing to stop; kept the caches in {state_dir}/cache\n"
    )
