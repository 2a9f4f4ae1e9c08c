"""The booted lab, shared by every test that needs real servers (marked `lab`).

The session fixture `lab` runs `carestack lab up` once (the example stacks,
state directory from CARESTACK_LAB_DIR or /var/lib/carestack-lab) and hands
the tests a `LabState`: hosts and addresses, ssh config and key, the Ansible
inventory, the S3 endpoint and each client's credentials, Kuma's URL and
credentials file, the alert receiver's log. At the end of the session it runs
`carestack lab down --keep-image` (the image stays cached for the next run)
unless the lab was already up before the session, or CARESTACK_LAB_KEEP=1.

`make test` runs the suite on several pytest-xdist workers (`--dist loadgroup`): every test
that touches the booted lab runs on one worker in file order (they share one lab), the agent's
tests on another (one moto S3 and one mariadbd), the monitor tests of each Kuma version on a
worker of their own (most of their time is spent waiting for Kuma's check intervals), and the fast
tests wherever a worker is free.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.config import load_config
from lab.down import lab_down
from lab.errors import LabError
from lab.kuma_sources import RELEASE_URL_ENV
from lab.state import LabState
from lab.status import summary
from lab.up import lab_up
from tests.lab.outage import Outage, run_outage

KEEP_ENV = "CARESTACK_LAB_KEEP"

# No test downloads a Kuma release from the internet: where no tarball is at hand, the download goes
# to a closed port on loopback and fails at once (tests that serve a tarball set their own URL).
os.environ.setdefault(RELEASE_URL_ENV, "http://127.0.0.1:9/uptime-kuma-{version}.tar.gz")


def worker_group(item: pytest.Item) -> str | None:
    """The xdist group a test runs in (None: any worker)."""
    if item.get_closest_marker("lab") is not None or "lab" in getattr(item, "fixturenames", ()):
        return "lab"
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "kuma" in callspec.params:
        return f"kuma-{callspec.params['kuma']}"
    if item.get_closest_marker("agent") is not None:
        return "agent"
    return None


# tryfirst: xdist's worker reads the groups in its own collection hook, which otherwise runs before
# this one (it registers after the initial conftests) and would see no group at all.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = worker_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker under `--dist loadgroup`, every grouped test must carry its group in its id
    (that is all the scheduler reads); otherwise the lab's tests would run on every worker at once,
    each booting and tearing down the one lab under the others."""
    if not session.config.getoption("loadgroup", default=False):
        return
    for item in session.items:
        group = worker_group(item)
        if group is not None and not item.nodeid.endswith(f"@{group}"):
            raise pytest.UsageError(
                f"pytest-xdist did not tag {item.nodeid} with its group {group!r}: "
                "this pytest and pytest-xdist do not work together (see pyproject.toml)"
            )


def _already_up() -> bool:
    try:
        state = LabState.load()
    except LabError:
        return False
    return all(server.running for server in summary(state).servers)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabState]:
    config = load_config()
    was_up = _already_up()
    state = lab_up(config).state
    yield state
    if not was_up and os.environ.get(KEEP_ENV) != "1":
        lab_down(config, keep_image=True)


@pytest.fixture(scope="session")
def nginx_outage(lab: LabState) -> Outage:
    """One real outage of a lab server's nginx, read back by the alert path, history and report tests."""
    return run_outage(lab)
