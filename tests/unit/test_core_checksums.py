"""WordPress core checksums for the versions Debian's package is not: named in the catalog (a directory on
the controller), checked before anything changes, handed to every server by converge, and read by the
scan's core check offline, in the format of WordPress's core checksums API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from carestack_agent.config import Scan
from carestack_agent.scan.base import ScanSite
from carestack_agent.scan.core import CoreIntegrity

from infra import agent_config
from infra.ansible_vars import RealizationError
from infra.plan import CarePlan
from infra.spec import SpecError, load_catalog
from tests.unit.agency_catalog import catalog_with, studio_host_vars, studio_plan

VERSION = "6.4.3"
RELEASE = {  # a release's files as the checksums API lists them: core and the bundled wp-content
    "index.php": "<?php\nrequire __DIR__ . '/wp-blog-header.php';\n",
    "wp-login.php": "<?php\n// login\n",
    "wp-admin/index.php": "<?php\n// dashboard\n",
    "wp-includes/load.php": "<?php\nfunction wp_load() {}\n",
    "wp-includes/version.php": f"<?php\n$wp_version = '{VERSION}';\n",
    "wp-content/plugins/hello.php": "<?php\n// Hello Dolly\n",
}


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def api_answer(files: dict[str, str] = RELEASE, *, by_version: bool = False) -> str:
    sums = {rel: md5(text) for rel, text in files.items()}
    return json.dumps({"checksums": {VERSION: sums} if by_version else sums})


def test_the_agencys_checksum_files_go_to_every_server_where_the_scan_reads_them(tmp_path: Path) -> None:
    directory = tmp_path / "core-checksums"
    directory.mkdir()
    (directory / f"{VERSION}.json").write_text(api_answer())
    (directory / "6.5.json").write_text(api_answer(by_version=True))
    (directory / "README.txt").write_text("fetched once per release\n")  # not a checksum file: not copied
    plan = studio_plan(catalog_with(tmp_path, "core_checksums", str(directory)))
    assert plan.security.core_checksums == str(directory)
    assert CarePlan.from_dict(plan.to_dict()) == plan
    found = studio_host_vars(plan)
    assert found["carestack_core_checksums"] == {"6.4.3.json": api_answer(), "6.5.json": api_answer(by_version=True)}
    # converge writes them where the agent looks by default
    assert str(Scan().core_checksums) == agent_config.CORE_CHECKSUMS_DIR


def test_without_checksums_nothing_is_copied_and_an_older_plan_still_reads() -> None:
    plan = studio_plan()
    assert plan.security.core_checksums is None
    assert studio_host_vars(plan)["carestack_core_checksums"] == {}
    data = plan.to_dict()
    del data["security"]["core_checksums"]  # as a Pulumi state of an earlier carestack holds it
    assert CarePlan.from_dict(data) == plan


def test_bad_checksums_are_named_before_anything_changes(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as raised:
        load_catalog(catalog_with(tmp_path, "core_checksums", "checksums/"))
    assert any(
        p.startswith("agency.core_checksums: expected the absolute path of a directory") and "'checksums/'" in p
        for p in raised.value.problems
    ), raised.value.problems
    gone = tmp_path / "gone"
    with pytest.raises(RealizationError, match=rf"agency.core_checksums: {gone}: not a directory"):
        studio_host_vars(studio_plan(catalog_with(tmp_path, "core_checksums", str(gone))))
    directory = tmp_path / "sums"
    directory.mkdir()
    (directory / "wordpress.json").write_text(api_answer())
    (directory / "6.3.json").write_text("{not json")
    (directory / "6.2.json").write_text(json.dumps({"checksums": False}))
    with pytest.raises(RealizationError) as raised_all:
        studio_host_vars(studio_plan(catalog_with(tmp_path, "core_checksums", str(directory))))
    problems = str(raised_all.value).splitlines()
    assert f"agency.core_checksums: {directory}/wordpress.json: expected a WordPress version as the name, such as " \
        "6.4.3.json" in problems  # fmt: skip
    assert any(p.startswith(f"agency.core_checksums: {directory}/6.3.json: not JSON") for p in problems), problems
    assert f'agency.core_checksums: {directory}/6.2.json: expected {{"checksums": {{path: md5}}}}, the core ' \
        "checksums API's answer" in problems  # fmt: skip


# --- the scan's core check on a site of a version Debian's package is not -------------------------------------


def site_of(tmp_path: Path, files: dict[str, str], checksums: Path) -> ScanSite:
    root = tmp_path / "site"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    inventory: dict[str, dict[str, object]] = {rel: {} for rel in files}
    return ScanSite(
        id="bakery-www", domain="bakery.example", root=root, kind="wordpress", upload_dirs=("wp-content/uploads",),
        database=None, mariadb=Path("/usr/bin/mariadb"), yara=Path("/usr/bin/yara"), rules_dir=tmp_path,
        feed=None, core_checksums=checksums, other_roots=(), files=inventory,
    )  # fmt: skip


def core_findings(tmp_path: Path, files: dict[str, str], answer: str | None) -> list[tuple[str, str]]:
    checksums = tmp_path / "checksums"
    checksums.mkdir(exist_ok=True)
    if answer is not None:
        (checksums / f"{VERSION}.json").write_text(answer)
    no_package = tmp_path / "dpkg-info"  # no wordpress package on this host
    no_package.mkdir(exist_ok=True)
    found = CoreIntegrity(dpkg_info=no_package).run(site_of(tmp_path, files, checksums), None)
    return [(f.severity, f.message) for f in found]


@pytest.mark.parametrize("by_version", [False, True], ids=["one-version-answer", "by-version-answer"])
def test_an_unchanged_release_matches_its_checksums(tmp_path: Path, by_version: bool) -> None:
    assert core_findings(tmp_path, RELEASE, api_answer(by_version=by_version)) == []


def test_the_sites_own_wp_content_is_not_compared(tmp_path: Path) -> None:
    files = {**RELEASE, "wp-content/plugins/hello.php": "<?php\n// the site updated its plugin\n"}
    assert core_findings(tmp_path, files, api_answer()) == []


def test_a_modified_a_missing_and_an_extra_core_file_are_found(tmp_path: Path) -> None:
    files = {**RELEASE, "wp-includes/load.php": "<?php\neval($_POST['x']);\n", "wp-admin/shell.php": "<?php\n"}
    del files["wp-login.php"]
    assert sorted(core_findings(tmp_path, files, api_answer())) == [
        ("critical", "WordPress core file modified: wp-includes/load.php"),
        ("high", "file in WordPress core that the release does not have: wp-admin/shell.php"),
        ("medium", "WordPress core file missing: wp-login.php"),
    ]


def test_without_a_checksum_file_the_check_says_it_has_no_reference(tmp_path: Path) -> None:
    [(severity, message)] = core_findings(tmp_path, RELEASE, None)
    assert severity == "info"
    assert message == (
        f"WordPress {VERSION}: no offline core reference (no wordpress package installed, "
        f"no {tmp_path}/checksums/{VERSION}.json); not compared"
    )


def test_a_version_that_cannot_name_a_file_is_never_looked_up(tmp_path: Path) -> None:
    files = {**RELEASE, "wp-includes/version.php": "<?php\n$wp_version = '../../etc/passwd';\n"}
    [(severity, message)] = core_findings(tmp_path, files, api_answer())
    assert severity == "info" and "no offline core reference" in message and "passwd.json" not in message


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"checksums": {}}), 'expected {"checksums": {path: md5}} for WordPress 6.4.3'),
        (json.dumps({"checksums": {"wp-login.php": "abc"}}),
         "checksums['wp-login.php']: expected an md5 sum (32 hex digits), got 'abc'"),
        (json.dumps({"checksums": {"../wp-config.php": "0" * 32}}),
         "'../wp-config.php' is not a path inside the site root"),
    ],
    ids=["not-json", "empty", "bad-sum", "path-outside"],
)  # fmt: skip
def test_an_unusable_checksum_file_is_a_finding_that_names_it(tmp_path: Path, answer: str, reason: str) -> None:
    [(severity, message)] = core_findings(tmp_path, RELEASE, answer)
    assert severity == "medium"
    assert message.startswith(f"WordPress {VERSION}: the core reference is unusable: {tmp_path}/checksums/6.4.3.json: ")
    assert reason in message
