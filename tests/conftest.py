"""The booted lab, shared by every test that needs real servers (marked `lab`).

The session fixture `lab` runs `carestack lab up` once (the example stacks,
state directory from CARESTACK_LAB_DIR or /var/lib/carestack-lab) and hands
the tests a `LabState`: hosts and addresses, ssh config and key, the Ansible
inventory, the S3 endpoint and each client's credentials, Kuma's URL and
credentials file, the alert receiver's log. At the end of the session it runs
`carestack lab down --keep-image` (the image stays cached for the next run)
unless the lab was already up before the session, or CARESTACK_LAB_KEEP=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab.config import load_config
from lab.down import lab_down
from lab.errors import LabError
from lab.state import LabState
from lab.status import summary
from lab.up import lab_up

KEEP_ENV = "CARESTACK_LAB_KEEP"


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
