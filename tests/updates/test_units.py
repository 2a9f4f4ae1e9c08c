"""The update machinery's pieces, without the lab: fast, no marker.

Version orders were checked against the real tools (dpkg --compare-versions,
PHP's version_compare); apt's simulation lines are what apt printed on the
lab's Debian servers; release archives and the journal are built here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest
from carestack_agent.actions.recovery import find_interrupted
from carestack_agent.config import PROVIDERS as ACCEPTED_PROVIDERS
from carestack_agent.config import ConfigError, parse
from carestack_agent.journal import Journal
from carestack_agent.probe import Answer, Page, limit_for
from carestack_agent.providers import apt, release, wordpress
from carestack_agent.providers.base import Change, Offer, ProviderError
from carestack_agent.providers.failed import FailedVersions, UnknownComponent
from carestack_agent.providers.registry import PROVIDERS
from carestack_agent.versions import debian_compare, major, php_compare

from infra import agent_config
from infra.plan import build_plan
from infra.spec import STACKS_DIR, load_stack


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [("1.0", "1.0-1", -1), ("1.0~rc1", "1.0", -1), ("1:0.9", "2.0", 1), ("1.10", "1.9", 1), ("1.0a", "1.0+1", -1),
     ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2", -1), ("20250419~deb12u2", "20230311+deb12u1", 1), ("1.0", "1.0", 0)],
)  # fmt: skip
def test_debian_versions_order_like_dpkg(a: str, b: str, order: int) -> None:
    got = debian_compare(a, b)
    assert (got > 0) - (got < 0) == order


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [("1.0", "1.0.0", -1), ("1.0rc1", "1.0", -1), ("1.0-beta2", "1.0RC1", -1), ("1.0pl1", "1.0", 1),
     ("1.0dev", "1.0alpha", -1), ("5.0.2", "5.0.10", -1), ("1.0.x", "1.0", -1), ("v1.0", "1.0", -1)],
)  # fmt: skip
def test_wordpress_versions_order_like_phps_version_compare(a: str, b: str, order: int) -> None:
    assert php_compare(a, b) == order


def test_the_major_version_is_the_first_number() -> None:
    assert [major(v) for v in ("2.4.1", "10.0", "v3.1", "1.2-beta")] == ["2", "10", "3", "1"]


# -- apt ---------------------------------------------------------------------------------

SIMULATION = """\
Inst libssl3 [3.0.20-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Inst tzdata [2026b-0+deb12u1] (2026f-0+deb12u1 Debian:12.13/oldstable, Debian-Security:12/oldstable-security [all])
Inst base-files [12.4+deb12u12] (12.4+deb12u13 Debian:12.13/oldstable [amd64])
Inst carestack-lab-tools [1.0] (1.1 carestack-lab:lab-security [all])
Inst libnew1 (2.0 Debian:12.13/oldstable [amd64])
Conf libssl3 (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Remv oldlib [0.9]
"""


def test_apt_simulation_gives_each_change_and_whether_it_is_a_security_update() -> None:
    installs, removals = apt.parse_simulation(SIMULATION)
    assert [(u.name, u.old, u.new, u.security) for u in installs] == [
        ("libssl3", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", True),
        ("tzdata", "2026b-0+deb12u1", "2026f-0+deb12u1", True),
        ("base-files", "12.4+deb12u12", "12.4+deb12u13", False),
        ("carestack-lab-tools", "1.0", "1.1", True),
        ("libnew1", None, "2.0", False),
    ]
    assert removals == ["oldlib"]
    assert [u.name for u in apt.selected(installs, "security")] == ["libssl3", "tzdata", "carestack-lab-tools"]
    assert len(apt.selected(installs, "all")) == 5 and apt.selected(installs, "none") == []


def test_a_previous_version_can_be_rebuilt_from_the_installed_package(tmp_path: Path) -> None:
    """debs.rebuild on this machine's own base-files (conffiles and a postinst): nothing is installed."""
    if os.geteuid() != 0 or not Path("/var/lib/dpkg/info/base-files.list").exists():
        pytest.skip("needs root on a Debian system")
    from carestack_agent.proc import Deadline
    from carestack_agent.providers import debs

    deb = debs.rebuild("base-files", "all", tmp_path, Deadline(60))
    fields = debs.fields_of(deb, Deadline(10))
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "base-files"], capture_output=True, text=True)
    assert (fields["Package"], fields["Version"]) == ("base-files", installed.stdout)
    packed = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True)
    names = [line.split(None, 5)[5].split(" -> ")[0] for line in packed.stdout.splitlines()]
    paths = {"/" + name.removeprefix("./").rstrip("/") for name in names}
    listed = subprocess.run(["dpkg", "-L", "base-files"], capture_output=True, text=True, check=True).stdout.split()
    assert {p for p in listed if os.path.lexists(p)} <= paths | {"/."}
    control = subprocess.run(["dpkg-deb", "--info", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "postinst" in control and "conffiles" in control


# -- wordpress -----------------------------------------------------------------------------


def test_a_directory_feed_resolves_its_zips_and_bad_feeds_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "lab-notes.1.1.zip").write_bytes(b"PK")
    (tmp_path / "index.json").write_text(json.dumps({"plugins": {"lab-notes": {"1.1": "lab-notes.1.1.zip"}}}))
    assert wordpress.load_feed(str(tmp_path)) == {("plugin", "lab-notes"): {"1.1": str(tmp_path / "lab-notes.1.1.zip")}}
    (tmp_path / "index.json").write_text(json.dumps({"plugins": {"lab-notes": {"1.2": "missing.zip"}}}))
    with pytest.raises(ProviderError, match=r"missing\.zip does not exist"):
        wordpress.load_feed(str(tmp_path))
    (tmp_path / "index.json").write_text(json.dumps({"plugin": {}}))
    with pytest.raises(ProviderError, match='"plugins"'):
        wordpress.load_feed(str(tmp_path))


def test_the_wordpress_policy_takes_the_newest_minor_and_holds_majors() -> None:
    versions = ["1.1", "1.10", "1.9", "2.0", "0.9"]
    assert wordpress.choose("1.2", versions, "minor") == (["1.10", "1.9"], ["2.0"])
    assert wordpress.choose("1.2", versions, "all") == (["2.0", "1.10", "1.9"], [])
    assert wordpress.choose("1.2", versions, "none") == ([], ["2.0", "1.10", "1.9"])
    assert [wordpress.plugin_slug(f) for f in ("akismet/akismet.php", "hello.php")] == ["akismet", "hello"]


# -- release -------------------------------------------------------------------------------


def _tarball(path: Path, members: dict[str, str | None], symlinks: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                data = content.encode()
                info.size, info.mode = len(data), 0o4777  # setuid and world-writable: both dropped
                archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return path


def test_release_artifacts_are_found_by_name_and_ordered_like_debian_versions(tmp_path: Path) -> None:
    for name in ("plans-1.9.tar.gz", "plans-1.10.tgz", "plans-2.0~rc1.tar.xz", "notes.txt", "plans.tar.gz"):
        (tmp_path / name).write_text("x")
    assert [v for v, _ in release.artifacts(tmp_path)] == ["1.9", "1.10", "2.0~rc1"]


def test_a_release_archive_that_could_escape_the_tree_is_refused(tmp_path: Path) -> None:
    bad = {
        "dotdot": ({"../evil.php": "x"}, None),
        "absolute": ({"/etc/evil": "x"}, None),
        "symlink": ({"a/": None}, {"a/link": "../../etc/passwd"}),
    }
    for name, (members, links) in bad.items():
        archive = _tarball(tmp_path / f"{name}-1.0.tar.gz", members, links)
        with pytest.raises(ProviderError):
            release.unpack(archive, tmp_path / f"out-{name}")


def test_a_release_is_swapped_in_with_its_record_and_preserved_paths(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving files to the site's owner needs root")
    state = tmp_path / "state"
    root = tmp_path / "www" / "plans"
    (root / "uploads").mkdir(parents=True)
    (root / "uploads" / "plan.pdf").write_text("client data")
    (root / "old.php").write_text("old")
    releases = state / "releases" / "s-plans"
    releases.mkdir(parents=True)
    _tarball(releases / "plans-1.1.tar.gz", {"plans-1.1/": None, "plans-1.1/index.php": "<?php echo 'v1.1';"})
    _tarball(releases / "plans-1.2.tar.gz", {"plans-1.2/": None, "plans-1.2/index.php": "<?php echo 'v1.2';"})
    config = parse(tomllib.loads(_config_text(state, root, '["release"]', 'release_preserve = ["uploads"]')))
    ctx = _context(config)
    provider = release.ReleaseProvider(ctx)
    failed = FailedVersions(state, "s-plans")
    failed.add([Change("release", "release", "s-plans", "1.1", "1.2")], "earlier-run", "plans.example/: HTTP 500")
    offer = provider.discover(failed)
    assert [c.to_version for c in offer.changes] == ["1.1"]  # 1.2 was rolled back before
    assert "release 1.2 skipped: it broke the site and was rolled back" in offer.notes[0]
    provider.prepare(offer)
    provider.apply(offer)
    assert sorted(p.name for p in root.iterdir()) == [".carestack-release", "index.php", "uploads"]
    assert (root / "uploads" / "plan.pdf").read_text() == "client data"
    assert (root / "index.php").stat().st_mode & 0o7777 == 0o755
    assert release.current(root) == "1.1"
    failed.forget(failed.match("release"))
    assert provider.discover(failed).changes[0].to_version == "1.2"


def _config_text(state: Path, root: Path, providers: str, extra: str = "") -> str:
    return f"""
[agent]
host = "h"
state_dir = "{state}"
[sites.s-plans]
domain = "plans.example"
kind = "php"
root = "{root}"
paths = ["{root}"]
exclude = []
repository = "{state}/repo"
password_file = "{state}/pw"
[sites.s-plans.retention]
keep_last = 0
keep_hourly = 0
keep_daily = 1
keep_weekly = 0
keep_monthly = 0
keep_yearly = 0
[sites.s-plans.jobs]
backup_timeout_seconds = 3600
check_timeout_seconds = 3600
prune_timeout_seconds = 3600
restore_timeout_seconds = 3600
check_read_data_subsets = 1
update_timeout_seconds = 7200
repository_stall_seconds = 300
scan_timeout_seconds = 3600
perf_timeout_seconds = 600
[sites.s-plans.updates]
providers = {providers}
apt_policy = "security"
wordpress_policy = "minor"
rollback = true
probe_slowdown_limit = 3.0
{extra}
[sites.s-plans.perf]
requests_per_page = 3
limit_percent = 20.0
floor_ms = 100
baseline_weeks = 4
keep_days = 35
[[sites.s-plans.checks]]
path = "/"
keyword = "Plan"
status = 200
"""


def _context(config):  # type: ignore[no-untyped-def]
    from carestack_agent.jobs import Context

    return Context.create(config, config.site("s-plans"), "update", 60)


# -- config and the controller's rendering -------------------------------------------------------


def test_update_settings_are_validated_with_their_key_paths(tmp_path: Path) -> None:
    text = _config_text(tmp_path, tmp_path / "root", '["apt", "snap"]').replace('"security"', '"daily"')
    with pytest.raises(ConfigError) as e:
        parse(tomllib.loads(text.replace("status = 200", "status = 99")))
    assert sorted(e.value.errors) == [
        "sites.s-plans.checks[0].status: must be an integer between 100 and 599, got 99",
        'sites.s-plans.updates.apt_policy: must be one of security, all, none, got "daily"',
        "sites.s-plans.updates.providers: must be a list of distinct values from apt, wordpress, release, got list",
    ]
    no_checks = tomllib.loads(_config_text(tmp_path, tmp_path / "root", '["wordpress"]'))
    no_checks["sites"]["s-plans"]["checks"] = []
    with pytest.raises(ConfigError) as e:
        parse(no_checks)
    assert e.value.errors == [
        "sites.s-plans.checks: updates need at least one page to probe (updates.providers is set)",
        "sites.s-plans.updates.providers: wordpress applies to kind wordpress or woocommerce only",
    ]


def test_the_plans_update_settings_have_no_agent_side_defaults(tmp_path: Path) -> None:
    """One source for the policy: a config names every setting, whether or not the site lists providers."""
    keys = ("update_timeout_seconds", "apt_policy", "wordpress_policy", "rollback", "probe_slowdown_limit")
    for providers in ('["apt", "wordpress"]', "[]"):
        bare = "\n".join(
            line
            for line in _config_text(tmp_path, tmp_path / "root", providers).splitlines()
            if not line.startswith(keys)
        ).replace('kind = "php"', 'kind = "wordpress"')
        with pytest.raises(ConfigError) as e:
            parse(tomllib.loads(bare))
        assert sorted(e.value.errors) == sorted(
            f"sites.s-plans.{key}: is required"
            for key in ("updates.rollback", "updates.probe_slowdown_limit", "jobs.update_timeout_seconds",
                        "updates.apt_policy", "updates.wordpress_policy")
        )  # fmt: skip


def test_the_rendered_agent_config_carries_the_plans_update_settings_and_checks() -> None:
    plan = build_plan(load_stack(STACKS_DIR / "Pulumi.studio.yaml"))
    text = agent_config.header("shared-1") + agent_config.client_fragment(plan, "http://10.77.0.1:9000", {})
    config = parse(tomllib.loads(text))
    for site in plan.sites:
        got = config.site(site.id)
        assert got.updates.providers == site.providers
        assert (got.updates.apt_policy, got.updates.wordpress_policy) == (
            plan.updates.apt_policy, plan.updates.wordpress_policy)  # fmt: skip
        assert got.updates.rollback == plan.updates.rollback
        assert got.updates.probe_slowdown_limit == plan.updates.probe_slowdown_limit
        assert got.jobs.update_timeout_seconds == site.job("update").timeout_seconds
        assert got.jobs.restore_timeout_seconds == plan.backup.restore_timeout_seconds
        assert [(c.path, c.keyword, c.status) for c in got.checks] == [
            (c.path, c.keyword, c.status) for c in site.checks
        ]


# -- probes, failed versions, the journal --------------------------------------------------


def test_a_probe_answer_says_what_is_wrong_and_limits_have_a_floor() -> None:
    page = Page("s", "a.example", "/", "Plan archive", 200)
    assert Answer(200, 0.1, True).problem(page) is None
    assert Answer(500, 0.1, False).problem(page) == "HTTP 500, expected 200"
    assert Answer(200, 0.1, False).problem(page) == "HTTP 200 without 'Plan archive'"
    assert Answer(None, 10, False, "timed out").problem(page) == "no answer (timed out)"
    config = parse(tomllib.loads(_config_text(Path("/s"), Path("/r"), "[]")))
    assert limit_for(0.02, 3.0, config.agent) == config.agent.probe_min_limit_seconds
    assert limit_for(2.0, 3.0, config.agent) == 6.0


def _journal(tmp_path: Path, events: list[tuple[str, str, dict[str, object]]]) -> Journal:
    journal = Journal(tmp_path)
    for run_id, event, fields in events:
        journal.append({"site": "s-plans", "job": fields.pop("job", "update"), "run_id": run_id, "event": event,
                        **fields})  # fmt: skip
    return journal


def test_an_update_without_an_end_is_found_with_its_snapshot_and_offers(tmp_path: Path) -> None:
    offer = Offer("apt", [Change("apt", "package", "nginx", "1.0", "2.0")], data={"rollback_dir": "/x"})
    journal = _journal(tmp_path, [
        ("r1", "start", {}), ("r1", "step", {"step": "health"}), ("r1", "end", {"result": "ok", "figures": {}}),
        ("r2", "start", {}), ("r2", "step", {"step": "snapshot"}), ("r2", "snapshot", {"snapshot_id": "abc"}),
        ("r2", "step", {"step": "apply"}), ("r2", "apply", {"offer": offer.to_json()}),
        ("b1", "start", {"job": "backup"}),
    ])  # fmt: skip
    found = find_interrupted(journal, "s-plans", current_run="b1")
    assert found is not None
    assert (found.run_id, found.step, found.snapshot, found.verified) == ("r2", "apply", "abc", False)
    assert found.offers[0].changes == offer.changes and found.offers[0].data == {"rollback_dir": "/x"}
    # an update run never finds itself; a run settled since is not interrupted any more
    assert find_interrupted(journal, "s-plans", current_run="r2") is None
    journal.append({"site": "s-plans", "job": "update", "run_id": "r2", "event": "end", "figures": {}})
    assert find_interrupted(journal, "s-plans", current_run="b2") is None


def test_a_run_whose_rollback_failed_stays_pending_until_settled(tmp_path: Path) -> None:
    journal = _journal(tmp_path, [
        ("r1", "start", {}), ("r1", "snapshot", {"snapshot_id": "abc"}), ("r1", "verified", {}),
        ("r1", "end", {"figures": {"pending_rollback": True}}),
    ])  # fmt: skip
    found = find_interrupted(journal, "s-plans", current_run="x")
    assert found is not None and found.verified
    journal.append({"site": "s-plans", "job": "update", "run_id": "r1", "event": "end", "figures": {}})
    assert find_interrupted(journal, "s-plans", current_run="x") is None
    assert FailedVersions(tmp_path, "s-plans").blocked(Change("apt", "package", "n", "1", "2")) is None


def _releases(releases: Path, *versions: str) -> None:
    for version in versions:
        _tarball(releases / f"plans-{version}.tar.gz",
                 {f"plans-{version}/": None, f"plans-{version}/index.php": f"<?php echo '{version}';"})  # fmt: skip


def test_every_broken_version_is_remembered_and_a_later_one_is_still_offered(tmp_path: Path) -> None:
    """Two broken releases one after another: the older one, offered again, is skipped; a newer one is offered."""
    state, root = tmp_path / "state", tmp_path / "www" / "plans"
    root.mkdir(parents=True)
    releases = state / "releases" / "s-plans"
    releases.mkdir(parents=True)
    config = parse(tomllib.loads(_config_text(state, root, '["release"]')))
    provider = release.ReleaseProvider(_context(config))
    failed = FailedVersions(state, "s-plans")

    _releases(releases, "1.2")
    first = provider.discover(failed).changes
    assert [c.to_version for c in first] == ["1.2"]
    failed.add(first, "run-1", "plans.example/: HTTP 500, expected 200")  # what the update flow does on a rollback
    _releases(releases, "1.3")
    second = provider.discover(failed).changes
    assert [c.to_version for c in second] == ["1.3"]
    failed.add(second, "run-2", "plans.example/: HTTP 200 without 'Plan'")
    (releases / "plans-1.3.tar.gz").unlink()  # only the older broken version is offered now

    again = provider.discover(failed)
    assert again.changes == []
    assert again.notes == [
        "release 1.2 skipped: it broke the site and was rolled back on "
        f"{failed.entries()[0].when[:10]} (`carestack-agent update s-plans --retry release` offers it again)"
    ]
    assert [(f.version, f.run_id, f.open) for f in failed.entries()] == [("1.2", "run-1", True), ("1.3", "run-2", True)]

    _releases(releases, "1.4")
    newer = provider.discover(failed).changes
    assert [c.to_version for c in newer] == ["1.4"]  # a later, different version is tried
    resolved = failed.resolve(newer, "run-3")  # it passed its probes: the rollbacks of the component are over
    assert [f.version for f in resolved] == ["1.2", "1.3"] and failed.open_rollbacks() == []
    assert len(failed.entries()) == 2  # ...and both versions stay held until an operator clears them

    gone = failed.forget(failed.match("release"))
    assert [f.version for f in gone] == ["1.2", "1.3"] and failed.entries() == []
    (releases / "plans-1.4.tar.gz").unlink()
    assert [c.to_version for c in provider.discover(failed).changes] == ["1.2"]


def test_open_rollbacks_close_when_acknowledged_and_retry_names_one_component(tmp_path: Path) -> None:
    failed = FailedVersions(tmp_path, "s-web")
    failed.add([Change("wordpress", "plugin", "lab-notes/lab-notes.php", "1.1", "1.2")], "r1", "web.example/: 500")
    nginx = [Change("apt", "package", name, "1.0", "2.0") for name in ("nginx", "nginx-common")]
    failed.add(nginx, "r2", "apt-get install failed")
    assert sorted(f.describe() for f in failed.open_rollbacks()) == [
        "apt nginx 1.0→2.0", "apt nginx-common 1.0→2.0", "plugin lab-notes/lab-notes.php 1.1→1.2"]  # fmt: skip
    assert sorted(f.version for f in failed.acknowledge("an operator")) == ["1.2", "2.0", "2.0"]
    assert failed.open_rollbacks() == [] and len(failed.entries()) == 3
    blocked = failed.blocked(Change("wordpress", "plugin", "lab-notes/lab-notes.php", "1.1", "1.2"))
    assert blocked is not None and "--retry lab-notes/lab-notes.php" in blocked
    # a plugin by its file or its directory, a package by its name, the full key
    plugin = "wordpress:plugin:lab-notes/lab-notes.php"
    assert failed.match("lab-notes") == failed.match("lab-notes/lab-notes.php") == plugin
    assert failed.match("apt:package:nginx") == failed.match("nginx") == "apt:package:nginx"
    with pytest.raises(UnknownComponent, match=r"--retry akismet: no version of it is remembered as broken on s-web "
                       r"\(remembered: nginx, nginx-common, lab-notes/lab-notes.php\)"):  # fmt: skip
        failed.match("akismet")


def test_the_first_format_of_the_memory_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "updates" / "s-plans.failed.json"
    path.parent.mkdir()
    first = {"release:release:s-plans": {"version": "1.2", "run_id": "r0", "when": "2026-11-30T01:00"}}
    path.write_text(json.dumps(first))
    failed = FailedVersions(tmp_path, "s-plans")
    assert failed.blocked(Change("release", "release", "s-plans", "1.1", "1.2")) is not None
    failed.add([Change("release", "release", "s-plans", "1.1", "1.3")], "r1", "broke")
    assert [(f.version, f.open) for f in failed.entries()] == [("1.2", False), ("1.3", True)]


def test_the_provider_registry_knows_every_provider_the_config_accepts() -> None:
    assert set(PROVIDERS) == set(ACCEPTED_PROVIDERS)
    assert all(cls.name == name for name, cls in PROVIDERS.items())
