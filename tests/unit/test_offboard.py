"""The offboarding controller: its refusals before anything changes, its order, and the hand-over's checks.

The realm is an in-memory one over moto's S3 (the failover leases): its server
answers `validate` with the sites it carries and serves the hand-over files the
agent would have written; every call is recorded, so a refusal can be seen to
have touched nothing. The real servers, Kuma and restic: tests/lab/test_offboard.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.ansible_vars import HostAccess
from infra.failover import AgentAnswer
from infra.failover_lease import Lease, LeaseStore
from infra.offboard import OffboardError, kept_until, offboard
from infra.offboard_vars import offboard_inventory
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, load_stack

STACKS = Path(__file__).resolve().parents[2] / "stacks"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@dataclasses.dataclass
class Server:
    """One server's answers: the sites its agent carries, and the hand-over files it holds."""

    s3: Any
    carries: list[str]
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    calls: list[str] = dataclasses.field(default_factory=list)
    corrupt: str | None = None  # a file name whose download comes out different

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        self.calls.append(f"agent {' '.join(argv)}")
        if argv[0] == "validate":
            return AgentAnswer(0, f"/etc/carestack/agent.toml: ok ({len(self.carries)} site(s): "
                                  f"{', '.join(sorted(self.carries)) or 'none'})\n", "")  # fmt: skip
        if argv[0] == "handover":
            site, remote = argv[1], argv[3]
            body = f"files of {site}".encode()
            self.files[f"{remote}/{site}-files.tar.gz"] = body
            manifest = {"site": site, "snapshot": "ab" * 32, "snapshot_time": "2026-12-02T09:59:00Z",
                        "files": {f"{site}-files.tar.gz": {"bytes": len(body),
                                                           "sha256": hashlib.sha256(body).hexdigest()}}}  # fmt: skip
            self.files[f"{remote}/{site}-manifest.json"] = json.dumps(manifest).encode()
        return AgentAnswer(0, "ok", "")

    def leases(self, plan: CarePlan) -> LeaseStore:
        return LeaseStore(self.s3, plan.storage.bucket)

    def stop_jobs(self, server: str, plan: CarePlan) -> None:
        self.calls.append(f"stop {server}")

    def download(self, server: str, remote: str, local: Path) -> None:
        self.calls.append(f"download {Path(remote).name}")
        body = self.files[remote]
        local.write_bytes(body + (b"!" if self.corrupt and remote.endswith(self.corrupt) else b""))

    def drill_server(self, plan: CarePlan) -> str | None:
        return None

    def remove_sites(self, plan: CarePlan, servers: Sequence[str], echo: Callable[[str], None]) -> None:
        self.calls.append(f"remove {','.join(servers)}")

    def remove_monitors(self, plan: CarePlan) -> int:
        self.calls.append("monitors")
        return 7


def server_for(s3: Any, plan: CarePlan, carries: list[str] | None = None) -> Server:
    s3.create_bucket(Bucket=plan.storage.bucket)
    return Server(s3, [s.id for s in plan.sites] if carries is None else carries)


def test_the_steps_run_in_order_and_the_hand_over_is_fetched_and_described(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("bakery")
    server = server_for(aws, plan)
    out = tmp_path / "handover"
    outcome = offboard(server, plan, out, out=io.StringIO(), now=lambda: NOW)
    site_ids = [s.id for s in plan.sites]
    backups = [c for c in server.calls if c.startswith("agent backup")]
    assert backups == [f"agent backup {s} --reason offboard --wait" for s in site_ids]
    order = [c.split()[0] for c in server.calls if not c.startswith(("agent validate", "download"))]
    assert order[0] == "stop" and order[-2:] == ["remove", "monitors"]
    assert [s.site for s in outcome.sites] == site_ids and outcome.monitor_changes == 7
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md"] + [f"{s}-{part}" for s in site_ids for part in ("files.tar.gz", "manifest.json")]
    )
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    readme = (out / "README.md").read_text()
    assert all(site.domain in readme for site in plan.sites)
    assert outcome.kept_until == f"{kept_until(plan, NOW):%Y-%m-%d}" and outcome.kept_until in readme


def test_a_failed_over_client_is_refused_and_nothing_changes(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("studio")
    server = server_for(aws, plan)
    site = plan.sites[0].id
    lease = Lease(plan.client.id, site, "standby-1", plan.hosting.server, NOW, "failover")
    LeaseStore(aws, plan.storage.bucket).put(lease)
    with pytest.raises(OffboardError, match=f"failed over \\({site} on standby-1\\): fail back first"):
        offboard(server, plan, tmp_path / "out", out=io.StringIO())
    assert server.calls == [] and not (tmp_path / "out").exists()


def test_an_output_directory_holding_other_things_is_refused(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("bakery")
    server = server_for(aws, plan)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("someone else's")
    with pytest.raises(OffboardError, match=r"--out .*taken: exists and holds other things"):
        offboard(server, plan, tmp_path / "taken", out=io.StringIO())
    assert server.calls == []


def test_a_server_carrying_only_some_sites_is_refused_naming_them(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("studio")
    first, *rest = [s.id for s in plan.sites]
    server = server_for(aws, plan, carries=[first, "other-www"])
    with pytest.raises(OffboardError, match=f"missing: {', '.join(rest)}"):
        offboard(server, plan, tmp_path / "out", out=io.StringIO())
    assert server.calls == ["agent validate"]


def test_a_download_that_differs_from_the_manifest_stops_before_anything_is_removed(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("bakery")
    server = server_for(aws, plan)
    server.corrupt = "files.tar.gz"
    with pytest.raises(OffboardError, match="differs from the server's manifest"):
        offboard(server, plan, tmp_path / "out", out=io.StringIO())
    assert not any(c.startswith(("remove", "monitors")) for c in server.calls)


def test_a_rerun_after_the_removal_only_reconciles_what_is_left(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("bakery")
    server = server_for(aws, plan, carries=[])
    said = io.StringIO()
    outcome = offboard(server, plan, tmp_path / "out", out=said)
    assert outcome.already_removed and outcome.sites == []
    assert [c for c in server.calls if c != "agent validate"] == [f"remove {plan.hosting.server}", "monitors"]
    assert "already off" in said.getvalue()


def test_a_dry_run_says_each_step_and_changes_nothing(aws: Any, tmp_path: Path) -> None:
    plan = plan_of("bakery")
    server = server_for(aws, plan)
    said = io.StringIO()
    outcome = offboard(server, plan, tmp_path / "out", out=said, dry_run=True)
    assert outcome.dry_run and server.calls == ["agent validate"] and not (tmp_path / "out").exists()
    text = said.getvalue()
    assert "final" not in text or "would" in text
    assert all(line.startswith("would") for line in text.splitlines())
    assert plan.storage.bucket in text


def test_the_inventory_names_the_sites_files_never_a_secret() -> None:
    plan = plan_of("studio")
    server = plan.hosting.server
    inventory = offboard_inventory(plan, {server: HostAccess("192.0.2.20", "admin")}, [server])
    host = inventory["all"]["children"]["carestack"]["hosts"][server]
    assert host["ansible_user"] == "admin"
    sites = host["carestack_offboard"]["sites"]
    assert [s["id"] for s in sites] == [s.id for s in plan.sites]
    assert all(s["root"] == f"/srv/www/{s['id']}" for s in sites)
    assert all(path.startswith("/etc/carestack/secrets/") for path in host["carestack_offboard"]["secret_files"])
