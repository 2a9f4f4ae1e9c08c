"""scripts/setup.sh installs the package of every program the tests and the lab run on this machine.

A fresh Debian 12 has only its required packages: each program is traced to the package that ships
it (dpkg's own records on this machine), and that package must be one setup.sh installs (named, or a
dependency of one named) or one every Debian system has (essential or of priority required).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.system import REQUIRED_TOOLS

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"
# Programs the tests, the benchmarks and the lab run here (the lab's own list is added below).
PROGRAMS = (
    "restic",
    "fusermount",  # `restic mount`, the live lock holder of the agent's robustness tests
    "mariadbd",
    "mariadb-install-db",
    "mariadb-dump",
    "mariadb",
    "curl",
    "git",
    "make",
    "rsync",
    "zip",
    "unzip",
    "modprobe",
    "setpriv",
    "runuser",
    "ionice",
    "dpkg-deb",
    "timeout",
    "cc",  # Uptime Kuma's sqlite binding is compiled by npm
)


def setup_packages() -> set[str]:
    block = re.search(r"APT_PACKAGES=\((.*?)\n\)", SETUP.read_text(), re.S)
    assert block, "setup.sh: no APT_PACKAGES=( ... ) list"
    words = [line.split("#", 1)[0].split() for line in block.group(1).splitlines()]
    return {word for line in words for word in line}


def package_of(program: str) -> str | None:
    path = shutil.which(program, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        return None
    for candidate in dict.fromkeys([path, str(Path(path).resolve())]):
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
        usr_merged = candidate.replace("/usr/bin/", "/bin/").replace("/usr/sbin/", "/sbin/")
        done = subprocess.run(["dpkg", "-S", usr_merged], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


@dataclass(frozen=True)
class Package:
    required: bool  # on every Debian system: essential, or of priority required
    depends: tuple[str, ...]  # every alternative of Depends and Pre-Depends


@functools.cache
def installed_packages() -> dict[str, Package]:
    """This machine's installed packages, from one dpkg-query."""
    fields = "${Package}\t${Status}\t${Essential}\t${Priority}\t${Depends}, ${Pre-Depends}\n"
    done = subprocess.run(["dpkg-query", "-W", f"-f={fields}"], capture_output=True, text=True, check=True)
    packages: dict[str, Package] = {}
    for line in done.stdout.splitlines():
        name, status, is_essential, priority, depends = line.split("\t")
        if status.endswith(" installed"):
            names = re.findall(r"(?:^|[,|])\s*([a-z0-9][a-z0-9+.-]+)", depends)
            packages[name] = Package(is_essential == "yes" or priority == "required", tuple(names))
    return packages


def installed_with(packages: set[str]) -> set[str]:
    """The packages and everything they depend on, as installed on this machine."""
    known = installed_packages()
    found: set[str] = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name in found or name not in known:
            continue
        found.add(name)
        todo.extend(known[name].depends)
    return found


def test_the_package_list_is_read() -> None:
    assert {"restic", "systemd-container", "fuse3"} <= setup_packages()


@pytest.mark.parametrize("program", sorted({*PROGRAMS, *REQUIRED_TOOLS}))
def test_setup_installs_the_package_of_every_program_run_here(program: str) -> None:
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian machine: no dpkg records to trace programs to packages")
    package = package_of(program)
    assert package is not None, f"{program}: not installed on this machine, or no package ships it"
    installed = installed_with(setup_packages())
    on_every_debian = package in installed_packages() and installed_packages()[package].required
    assert package in installed or on_every_debian, f"{program} comes from {package}: add it to {SETUP.name}"
