"""The failover controller's refusals, leases, room and traffic switches, on moto's S3 and Route 53.

Everything here happens before a server is touched: each refusal is checked
to leave the servers (the realm's converge, agent and switch calls) and the
bucket exactly as they were. One realm answers as a healthy standby would, to
follow which sites a `--site` failover moves (the real servers do it in
tests/lab/test_failover.py).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.failover import AgentAnswer, FailoverError, Standby, active_failover, failback, failover, on_server
from infra.failover_lease import Lease, LeaseError, LeaseStore, lease_key, parse_lease
from infra.failover_room import BASE_DISK_GB, Room, capacity, plan_need, room_problem
from infra.plan import CarePlan, build_plan
from infra.spec import ClientSpec, SpecError, carestack_config, load_stack, parse_stack
from infra.traffic.base import DnsRecord, SwitchError, TrafficSwitch
from infra.traffic.manual import ManualSwitch
from infra.traffic.route53 import Route53Switch

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


class RecordingSwitch:
    """The switch's check is real (its refusal path); a switch call is recorded, never made."""

    name = "recording"

    def __init__(self, calls: list[str], refuse: str | None = None) -> None:
        self.calls = calls
        self.refuse = refuse

    def check(self, records: Sequence[DnsRecord]) -> None:
        if self.refuse:
            raise SwitchError(self.refuse)

    def switch(self, records: Sequence[DnsRecord], out: Any) -> str:
        self.calls.append("switch")
        return "switched"


@dataclasses.dataclass
class ServersUntouched:
    """A realm over moto S3 whose servers must not be reached: every server call is recorded."""

    s3: Any
    size: Room = dataclasses.field(default_factory=lambda: Room(8192, 120))
    placed: list[CarePlan] = dataclasses.field(default_factory=list)
    calls: list[str] = dataclasses.field(default_factory=list)
    switch_refusal: str | None = None

    def standby(self) -> Standby:
        return Standby("standby-1", self.size)

    def address(self, server: str) -> str:
        return {"standby-1": "192.0.2.50", "shop-1": "192.0.2.10", "shared-1": "192.0.2.20"}[server]

    def placed_on(self, server: str, exclude: str) -> list[CarePlan]:
        return self.placed

    def leases(self, plan: CarePlan) -> LeaseStore:
        return LeaseStore(self.s3, plan.storage.bucket)

    def bucket_client(self, plan: CarePlan) -> Any:
        return self.s3

    def converge(self, server: str, plans: Sequence[CarePlan], echo: Callable[[str], None]) -> None:
        self.calls.append(f"converge {server}")

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        self.calls.append(f"agent {server} {' '.join(argv)}")
        return AgentAnswer(1, "", "no server in a unit test")

    def stop_jobs(self, server: str, plan: CarePlan) -> None:
        self.calls.append(f"stop {server}")

    def fetch(self, server: str, domain: str, path: str) -> tuple[int | None, str]:
        self.calls.append(f"fetch {server}")
        return None, ""

    def switch(self, plan: CarePlan) -> TrafficSwitch:
        return RecordingSwitch(self.calls, self.switch_refusal)


def bucket_keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def realm_with_bucket(s3: Any, *plans: CarePlan, **fields: Any) -> ServersUntouched:
    for plan in plans:
        s3.create_bucket(Bucket=plan.storage.bucket)
    return ServersUntouched(s3, **fields)


def test_a_tier_without_failover_is_refused_before_anything_changes(aws: Any) -> None:
    bakery = plan_of("bakery")
    realm = realm_with_bucket(aws, bakery)
    with pytest.raises(FailoverError, match=r"bakery: its tier basic has no failover"):
        failover(realm, bakery, out=io.StringIO())
    assert realm.calls == [] and bucket_keys(aws, bakery.storage.bucket) == []


def test_a_client_already_failed_over_is_refused_and_its_lease_kept(aws: Any) -> None:
    shop = plan_of("shop")
    realm = realm_with_bucket(aws, shop)
    since = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    site = shop.sites[0].id
    realm.leases(shop).put(Lease("shop", site, "standby-1", "shop-1", since, "failover"))
    with pytest.raises(FailoverError, match=rf"shop is already failed over: {site} is held by standby-1 since "
                       r"2026-11-30 08:00 UTC \(fail back first\)"):  # fmt: skip
        failover(realm, shop, out=io.StringIO())
    assert realm.calls == [] and bucket_keys(aws, shop.storage.bucket) == [lease_key(site)]


def test_a_standby_without_room_is_refused_with_the_numbers(aws: Any) -> None:
    shop, studio = plan_of("shop"), plan_of("studio")
    realm = realm_with_bucket(aws, shop, studio, size=Room(2048, 50), placed=[on_server(studio, "standby-1")])
    with pytest.raises(FailoverError, match=r"standby standby-1 has no room for shop \(disk: needs 40 GB, 35 GB free; "
                       r"of 2048 MiB and 50 GB it carries studio\)"):  # fmt: skip
        failover(realm, shop, out=io.StringIO())
    assert realm.calls == [] and bucket_keys(aws, shop.storage.bucket) == []


def test_a_traffic_switch_that_cannot_work_refuses_the_failover_up_front(aws: Any) -> None:
    studio = plan_of("studio")
    realm = realm_with_bucket(aws, studio, switch_refusal="no hosted zone Z1")
    with pytest.raises(FailoverError, match="traffic switch manual: no hosted zone Z1"):
        failover(realm, studio, out=io.StringIO())
    assert realm.calls == [] and bucket_keys(aws, studio.storage.bucket) == []


def test_an_unknown_site_is_refused_naming_the_sites(aws: Any) -> None:
    studio = plan_of("studio")
    realm = realm_with_bucket(aws, studio)
    with pytest.raises(FailoverError, match=r"--site nope: no such site of studio \(sites: studio-"):
        failover(realm, studio, ["nope"], out=io.StringIO())
    assert realm.calls == []


def test_failback_without_an_active_failover_is_refused(aws: Any) -> None:
    shop = plan_of("shop")
    realm = realm_with_bucket(aws, shop)
    with pytest.raises(FailoverError, match=rf"shop: no active failover \(no lease in {shop.storage.bucket}/lease/\)"):
        failback(realm, shop, out=io.StringIO())
    assert realm.calls == []


def test_a_dry_run_names_each_step_and_the_records_and_changes_nothing(aws: Any) -> None:
    shop = plan_of("shop")
    realm = realm_with_bucket(aws, shop)
    out = io.StringIO()
    outcome = failover(realm, shop, out=out, dry_run=True)
    assert outcome.dry_run and realm.calls == [] and bucket_keys(aws, shop.storage.bucket) == []
    text = out.getvalue()
    assert "failover of shop from shop-1 to standby-1 (dry run: nothing changes)" in text
    assert f"{shop.sites[0].domain}. {shop.sla.failover.dns_ttl_seconds} IN A 192.0.2.50" in text  # type: ignore[union-attr]
    assert f"plan: {shop.sla.failover.rto_minutes} min" in text  # type: ignore[union-attr]


# --- the room --------------------------------------------------------------------------


def test_room_is_derived_from_the_sites_placed_and_a_dedicated_clients_volume() -> None:
    shop, studio = plan_of("shop"), plan_of("studio")
    assert plan_need(shop).disk_gb == shop.hosting.volume_gb  # dedicated: its whole volume comes along
    size = capacity("t3.large", 120)
    assert size == Room(8192, 120)
    assert room_problem("standby-1", size, [], shop) is None
    full = [shop, shop]  # 2 x 40 GB + the base leave less than 40 GB
    assert plan_need(shop).disk_gb > 120 - BASE_DISK_GB - 80
    assert "disk: needs 40 GB" in (room_problem("standby-1", size, full, shop) or "")
    assert room_problem("standby-1", size, [studio], shop) is None
    with pytest.raises(ValueError, match=r"standby instance type 'x9.huge': its memory is unknown here \(known: "):
        capacity("x9.huge", 100)


# --- the lease ---------------------------------------------------------------------------


def test_a_lease_round_trips_through_the_bucket_and_bad_ones_are_named(aws: Any) -> None:
    aws.create_bucket(Bucket="cs-x")
    store = LeaseStore(aws, "cs-x")
    since = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    lease = Lease("shop", "shop-tea", "standby-1", "shop-1", since, "failover", since + timedelta(days=24),
                  since + timedelta(days=30))  # fmt: skip
    store.put(lease)
    assert store.get("shop-tea") == lease and store.active() == [lease]
    assert json.loads(aws.get_object(Bucket="cs-x", Key="lease/shop-tea.json")["Body"].read())["holder"] == "standby-1"
    store.release("shop-tea")
    assert store.get("shop-tea") is None and store.active() == []
    with pytest.raises(LeaseError, match=r"lease/a.json: field 'holder' must be a non-empty string"):
        parse_lease("lease/a.json", json.dumps({"schema": 1, "client": "c", "site": "a", "primary": "p",
                                                 "since": "2026-12-01T05:00:00Z", "reason": "failover"}))  # fmt: skip
    with pytest.raises(LeaseError, match=r"field 'since' '2026-12-01T05:00:00' has no time zone"):
        parse_lease("lease/a.json", lease.to_json().replace("2026-12-01T05:00:00Z", "2026-12-01T05:00:00"))


def test_an_active_failover_warns_at_the_plans_share_of_max_days() -> None:
    shop = plan_of("shop")
    assert shop.sla.failover is not None
    limit = shop.sla.failover
    since = datetime(2026, 11, 1, tzinfo=UTC)
    lease = Lease("shop", shop.sites[0].id, "standby-1", "shop-1", since, "failover")
    early = active_failover(shop, [lease], now=since + timedelta(days=limit.warn_after_days - 1))
    late = active_failover(shop, [lease], now=since + timedelta(days=limit.warn_after_days))
    assert early is not None and not early.warning and f"of {limit.max_days} days" in early.line()
    assert late is not None and late.warning and late.line().startswith("WARNING: shop:")
    assert limit.warn_after_days == round(limit.max_days * 0.8, 1)
    assert active_failover(shop, [], now=since) is None


# --- the traffic switches ----------------------------------------------------------------


def test_route53_upserts_every_sites_record_with_the_plans_ttl_in_one_batch() -> None:
    shop = plan_of("shop")
    assert shop.sla.failover is not None
    with mock_aws():
        r53 = boto3.client("route53", region_name="us-east-1")
        zone = r53.create_hosted_zone(Name="nordlicht-tea.example", CallerReference="t")["HostedZone"]["Id"]
        switch = Route53Switch(r53, zone)
        records = [DnsRecord(s.domain, "A", "192.0.2.50", shop.sla.failover.dns_ttl_seconds) for s in shop.sites]
        switch.check(records)
        out = io.StringIO()
        assert "1 record(s) now point at 192.0.2.50" in switch.switch(records, out)
        back = [dataclasses.replace(r, value="192.0.2.10") for r in records]
        switch.switch(back, out)
        sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        a = [s for s in sets if s["Type"] == "A"]
        assert [(s["Name"], s["TTL"], s["ResourceRecords"]) for s in a] == [
            (f"{shop.sites[0].domain}.", shop.sla.failover.dns_ttl_seconds, [{"Value": "192.0.2.10"}])
        ]
        with pytest.raises(SwitchError, match=r"www.other.example not in the hosted zone"):
            switch.check([DnsRecord("www.other.example", "A", "192.0.2.50", 60)])
        with pytest.raises(SwitchError, match="route53: no hosted zone Z000NOPE"):
            Route53Switch(r53, "Z000NOPE").check(records)


def test_the_manual_switch_prints_the_exact_records_and_needs_confirmation() -> None:
    records = [DnsRecord("www.nordlicht-tea.example", "A", "192.0.2.50", 60)]
    with pytest.raises(SwitchError, match=r"--confirm once the records below are being changed:\n"
                       r"  www.nordlicht-tea.example. 60 IN A 192.0.2.50"):  # fmt: skip
        ManualSwitch(confirmed=False, answers=io.StringIO("")).check(records)
    out = io.StringIO()
    ManualSwitch(confirmed=True).switch(records, out)
    assert "  www.nordlicht-tea.example. 60 IN A 192.0.2.50\n" in out.getvalue()
    assert "manual" in ManualSwitch(confirmed=False, answers=io.StringIO("confirm\n")).switch(records, io.StringIO())
    with pytest.raises(SwitchError, match="not confirmed"):
        ManualSwitch(confirmed=False, answers=io.StringIO("no\n")).switch(records, io.StringIO())


def test_the_stack_names_the_switch_and_route53_needs_its_zone() -> None:
    document = {"config": {"carestack:traffic": {"provider": "route53"}}}
    base = carestack_config("shop", __import__("yaml").safe_load((STACKS / "Pulumi.shop.yaml").read_text()))
    with pytest.raises(SpecError, match=r"carestack:traffic.hosted_zone_id: the route53 switch needs the hosted zone"):
        parse_stack("shop", {**base, **carestack_config("x", document)})
    spec = parse_stack("shop", {**base, "traffic": {"provider": "route53", "hosted_zone_id": "Z1"}})
    assert isinstance(spec, ClientSpec)
    failover_plan = build_plan(spec).sla.failover
    assert failover_plan is not None and (failover_plan.traffic, failover_plan.hosted_zone_id) == ("route53", "Z1")
    assert plan_of("shop").sla.failover.traffic == "manual"  # type: ignore[union-attr]


def test_a_failover_cut_short_can_be_repeated_but_not_failed_back(aws: Any) -> None:
    shop = plan_of("shop")
    realm = realm_with_bucket(aws, shop)
    with pytest.raises(FailoverError, match="restoring shop-tea on standby-1 failed: no server in a unit test"):
        failover(realm, shop, out=io.StringIO())  # the realm's agent answers no restore
    lease = realm.leases(shop).get(shop.sites[0].id)
    assert lease is not None and lease.holder == "carestack failover" and lease.reason == "restoring onto standby-1"
    assert realm.calls[:2] == ["converge standby-1", f"agent standby-1 restore {shop.sites[0].id} --wait"]
    with pytest.raises(FailoverError, match=r"did not finish failing over .* finish or repeat the failover first"):
        failback(realm, shop, out=io.StringIO())
    realm.calls.clear()
    with pytest.raises(FailoverError, match="restoring shop-tea"):
        failover(realm, shop, out=io.StringIO())  # not refused as "already failed over": it starts again
    assert realm.calls[0] == "converge standby-1"


def test_carestack_plan_shows_an_active_failover_and_its_age(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.cli import main as carestack

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    shop = plan_of("shop")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=shop.storage.bucket)
        assert carestack(["plan", str(STACKS / "Pulumi.shop.yaml"), "--active"]) == 0
        assert capsys.readouterr().out.endswith("shop: no active failover\n")
        since = datetime.now(UTC) - timedelta(days=25)
        lease = Lease("shop", shop.sites[0].id, "standby-1", "shop-1", since, "failover")
        LeaseStore(s3, shop.storage.bucket).put(lease)
        assert carestack(["plan", str(STACKS / "Pulumi.shop.yaml"), "--active"]) == 0
        shown = capsys.readouterr().out
    assert "traffic switch manual, DNS TTL 60 s" in shown
    assert f"WARNING: shop: {shop.sites[0].id} on standby-1 since {since:%Y-%m-%d %H:%M} UTC, 25.0 of 30 days" in shown


def test_sites_placed_on_the_standby_order_no_certificate_there() -> None:
    """Until traffic is switched their names point at the lost server: the CA would validate there."""
    shop = plan_of("shop")
    assert all(site.certificate for site in shop.sites if site.https)
    placed = on_server(shop, "standby-1")
    assert placed.hosting.server == "standby-1"
    assert [site.id for site in placed.sites] == [site.id for site in shop.sites]
    assert all(site.dns == "pending" and not site.certificate for site in placed.sites)
    assert [site.id for site in on_server(shop, "standby-1", shop.sites[:1]).sites] == [shop.sites[0].id]


@dataclasses.dataclass
class ServersAnswer(ServersUntouched):
    """A realm whose standby answers as a healthy one does: restores succeed (the agent's status names the
    snapshot restored), every page answers with its keyword. It records what the controller asked of it."""

    snapshot_time: str = "2026-11-30T22:00:00Z"
    converged: list[list[CarePlan]] = dataclasses.field(default_factory=list)

    def converge(self, server: str, plans: Sequence[CarePlan], echo: Callable[[str], None]) -> None:
        self.calls.append(f"converge {server}")
        self.converged.append(list(plans))

    def agent(self, server: str, argv: Sequence[str], timeout: float) -> AgentAnswer:
        self.calls.append(f"agent {server} {' '.join(argv)}")
        if argv[0] == "status":
            restored = {"jobs": {"restore": {"figures": {"snapshot_time": self.snapshot_time}}}}
            sites = {site.id: restored for plan in self.converged[-1] for site in plan.sites}
            return AgentAnswer(0, json.dumps({"sites": sites}), "")
        return AgentAnswer(0, f"{argv[0]} {argv[1]}: ok", "")

    def fetch(self, server: str, domain: str, path: str) -> tuple[int | None, str]:
        self.calls.append(f"fetch {server} {domain}{path}")
        plan = self.converged[-1][-1]
        check = next(c for s in plan.sites if s.domain == domain for c in s.checks if c.path == path)
        return check.status, f"<html>{check.keyword}</html>"


def test_one_site_fails_over_alone_and_the_others_stay_home(aws: Any) -> None:
    studio = plan_of("studio")
    web, plans = studio.sites
    aws.create_bucket(Bucket=studio.storage.bucket)
    realm = ServersAnswer(aws)
    outcome = failover(realm, studio, [plans.id], out=io.StringIO())

    assert [s.site for s in outcome.sites] == [plans.id] and outcome.server == "standby-1"
    [placed] = realm.converged[0]
    assert [(s.id, s.dns) for s in placed.sites] == [(plans.id, "pending")]  # only it goes to the standby
    assert f"agent standby-1 restore {plans.id} --wait" in realm.calls
    assert not any(web.id in call or web.domain in call for call in realm.calls)
    assert realm.calls.count("switch") == 1
    leases = realm.leases(studio)
    assert leases.get(web.id) is None
    lease = leases.get(plans.id)
    assert lease is not None and lease.holder == "standby-1"
    [record_key] = [k for k in bucket_keys(aws, studio.storage.bucket) if "/failover/" in k]
    assert f"/{plans.id}/failover/" in record_key
    record = json.loads(aws.get_object(Bucket=studio.storage.bucket, Key=record_key)["Body"].read())
    assert record["site"] == plans.id and record["figures"]["rpo_seconds"] > 0
    assert studio.sla.failover is not None
    assert record["figures"]["rto_target_minutes"] == studio.sla.failover.rto_minutes
    with pytest.raises(FailoverError, match=rf"{plans.id} is held by standby-1"):
        failover(realm, studio, out=io.StringIO())  # the whole client now: one of its sites is already away
