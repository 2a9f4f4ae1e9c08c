"""The servers under test and the plans they must realize.

Two ways to run the same suite:

    pytest tests/hosts                                    # the lab's servers (marked `lab`)
    pytest tests/hosts --hosts=ssh://root@203.0.113.7 [--ssh-config=...] [--carestack-stack=Pulumi.x.yaml]

Against real servers each host's name (the common role sets it to the plan's
server name) selects the plans whose sites run there, from the given stack
files or else every client stack in stacks/. Every expected value comes from
those plans (`build_plan`), never from a literal here.
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


@dataclass(frozen=True)
class Server:
    host: Host
    name: str
    plans: tuple[CarePlan, ...]

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
        host = testinfra.get_host(
            request.param,
            ssh_config=config.getoption("ssh_config"),
            ssh_identity_file=config.getoption("ssh_identity_file"),
            sudo=config.getoption("sudo"),
        )
        name = host.check_output("hostname")
        plans = [p for p in stack_plans(config.getoption("carestack_stack")) if p.hosting.server == name]
    else:
        lab = request.getfixturevalue("lab")
        name = request.param
        host = testinfra.get_host(f"ssh://{name}", ssh_config=str(lab.ssh_config))
        plans = [lab.plan(c.id) for c in lab.clients if c.server == name]
    if not plans:
        pytest.skip(f"no client plan places sites on {name}")
    yield Server(host, name, tuple(plans))
