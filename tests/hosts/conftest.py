"""The servers under test and the plans they must realize.

Two ways to run the same suite:

    pytest tests/hosts                                    # the lab's servers (marked `lab`)
    pytest tests/hosts --hosts=ssh://root@203.0.113.7 [--ssh-config=...] [--carestack-stack=Pulumi.x.yaml]

Against real servers each host's name (the common role sets it to the plan's
server name) selects the plans whose sites run there, from the given stack
files or else every client stack in stacks/; when the given stacks name a
single server, the host is tested as that server whatever its name says.
Every expected value comes from those plans (`build_plan`), never from a
literal here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
from testinfra.host import Host

from infra.plan import CarePlan, SitePlan, build_plan
from infra.spec import STACKS_DIR, ClientSpec, load_stack


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--carestack-stack",
        action="append",
        default=[],
        type=Path,
        metavar="STACK_FILE",
        help="client stack(s) the servers under test realize (default: every client stack in stacks/)",
    )


NEW_LOGIN = "-o ControlMaster=no -o ControlPath=none"


@dataclass(frozen=True)
class Server:
    host: Host
    name: str
    plans: tuple[CarePlan, ...]
    # Every command a login of its own: a multiplexed session inherits what its connection got at login
    # (PAM's limits), and the lab's shared connection may have logged in before the converge hardened it.
    login: Host

    @property
    def sites(self) -> list[tuple[CarePlan, SitePlan]]:
        return [(plan, site) for plan in self.plans for site in plan.sites]

    @property
    def php_version(self) -> str:
        return self.run_ok("php -r 'echo PHP_MAJOR_VERSION, \".\", PHP_MINOR_VERSION;'")

    def run_ok(self, command: str, *args: str) -> str:
        result = self.host.run(command, *args)
        assert result.rc == 0, f"{command % args if args else command}: rc={result.rc} {result.stderr.strip()}"
        return str(result.stdout)


def stack_plans(paths: list[Path]) -> list[CarePlan]:
    plans = []
    for path in paths or sorted(STACKS_DIR.glob("Pulumi.*.yaml")):
        spec = load_stack(path)
        if isinstance(spec, ClientSpec):
            plans.append(build_plan(spec))
    return plans


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if config.getoption("hosts"):
        specs = config.getoption("hosts").split(",")
        metafunc.parametrize("server", specs, indirect=True, scope="session")
    else:
        # The lab places each client on its plan's server; test every server a plan names.
        names = sorted({plan.hosting.server for plan in stack_plans(config.getoption("carestack_stack"))})
        params = [pytest.param(name, marks=pytest.mark.lab) for name in names]
        metafunc.parametrize("server", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    config = request.config
    if config.getoption("hosts"):
        options = {
            "ssh_config": config.getoption("ssh_config"),
            "ssh_identity_file": config.getoption("ssh_identity_file"),
            "sudo": config.getoption("sudo"),
        }
        host = testinfra.get_host(request.param, **options)
        login = testinfra.get_host(request.param, ssh_extra_args=NEW_LOGIN, **options)
        name, plans = expected_server(
            request.param, host.check_output("hostname"), stack_plans(config.getoption("carestack_stack"))
        )
    else:
        lab = request.getfixturevalue("lab")
        name = request.param
        host = testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_config))
        login = testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_config), ssh_extra_args=NEW_LOGIN)
        plans = [lab.plan(c.id) for c in lab.clients if c.server == name]
        if not plans:
            pytest.fail(f"the lab places no client on {name}, which the example stacks name", pytrace=False)
    yield Server(host, name, tuple(plans), login)


def expected_server(spec: str, hostname: str, plans: list[CarePlan]) -> tuple[str, list[CarePlan]]:
    """The server of the plans a host must realize: the one its host name says, else the only server the
    given stacks name. A name no plan knows is an error, never a reason to skip: a server that was
    misnamed is exactly what `test_the_server_carries_the_plans_name` is there to catch."""
    mine = [plan for plan in plans if plan.hosting.server == hostname]
    if mine:
        return hostname, mine
    servers = sorted({plan.hosting.server for plan in plans})
    if len(servers) == 1:
        return servers[0], plans
    pytest.fail(
        f"{spec} says its host name is {hostname!r}, but no plan places sites on a server of that name "
        f"(the plans name: {', '.join(servers) or 'none'}); pass --carestack-stack with the stack of the "
        "client this server carries",
        pytrace=False,
    )
