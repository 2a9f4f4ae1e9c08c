"""The agent's config schema: every error with its key path, before any job starts."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from carestack_agent import config_docs, restic_commands
from carestack_agent.config import AgentSettings, ConfigError, Site, key, keys_of, load, parse
from carestack_agent.config_rules import integer

from .conftest import ROOT

EXAMPLE = """
[agent]
host = "shared-1"
state_dir = "/var/lib/carestack"
restic = "/usr/bin/restic"
nice = 10

[sites.bakery-www]
domain = "www.bakery.example"
kind = "wordpress"
root = "/srv/www/bakery-www"
paths = ["/srv/www/bakery-www"]
exclude = ["/srv/www/bakery-www/wp-content/cache"]
repository = "s3:http://10.77.0.1:9000/cs-bakery-backups/bakery-www"
password_file = "/etc/carestack/secrets/bakery.restic-password"
credentials_file = "/etc/carestack/secrets/bakery.s3.env"
push_base_url = "http://10.77.0.1:3001/api/push"
push_tokens_file = "/etc/carestack/secrets/bakery-www.push.env"
checks = []

[sites.bakery-www.database]
name = "bakery_www"
socket = "/run/mysqld/mysqld.sock"

[sites.bakery-www.retention]
keep_last = 0
keep_hourly = 0
keep_daily = 7
keep_weekly = 0
keep_monthly = 0
keep_yearly = 0

[sites.bakery-www.jobs]
backup_timeout_seconds = 3600
check_timeout_seconds = 3600
prune_timeout_seconds = 1800
restore_timeout_seconds = 5400
check_read_data_subsets = 4
update_timeout_seconds = 7200
repository_stall_seconds = 60
scan_timeout_seconds = 3600
perf_timeout_seconds = 600

[sites.bakery-www.updates]
providers = []
apt_policy = "security"
wordpress_policy = "minor"
rollback = true
probe_slowdown_limit = 3

[sites.bakery-www.perf]
requests_per_page = 3
limit_percent = 20
floor_ms = 100
baseline_weeks = 4
keep_days = 35

[sites.bakery-www.drill]
timeout_seconds = 3600
"""
# Every key above without an agent-side default, by where its value comes from (the schema must agree).
PLAN_KEYS = {
    "agent.host",
    *(f"sites.bakery-www.{k}" for k in ("domain", "kind", "root", "paths", "database.name", "checks")),
    *(f"sites.bakery-www.retention.keep_{k}" for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")),
    *(
        f"sites.bakery-www.jobs.{j}_timeout_seconds"
        for j in ("backup", "check", "prune", "restore", "update", "scan", "perf")
    ),
    "sites.bakery-www.jobs.check_read_data_subsets",
    "sites.bakery-www.jobs.repository_stall_seconds",
    *(f"sites.bakery-www.updates.{k}" for k in ("providers", "apt_policy", "wordpress_policy", "rollback")),
    "sites.bakery-www.updates.probe_slowdown_limit",
    *(
        f"sites.bakery-www.perf.{k}"
        for k in ("requests_per_page", "limit_percent", "floor_ms", "baseline_weeks", "keep_days")
    ),
    "sites.bakery-www.drill.timeout_seconds",
}
REQUIRED_KEYS = {"agent.state_dir", *(f"sites.bakery-www.{k}" for k in ("exclude", "repository", "password_file"))}


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(tomllib.loads(text))
    return e.value.errors


def test_the_contract_example_parses_with_every_value() -> None:
    cfg = parse(tomllib.loads(EXAMPLE))
    assert cfg.agent.host == "shared-1" and cfg.agent.nice == 10
    site = cfg.site("bakery-www")
    assert site.paths == (Path("/srv/www/bakery-www"),)
    assert site.database is not None and site.database.name == "bakery_www"
    assert restic_commands.keep_flags(site.retention) == ["--keep-daily", "7"]
    assert (site.jobs.check_read_data_subsets, site.jobs.prune_timeout_seconds) == (4, 1800)
    assert site.jobs.restore_timeout_seconds == 5400
    assert site.credentials_file == Path("/etc/carestack/secrets/bakery.s3.env")
    # values as the attributes hold them: a TOML integer where a number is asked for is a float
    assert site.updates.probe_slowdown_limit == 3.0 and isinstance(site.updates.probe_slowdown_limit, float)
    assert site.updates.release_dir == Path("/var/lib/carestack/releases/bakery-www")  # state_dir/releases/<id>
    # the agent's own defaults for keys the controller leaves out (never a value the plan owns)
    assert cfg.agent.retries == 3 and cfg.agent.ionice_idle is True
    assert (site.retention.keep_last, site.retention.keep_yearly) == (0, 0)


def test_the_site_id_evidence_is_reserved_for_the_evidence_records_prefix() -> None:
    errors = errors_of(EXAMPLE.replace("[sites.bakery-www", "[sites.evidence"))
    assert errors == [
        "sites.evidence: the site id 'evidence' is reserved: the bucket's evidence/ prefix holds the evidence "
        "records, and a repository there would mix with them; choose another id"
    ]


def test_a_sites_client_is_a_client_id() -> None:
    assert (
        parse(tomllib.loads(EXAMPLE.replace('kind = "wordpress"', 'kind = "wordpress"\nclient = "bakery"')))
        .site("bakery-www")
        .client
        == "bakery"
    )
    assert errors_of(EXAMPLE.replace('kind = "wordpress"', 'kind = "wordpress"\nclient = "Bakery Ltd"')) == [
        'sites.bakery-www.client: must be a client id, got "Bakery Ltd"'
    ]


def _parse_errors(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(doc)
    return e.value.errors


def _without(dotted: str) -> dict[str, Any]:
    """EXAMPLE's document without one key."""
    doc = tomllib.loads(EXAMPLE)
    *parents, name = dotted.split(".")
    table = doc
    for part in parents:
        table = table[part]
    del table[name]
    return doc


def test_every_value_the_plan_owns_and_every_required_key_has_no_agent_side_default() -> None:
    for dotted in sorted(PLAN_KEYS | REQUIRED_KEYS):
        assert _parse_errors(_without(dotted)) == [f"{dotted}: is required"], dotted
    # ...and the schema says which are the plan's: exactly these
    plan = {f"agent.{k.name}" for k in keys_of(AgentSettings) if k.setting.plan}
    for k in keys_of(Site):
        if k.subtable is None or k.is_array:  # a key, or an array of tables given as one key
            plan |= {f"sites.bakery-www.{k.name}"} if k.setting.plan else set()
        else:
            plan |= {f"sites.bakery-www.{k.name}.{s.name}" for s in keys_of(k.subtable) if s.setting.plan}
    assert plan == PLAN_KEYS


def test_a_missing_table_of_plan_values_names_each_key_it_lacks() -> None:
    text = EXAMPLE.split("[sites.bakery-www.jobs]")[0] + "[sites.bakery-www.updates]" + EXAMPLE.split("updates]")[1]
    assert errors_of(text) == [
        f"sites.bakery-www.jobs.{k}: is required"
        for k in ("backup_timeout_seconds", "check_timeout_seconds", "prune_timeout_seconds",
                  "restore_timeout_seconds", "check_read_data_subsets", "update_timeout_seconds",
                  "repository_stall_seconds", "scan_timeout_seconds", "perf_timeout_seconds")
    ]  # fmt: skip


def test_a_value_the_plan_owns_cannot_be_given_a_default() -> None:
    with pytest.raises(TypeError, match="the plan owns"):
        key(integer(1), "a deadline", plan=True, default=3600)


def test_every_error_is_reported_with_its_key_path() -> None:
    bad = (
        EXAMPLE.replace("keep_daily = 7", 'keep_daily = "x"')
        .replace('kind = "wordpress"', 'kind = "joomla"')
        .replace("nice = 10", "nice = 40")
        .replace('root = "/srv/www/bakery-www"', 'root = "srv/www"')
        .replace("check_read_data_subsets = 4", "check_read_data_subsets = true\nbogus = 1")
        .replace('name = "bakery_www"', 'name = "bakery-www; DROP"')
    )
    errors = errors_of(bad)
    assert 'sites.bakery-www.retention.keep_daily: must be an integer >= 0, got "x"' in errors
    assert 'sites.bakery-www.kind: must be one of wordpress, woocommerce, php, static, got "joomla"' in errors
    assert "agent.nice: must be an integer between 0 and 19, got 40" in errors
    assert 'sites.bakery-www.root: must be an absolute path, got "srv/www"' in errors
    assert "sites.bakery-www.jobs.check_read_data_subsets: must be an integer between 1 and 10000, got true" in errors
    assert "sites.bakery-www.jobs.bogus: unknown key" in errors
    assert any(e.startswith("sites.bakery-www.database.name: must be a MariaDB database name") for e in errors)
    assert len(errors) == 7


def test_missing_required_keys_and_cross_checks() -> None:
    errors = errors_of(
        """
[agent]
[sites.Bad_Id]
kind = "static"
[sites.shop]
domain = "shop.example"
kind = "static"
root = "/srv/www/shop"
paths = []
repository = "s3:http://10.77.0.1:9000/b/shop"
password_file = "/etc/pw"
push_base_url = "http://10.77.0.1:3001/api/push"
[sites.shop.database]
name = "shop"
[sites.shop.retention]
keep_last = 0
keep_hourly = 0
keep_daily = 0
keep_weekly = 0
keep_monthly = 0
keep_yearly = 0
"""
    )
    assert "agent.host: is required" in errors
    assert "sites.Bad_Id: site id must match [a-z][a-z0-9-]{0,31}" in errors
    assert "sites.Bad_Id.domain: is required" in errors
    assert "sites.shop.paths: must not be empty" in errors
    assert "sites.shop.credentials_file: is required for an s3: repository" in errors
    assert "sites.shop: push_base_url and push_tokens_file go together (set both or neither)" in errors
    assert "sites.shop.retention: at least one keep_* must be > 0 (all zero would keep nothing)" in errors
    assert "sites.shop.database: a static site has no database" in errors


def test_wrong_types_for_tables_and_top_level() -> None:
    errors = errors_of('agent = 3\nsites = "x"\nextra = 1\n')
    assert "agent: must be a table, got 3" in errors
    assert 'sites: must be a table, got "x"' in errors
    assert "extra: unknown key" in errors
    doc = tomllib.loads(EXAMPLE)
    doc["sites"]["bakery-www"] |= {"checks": "/", "jobs": 3600, "database": None}
    assert _parse_errors(doc) == [
        "sites.bakery-www.database: must be a table, got null",
        "sites.bakery-www.jobs: must be a table, got 3600",
        'sites.bakery-www.checks: must be an array of tables ([[sites.bakery-www.checks]]), got "/"',
    ]


def test_unknown_site_is_a_config_error(tmp_path: Path) -> None:
    cfg = parse(tomllib.loads(EXAMPLE))
    with pytest.raises(ConfigError, match=r"sites.nope: no such site \(configured: bakery-www\)"):
        cfg.site("nope")


def test_load_reports_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[agent\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path / "bad.toml")


# -- the docs come from the schema --------------------------------------------------------

SAMPLE = ROOT / "agent" / "agent.sample.toml"
README = ROOT / "agent" / "README.md"
REGENERATE = "stale: run scripts/agent_config_docs.py"


def test_the_sample_config_is_current_valid_and_names_every_key() -> None:
    assert SAMPLE.read_text() == config_docs.sample(), REGENERATE
    cfg = parse(tomllib.loads(SAMPLE.read_text()))
    assert cfg.site(config_docs.SAMPLE_SITE).updates.providers  # an example with updates and pages to probe
    # every key once, as a line of its own (commented out where the agent's default applies)
    named = [line.lstrip("# ").split(" = ")[0] for line in SAMPLE.read_text().splitlines() if " = " in line]
    schema = [k.name for k in keys_of(AgentSettings)] + [k.name for k in keys_of(Site) if k.subtable is None]
    schema += [s.name for k in keys_of(Site) if k.subtable is not None for s in keys_of(k.subtable)]
    assert sorted(named) == sorted(schema)
    # uncommenting everything still gives a valid config (the defaults are valid values)
    parse(tomllib.loads("\n".join(line.removeprefix("# ") if " = " in line else line
                                  for line in SAMPLE.read_text().splitlines())))  # fmt: skip


def test_the_readme_config_section_is_current_and_lists_every_key() -> None:
    text = README.read_text()
    assert config_docs.with_readme_section(text) == text, REGENERATE
    section = text.split(config_docs.README_BEGIN)[1].split(config_docs.README_END)[0]
    assert "| `restore_timeout_seconds` | an integer >= 1 | *the plan* |" in section
    assert "| `nice` | an integer between 0 and 19 | `10` |" in section
    assert "| `apt_sources` | an absolute path (no '..') | *unset* |" in section
    assert "`sites.<id>.credentials_file`: is required for an s3: repository" in section
    with pytest.raises(ValueError, match="lacks the markers"):
        config_docs.with_readme_section(text.replace(config_docs.README_END, ""))


def _cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(config), "PYTHONPATH": str(ROOT / "agent")}
    return subprocess.run([sys.executable, "-m", "carestack_agent", *args], env=env, capture_output=True, text=True)


def test_validate_verb_prints_every_error_and_exits_non_zero(tmp_path: Path) -> None:
    good = tmp_path / "agent.toml"
    good.write_text(EXAMPLE)
    ok = _cli("validate", config=good)
    assert ok.returncode == 0, ok.stderr
    assert "1 site(s): bakery-www" in ok.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(
        EXAMPLE.replace("keep_daily = 7", 'keep_daily = "x"').replace("nice = 10", "nice = -1")
        .replace("restore_timeout_seconds = 5400\n", "")
    )  # fmt: skip
    res = _cli("validate", config=bad)
    assert res.returncode == 78
    assert res.stderr.splitlines() == [
        "agent.nice: must be an integer between 0 and 19, got -1",
        'sites.bakery-www.retention.keep_daily: must be an integer >= 0, got "x"',
        "sites.bakery-www.jobs.restore_timeout_seconds: is required",
    ]
    # a bad config never starts a job
    job = _cli("backup", "bakery-www", config=bad)
    assert job.returncode == 78 and "keep_daily" in job.stderr


def test_sample_config_verb_prints_the_sample_without_reading_a_config(tmp_path: Path) -> None:
    res = _cli("sample-config", config=tmp_path / "missing.toml")
    assert res.returncode == 0, res.stderr
    assert res.stdout == SAMPLE.read_text()
