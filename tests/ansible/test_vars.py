"""What `carestack configure` hands Ansible: the inventory, the agent's config pieces, the secret vars.

No servers here: these check the mapping from CarePlans to variables, the
agent config against the agent's own validator, and that bad input is refused
with a message naming the option and never the secret.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from carestack_agent.config import parse as parse_agent_config

from infra import agent_config
from infra.ansible_vars import (
    SHARED_HOST_TIMEZONE,
    Client,
    ClientSecrets,
    HostAccess,
    Realization,
    RealizationError,
    check_realization,
    inventory,
    secret_vars,
)
from infra.configure import ConfigureError, parse_hosts, secrets_from_env
from infra.plan import CarePlan, build_plan
from infra.spec import STACKS_DIR, ClientSpec, load_stack

S3 = "http://10.77.0.1:9000"
PUSH = "http://10.77.0.1:3001/api/push"


def plan_of(name: str) -> CarePlan:
    spec = load_stack(STACKS_DIR / f"Pulumi.{name}.yaml")
    assert isinstance(spec, ClientSpec)
    return build_plan(spec)


def client(name: str, *, tokens: bool = True) -> Client:
    plan = plan_of(name)
    push = {s.id: {j.name: f"tok{j.name}{s.id}" for j in s.jobs} for s in plan.sites} if tokens else {}
    return Client(plan, ClientSecrets(f"pw-{name}-9f3a", f"AKIA{name.upper()}", f"sk-{name}-77e1", push))


def realization(*clients: Client, push: str | None = PUSH) -> Realization:
    hosts = {c.plan.hosting.server: HostAccess(f"10.77.0.{10 + i}") for i, c in enumerate(clients)}
    return Realization(hosts, S3, push, admin_cidrs=("10.77.0.0/24",))


def host_vars(inv: dict[str, Any], server: str) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = inv["all"]["children"]["carestack"]["hosts"]
    return hosts[server]


def assembled_config(host: dict[str, Any]) -> dict[str, Any]:
    """agent.toml as the agent role assembles it on the server: the host piece, then each client's."""
    pieces = [host["carestack_server"]["agent_header"]]
    pieces += [c["agent_fragment"] for _, c in sorted(host["carestack_clients"].items())]
    return tomllib.loads("\n".join(pieces))


def test_clients_sharing_a_host_share_its_inventory_entry() -> None:
    bakery, studio = client("bakery"), client("studio")
    inv = inventory([bakery, studio], realization(bakery, studio))
    assert list(inv["all"]["children"]["carestack"]["hosts"]) == ["shared-1"]
    host = host_vars(inv, "shared-1")
    assert set(host["carestack_clients"]) == {"bakery", "studio"}
    assert set(host["carestack_sites"]) == {s.id for c in (bakery, studio) for s in c.plan.sites}
    assert host["carestack_server"]["timezone"] == SHARED_HOST_TIMEZONE
    assert host["carestack_server"]["admin_cidrs"] == sorted({"10.77.0.0/24", bakery.plan.hosting.admin_cidr})


def test_a_dedicated_server_runs_on_its_clients_time_zone() -> None:
    shop = client("shop")
    host = host_vars(inventory([shop], realization(shop)), shop.plan.hosting.server)
    assert host["carestack_server"]["timezone"] == shop.plan.client.timezone


def test_each_site_dictionary_carries_the_plans_values() -> None:
    studio = client("studio")
    sites = host_vars(inventory([studio], realization(studio)), "shared-1")["carestack_sites"]
    for site in studio.plan.sites:
        entry = sites[site.id]
        assert (entry["domain"], entry["root"], entry["user"], entry["database"]) == (
            site.domain,
            site.root,
            site.linux_user,
            site.database,
        )
        assert entry["checks"] == [{"path": c.path, "keyword": c.keyword, "status": c.status} for c in site.checks]
        assert [(j["name"], j["on_calendar"], j["randomized_delay_seconds"]) for j in entry["jobs"]] == [
            (j.name, j.schedule.on_calendar, j.schedule.randomized_delay_seconds) for j in site.jobs
        ]


def test_assembled_agent_config_passes_the_agents_validator_and_holds_the_plans_values() -> None:
    bakery, studio = client("bakery"), client("studio")
    host = host_vars(inventory([bakery, studio], realization(bakery, studio)), "shared-1")
    data = assembled_config(host)
    config = parse_agent_config(data)
    assert config.agent.host == "shared-1"
    for c in (bakery, studio):
        for site in c.plan.sites:
            got = config.site(site.id)
            assert (got.domain, got.kind, str(got.root)) == (site.domain, site.kind, site.root)
            assert got.client == c.plan.client.id  # what the site's evidence records name
            assert got.repository == f"s3:{S3}/{site.repository_path}"
            assert got.database is not None and got.database.name == site.database
            assert {f"keep_{k}": v for k, v in c.plan.backup.keep.items()}.items() <= vars(got.retention).items()
            assert got.jobs.backup_timeout_seconds == site.job("backup").timeout_seconds
            assert got.jobs.check_read_data_subsets == c.plan.backup.check_read_data_subsets
            assert got.jobs.repository_stall_seconds == c.plan.backup.stall_seconds
            assert got.push_base_url == PUSH
            assert str(got.password_file) == agent_config.password_file(c.plan.client.id)


def test_without_a_push_url_sites_get_no_push_settings() -> None:
    bakery = client("bakery", tokens=False)
    real = realization(bakery, push=None)
    check_realization([bakery], real)
    data = assembled_config(host_vars(inventory([bakery], real), "shared-1"))
    for site in data["sites"].values():
        assert "push_base_url" not in site and "push_tokens_file" not in site
    files = secret_vars([bakery], real)["carestack_secret_files"]
    assert not [path for path in files if path.endswith(".push.env")]


def test_a_push_url_without_every_jobs_token_is_refused() -> None:
    """An agent config without heartbeats would turn every push monitor down."""
    studio = client("studio")
    web, plans = studio.plan.sites
    tokens = {web.id: {job.name: "tok" for job in web.jobs[1:]}}
    partial = Client(studio.plan, ClientSecrets("pw", "id", "sk", tokens))
    for given, missing in ((client("studio", tokens=False), [web, plans]), (partial, [web, plans])):
        with pytest.raises(RealizationError) as caught:
            check_realization([given], realization(given))
        lines = str(caught.value).splitlines()
        assert [line.split(" job(s)")[0] for line in lines] == [
            f"CARESTACK_PUSH_TOKENS: no push token for {site.id}" for site in missing
        ]
    assert f"{web.id} job(s) {web.jobs[0].name} (client studio)" in str(caught.value)


def test_secrets_are_only_in_the_secret_vars_and_each_has_its_file() -> None:
    bakery, studio = client("bakery"), client("studio")
    real = realization(bakery, studio)
    inv_text = json.dumps(inventory([bakery, studio], real))
    files = secret_vars([bakery, studio], real)["carestack_secret_files"]
    for c in (bakery, studio):
        values = [c.secrets.restic_password, c.secrets.s3_secret_access_key]
        values += [t for jobs in c.secrets.push_tokens.values() for t in jobs.values()]
        assert not [v for v in values if v in inv_text]
        assert files[agent_config.password_file(c.plan.client.id)].strip() == c.secrets.restic_password
        env = files[agent_config.credentials_file(c.plan.client.id)]
        assert f"AWS_SECRET_ACCESS_KEY={c.secrets.s3_secret_access_key}\n" in env
        for site in c.plan.sites:
            push = files[agent_config.push_tokens_file(site.id)]
            assert push.splitlines() == sorted(f"{j.upper()}={t}" for j, t in c.secrets.push_tokens[site.id].items())
    assert set(host_vars(json.loads(inv_text), "shared-1")["carestack_secret_paths"]) == set(files)


def test_every_realization_problem_is_reported_at_once() -> None:
    bakery = client("bakery")
    bad = Realization({"other-1": HostAccess("10.77.0.300", "ro ot")}, "ftp://x", "nope", admin_cidrs=("10.77.0.0/33",))
    with pytest.raises(RealizationError) as caught:
        check_realization([bakery, bakery], bad)
    message = str(caught.value)
    for expected in (
        "client 'bakery' given twice",
        "--hosts: no entry for server 'shared-1'",
        "other-1.address must be an IP address",
        "other-1.ssh_user must be a user name",
        "--s3-endpoint: must be an http:// or https:// URL",
        "--push-base-url: must be an http:// or https:// URL",
        "--admin-cidr: must be a network",
    ):
        assert expected in message


def test_trusted_addresses_reach_the_server_and_a_bad_one_is_refused_by_name() -> None:
    shop = client("shop")
    hosts = realization(shop).hosts
    trusted = Realization(hosts, S3, PUSH, trusted_addresses=("10.77.0.1", "10.77.0.1", "192.0.2.0/28"))
    host = host_vars(inventory([shop], trusted), shop.plan.hosting.server)
    assert host["carestack_server"]["trusted_addresses"] == ["10.77.0.1", "192.0.2.0/28"]
    with pytest.raises(RealizationError, match=r"--trusted-address: must be an address or network .* got 'bridge'"):
        check_realization([shop], Realization(hosts, S3, PUSH, trusted_addresses=("bridge",)))


def test_push_tokens_for_unknown_sites_or_jobs_are_refused_without_echoing_them() -> None:
    plan = plan_of("bakery")
    site = plan.sites[0].id
    tokens = {site: {"backup": "s3cr3t-token", "dance": "s3cr3t-two"}, "ghost": {"backup": "s3cr3t-three"}}
    bakery = Client(plan, ClientSecrets("pw", "id", "sk", tokens))
    with pytest.raises(RealizationError) as caught:
        check_realization([bakery], realization(bakery))
    assert f"{site}.dance is not a job" in str(caught.value) and "unknown site 'ghost'" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_secrets_come_from_the_environment_and_errors_name_the_variable_only() -> None:
    with pytest.raises(ConfigureError, match="CARESTACK_S3_SECRET_ACCESS_KEY"):
        secrets_from_env({"CARESTACK_RESTIC_PASSWORD": "pw", "CARESTACK_S3_ACCESS_KEY_ID": "id"})
    env = {
        "CARESTACK_RESTIC_PASSWORD": "pw",
        "CARESTACK_S3_ACCESS_KEY_ID": "id",
        "CARESTACK_S3_SECRET_ACCESS_KEY": "sk",
    }
    with pytest.raises(ConfigureError, match="CARESTACK_PUSH_TOKENS") as caught:
        secrets_from_env({**env, "CARESTACK_PUSH_TOKENS": "{not json s3cr3t"})
    assert "s3cr3t" not in str(caught.value)
    got = secrets_from_env({**env, "CARESTACK_PUSH_TOKENS": '{"bakery-bakery": {"backup": "t"}}'})
    assert got.push_tokens == {"bakery-bakery": {"backup": "t"}}
    assert "pw" not in repr(got) and "sk" not in repr(got)


def test_hosts_json_as_text_or_file(tmp_path: Path) -> None:
    text = '{"shared-1": {"address": "10.77.0.10", "ssh_user": "admin"}, "shop-1": {"address": "10.77.0.12"}}'
    assert parse_hosts(text) == {"shared-1": HostAccess("10.77.0.10", "admin"), "shop-1": HostAccess("10.77.0.12")}
    (tmp_path / "hosts.json").write_text(text)
    assert parse_hosts(str(tmp_path / "hosts.json")) == parse_hosts(text)
    with pytest.raises(ConfigureError, match="--hosts: shared-1 must be"):
        parse_hosts('{"shared-1": "10.77.0.10"}')
    with pytest.raises(ConfigureError, match="--hosts: cannot read"):
        parse_hosts(str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    "value",
    ['quote " and backslash \\ and tab \t', "Bäckerei Korn GmbH", "", "line\nbreak", "#not a comment"],
)
def test_toml_writer_round_trips_awkward_strings(value: str) -> None:
    document = {"agent": {"host": "h"}, "sites": {"a-b": {"name": value, "list": [value, "x"], "n": 3, "t": True}}}
    assert tomllib.loads(agent_config.dumps(document)) == document


def test_toml_writer_round_trips_floats_nested_tables_and_arrays_of_tables() -> None:
    site = {"x": 1.5, "updates": {"limit": 3.0, "on": False}, "checks": [{"path": "/", "n": 1}, {"path": "/a/"}]}
    document = {"sites": {"s": site, "empty": {"checks": [], "t": {}}}}
    assert tomllib.loads(agent_config.dumps(document)) == document


def test_admin_keys_give_the_server_an_admin_also_when_reached_as_root() -> None:
    bakery = client("bakery")
    base = realization(bakery)
    as_root = Realization(base.hosts, S3, PUSH, admin_keys=("ssh-ed25519 AAAA lab",))
    assert host_vars(inventory([bakery], as_root), "shared-1")["carestack_server"]["admins"] == [
        {"name": "admin", "keys": ["ssh-ed25519 AAAA lab"]}
    ]
    assert host_vars(inventory([bakery], base), "shared-1")["carestack_server"]["admins"] == []
    as_admin = Realization({"shared-1": HostAccess("10.77.0.10", "debian")}, S3, PUSH)
    assert host_vars(inventory([bakery], as_admin), "shared-1")["carestack_server"]["admins"] == [
        {"name": "debian", "keys": []}
    ]


def test_a_server_can_be_sized_below_what_its_os_reports() -> None:
    bakery = client("bakery")
    sized = Realization({"shared-1": HostAccess("10.77.0.10", memory_mb=2048)}, S3, PUSH)
    assert host_vars(inventory([bakery], sized), "shared-1")["carestack_server"]["memory_mb"] == 2048
    assert parse_hosts('{"shared-1": {"address": "10.77.0.10", "memory_mb": 2048}}')["shared-1"].memory_mb == 2048
    with pytest.raises(RealizationError, match=r"shared-1\.memory_mb must be"):
        check_realization([bakery], Realization({"shared-1": HostAccess("10.77.0.10", memory_mb=12)}, S3))


def test_the_standby_gets_each_drilled_sites_config_and_drill_timer_and_nothing_of_the_site_itself() -> None:
    shop, studio = client("shop"), client("studio")
    real = realization(shop, studio)
    real = Realization(
        {**real.hosts, "standby-1": HostAccess("10.77.0.30")}, S3, PUSH, admin_cidrs=("10.77.0.0/24",),
        standby="standby-1",
    )  # fmt: skip
    check_realization([shop, studio], real)
    inv = inventory([shop, studio], real)
    standby = host_vars(inv, "standby-1")
    assert standby["carestack_sites"] == {}  # the sites do not run there
    assert set(standby["carestack_clients"]) == {"shop"}  # studio's tier has no restore drill
    assert standby["carestack_server"]["name"] == "standby-1"
    assert shop.plan.sla.failover is not None and shop.plan.sla.restore_drill is not None
    for site in shop.plan.sites:
        drill = site.job("drill")
        assert standby["carestack_drills"][site.id]["jobs"] == [
            {"name": "drill", "on_calendar": drill.schedule.on_calendar,
             "randomized_delay_seconds": drill.schedule.randomized_delay_seconds}
        ]  # fmt: skip
        own = host_vars(inv, shop.plan.hosting.server)["carestack_sites"][site.id]["jobs"]
        assert "drill" not in [j["name"] for j in own]  # its own server never drills it
    config = parse_agent_config(assembled_config(standby))
    assert config.agent.host == "standby-1"
    for site in shop.plan.sites:
        got = config.site(site.id)
        assert got.drill is not None and got.drill.timeout_seconds == shop.plan.sla.failover.rto_minutes * 60
        assert got.repository == f"s3:{S3}/{site.repository_path}" and got.push_base_url == PUSH
    wanted = {agent_config.password_file("shop"), agent_config.credentials_file("shop")}
    wanted |= {agent_config.push_tokens_file(s.id) for s in shop.plan.sites}
    assert set(standby["carestack_secret_paths"]) == wanted


def test_a_standby_missing_from_the_hosts_is_refused() -> None:
    shop = client("shop")
    real = Realization(realization(shop).hosts, S3, PUSH, standby="standby-1")
    with pytest.raises(RealizationError, match="no entry for the standby 'standby-1'"):
        check_realization([shop], real)


def _render_units(host: dict[str, Any]) -> dict[str, Any]:
    """The agent role's units template rendered for a host, as Ansible feeds it to install-files.py."""
    import jinja2
    import yaml
    from ansible.plugins.filter.core import FilterModule

    role = Path(__file__).resolve().parents[2] / "ansible/roles/agent"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(role / "templates"), keep_trailing_newline=True)
    env.filters.update(FilterModule().filters())  # Ansible's own filters (to_json, flatten)
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text())
    text = env.get_template("units.yml.j2").render(**defaults, **host, ansible_managed="managed by Ansible")
    rendered: dict[str, Any] = yaml.safe_load(text)
    return rendered


def test_the_standby_gets_a_drill_service_and_one_drill_timer_per_site_on_the_plans_schedule() -> None:
    shop = client("shop")
    hosts = {**realization(shop).hosts, "standby-1": HostAccess("10.77.0.30")}
    inv = inventory([shop], Realization(hosts, S3, PUSH, standby="standby-1"))
    units = _render_units(host_vars(inv, "standby-1"))
    site = shop.plan.sites[0]
    assert units["units"] == [f"carestack-drill@{s.id}.timer" for s in shop.plan.sites]
    timer = units["files"][f"/etc/systemd/system/carestack-drill@{site.id}.timer"]
    assert f"OnCalendar={site.job('drill').schedule.on_calendar}\n" in timer
    service = units["files"]["/etc/systemd/system/carestack-drill@.service"]
    assert "ExecStart=/usr/local/bin/carestack-agent drill %i\n" in service
    own = _render_units(host_vars(inv, shop.plan.hosting.server))
    assert not [t for t in own["units"] if t.startswith("carestack-drill@")]
