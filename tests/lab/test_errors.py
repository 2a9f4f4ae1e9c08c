"""Clear errors before the lab changes anything: bad stacks, a busy subnet or port, no root.

These need no booted lab; the subnet and port checks need root (they read and
create network state) and are skipped without it.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.spec import example_stacks
from lab import image
from lab.config import LabConfig, load_config, save_config
from lab.errors import LabError
from lab.mirror import DebianMirror, debian_mirror
from lab.placement import place
from lab.up import lab_up, preflight

ROOT = Path(__file__).resolve().parents[2]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _stack(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(text)
    return path


def test_a_shared_client_must_name_a_shared_host_of_the_platform(tmp_path: Path) -> None:
    platform, bakery = example_stacks()[0], next(p for p in example_stacks() if "bakery" in p.name)
    moved = _stack(tmp_path, "bakery", bakery.read_text() + "  carestack:shared_host: shared-9\n")
    with pytest.raises(LabError, match=r"carestack:shared_host: 'shared-9' is not a shared host .*shared-1"):
        place([platform, moved])


def test_the_lab_needs_exactly_one_platform_stack() -> None:
    clients = example_stacks()[1:]
    with pytest.raises(LabError, match="exactly one platform stack"):
        place(clients)


def test_invalid_stacks_are_reported_together(tmp_path: Path) -> None:
    broken = _stack(tmp_path, "broken", "config:\n  carestack:tier: gold\n")
    with pytest.raises(LabError) as error:
        place([example_stacks()[0], broken])
    assert "Pulumi.broken.yaml" in str(error.value) and "unknown tier 'gold'" in str(error.value)


def test_settings_are_validated_and_kept_per_state_dir(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="subnet"):
        LabConfig(tmp_path, subnet="8.8.8.0/24")
    with pytest.raises(LabError, match="ports must differ"):
        LabConfig(tmp_path, s3_port=3001)
    save_config(LabConfig(tmp_path, subnet="10.77.5.0/24"))
    assert load_config(tmp_path).subnet == "10.77.5.0/24"
    with pytest.raises(LabError, match=r"was set up with subnet=10\.77\.5\.0/24"):
        load_config(tmp_path, subnet="10.77.6.0/24")


@pytest.fixture
def busy_bridge() -> Iterator[str]:
    """A bridge of this test holding 10.77.8.1/24, as another tool's network would."""
    subprocess.run(["ip", "link", "add", "cstest8", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.77.8.1/24", "dev", "cstest8"], check=True)
        yield "cstest8"
    finally:
        subprocess.run(["ip", "link", "del", "cstest8"], check=True)


@needs_root
def test_a_subnet_in_use_is_refused_before_anything_changes(busy_bridge: str, tmp_path: Path) -> None:
    config = LabConfig(tmp_path / "lab", subnet="10.77.8.0/24", bridge="cslab8")
    with pytest.raises(LabError, match=rf"10.77.8.0/24 is already in use \({busy_bridge} has 10.77.8.1/24\).*--subnet"):
        lab_up(config, out=io.StringIO())
    assert not Path("/sys/class/net/cslab8").exists()
    assert not (tmp_path / "lab").exists(), "a refused lab up leaves no state directory behind"


@needs_root
def test_a_port_in_use_is_refused_and_named(tmp_path: Path) -> None:
    with socket.create_server(("0.0.0.0", 0)) as busy:
        port = busy.getsockname()[1]
        config = LabConfig(tmp_path, subnet="10.77.7.0/24", bridge="cslab7", s3_port=port)
        with pytest.raises(LabError, match=rf"port {port} \(s3\) is already in use.*--s3-port"):
            preflight(config)


def test_not_root_is_a_clear_error(tmp_path: Path) -> None:
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    env = {**os.environ, "CARESTACK_LAB_DIR": str(tmp_path / "lab"), "HOME": str(tmp_path)}
    tmp_path.chmod(0o777)
    done = subprocess.run(
        [*nobody, sys.executable, "-m", "lab.cli", "lab", "up"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "carestack lab needs root" in done.stderr
    assert not (tmp_path / "lab").exists()


@needs_root
def test_a_failing_debootstrap_is_reported_with_its_log(tmp_path: Path) -> None:
    mirror = debian_mirror()
    broken = DebianMirror("nosuchrelease", mirror.archive, mirror.security)
    with pytest.raises(LabError, match=r"building the base image: debootstrap .* failed .*debootstrap\.log") as error:
        image.build(LabConfig(tmp_path), broken)
    assert "nosuchrelease" in str(error.value), "the tail of debootstrap's own output names the problem"
    assert image.cached(LabConfig(tmp_path)) is None
