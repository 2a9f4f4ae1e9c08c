"""`carestack import` on the lab: a real WordPress site from "another host" brought onto a lab site.

The old site is made from a lab WordPress site, as an agency receives one: its
files copied, its database copied, and through WordPress's own functions (so
the serialized values are WordPress's) given the old host's domain on plain
http, a text widget, theme mods with an object inside, and a post with a block
whose JSON holds escaped URLs. Its wp-config.php is the old host's (its own
database user and a secret). Then it is archived and dumped, and imported into
the lab site under the plan's https URL.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import cli
from infra.agent_config import credentials_file, password_file
from infra.plan import SitePlan
from lab.state import LabState

pytestmark = pytest.mark.lab

CLIENT = "bakery"
OLD_URL = "http://old-bakery.test"
MARKER = "Frische Brötchen seit 1921, imported from the old host"
OLD_SECRET = "old-host-secret-never-kept"
WORK = "/root/import-test"

OLD_WP_CONFIG = """<?php
// the old host's configuration: its own database user, its own secrets
define('DB_NAME', 'oldsite');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', 'localhost:/run/mysqld/mysqld.sock');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
define('OLD_HOST_API_KEY', '{secret}');
$table_prefix = 'wp_';
require __DIR__ . '/wp-salts.php';
if (!defined('ABSPATH')) {{ define('ABSPATH', __DIR__ . '/'); }}
require_once ABSPATH . 'wp-settings.php';
"""

# Run with the old copy's wp-load.php: everything stored through WordPress, so serialized as WordPress does.
MAKE_OLD_SITE = r"""<?php
$_SERVER['HTTP_HOST'] = 'old-bakery.test';
$_SERVER['REQUEST_URI'] = '/';
define('DISABLE_WP_CRON', true);
require $argv[1] . '/wp-load.php';
$old = $argv[2];
update_option('siteurl', $old);
update_option('home', $old);
update_option('widget_text', [2 => ['title' => 'Besuchen Sie uns',
    'text' => "<a href=\"$old/kontakt/\">Kontakt \u{2013} Bäckerei</a>", 'filter' => true, 'visual' => true],
    '_multiwidget' => 1]);
set_theme_mod('header_image', "$old/wp-content/uploads/header.jpg");
set_theme_mod('header_image_data', (object) ['url' => "$old/wp-content/uploads/header.jpg", 'width' => 1200]);
$id = wp_insert_post(['post_type' => 'post', 'post_status' => 'publish', 'post_name' => 'old-host',
    'post_title' => 'Unsere Backstube', 'post_content' => "<!-- wp:paragraph -->\n"
    . "<p>__MARKER__ <a href=\"$old/brot/\">Brot</a></p>\n<!-- /wp:paragraph -->"], true);
is_wp_error($id) && exit(1);
// JSON as page builders keep it in post meta: json_encode escapes every slash (http:\/\/...)
$json = json_encode(['image' => "$old/wp-content/uploads/brot.jpg"]);
update_post_meta($id, '_carestack_builder_data', wp_slash($json));
stick_post($id);
echo json_encode(['post' => $id]);
"""

CHECK_OPTION = r"""
$v = unserialize(stream_get_contents(STDIN));
if ($v === false) { fwrite(STDERR, "unserialize failed\n"); exit(1); }
echo json_encode($v);
"""


@dataclass(frozen=True)
class OldSite:
    archive: Path
    dump: Path
    server_archive: str
    server_dump: str


def sh(lab: LabState, host: str, command: str, *, ok: bool = True) -> str:
    done = lab.ssh(host, command, timeout=600)
    if ok:
        assert done.returncode == 0, f"{host}: {command}: {done.stdout}{done.stderr}"
    return done.stdout


def put(lab: LabState, host: str, path: str, text: str) -> None:
    sh(lab, host, f"cat > {path} <<'CARESTACK_EOF'\n{text}\nCARESTACK_EOF")


def fetch(lab: LabState, host: str, path: str, to: Path) -> Path:
    with open(to, "wb") as out:
        subprocess.run(["ssh", "-F", str(lab.ssh_config), host, f"cat {path}"], stdout=out, check=True, timeout=300)
    return to


def page(lab: LabState, host: str, site: SitePlan, path: str = "/") -> str:
    resolve = f"{site.domain}:443:127.0.0.1"
    return sh(lab, host, f"curl -sk --max-time 20 --resolve {resolve} https://{site.domain}{path}")


@pytest.fixture(scope="module")
def site(lab: LabState) -> SitePlan:
    return next(s for s in lab.plan(CLIENT).sites if s.kind == "wordpress")


@pytest.fixture(scope="module")
def server(lab: LabState) -> str:
    return lab.plan(CLIENT).hosting.server


@pytest.fixture(scope="module")
def old_site(lab: LabState, site: SitePlan, server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OldSite]:
    """The old host's site: a copy of the lab site under another domain, archived and dumped."""
    sh(lab, server, f"rm -rf {WORK}; mkdir -p {WORK}; cp -a {site.root} {WORK}/www")
    put(lab, server, f"{WORK}/www/wp-config.php", OLD_WP_CONFIG.format(secret=OLD_SECRET))
    put(lab, server, f"{WORK}/make.php", MAKE_OLD_SITE.replace("__MARKER__", MARKER))
    sh(lab, server, f"mariadb -e 'DROP DATABASE IF EXISTS oldsite; CREATE DATABASE oldsite'; "
                    f"mariadb-dump {site.database} | mariadb oldsite")  # fmt: skip
    sh(lab, server, f"php {WORK}/make.php {WORK}/www {OLD_URL}")
    sh(lab, server, f"mariadb-dump --single-transaction oldsite | gzip > {WORK}/site.sql.gz && "
                    f"tar -C {WORK}/www -czf {WORK}/site.tar.gz .")  # fmt: skip
    base = tmp_path_factory.mktemp("old-site")
    yield OldSite(
        fetch(lab, server, f"{WORK}/site.tar.gz", base / "site.tar.gz"),
        fetch(lab, server, f"{WORK}/site.sql.gz", base / "site.sql.gz"),
        f"{WORK}/site.tar.gz",
        f"{WORK}/site.sql.gz",
    )
    sh(lab, server, f"rm -rf {WORK}; mariadb -e 'DROP DATABASE IF EXISTS oldsite'", ok=False)


def carestack_import(lab: LabState, server: str, *args: str) -> int:
    hosts = json.dumps({server: {"address": lab.host(server).address}})
    stack = str(lab.client(CLIENT).stack)
    return cli.main(["import", stack, "--hosts", hosts, "--ssh-config", str(lab.ssh_config), *args])


def complete_snapshots(lab: LabState, server: str, site: SitePlan) -> list[dict[str, object]]:
    repo = sh(lab, server, f"python3 -c \"import tomllib; print(tomllib.load(open('/etc/carestack/agent.toml', 'rb'))"
                           f"['sites']['{site.id}']['repository'])\"").strip()  # fmt: skip
    listing = sh(lab, server, f"set -a; . {credentials_file(CLIENT)}; set +a; restic -r {repo} "
                              f"--password-file {password_file(CLIENT)} snapshots --json --tag complete")  # fmt: skip
    return list(json.loads(listing))


def stored_option(lab: LabState, server: str, site: SitePlan, name: str) -> object:
    query = f"SELECT option_value FROM wp_options WHERE option_name = '{name}'"
    raw = f'mariadb -N --raw --default-character-set=utf8mb4 {site.database} -e "{query}"'
    return json.loads(sh(lab, server, f"{raw} | php -r {shlex.quote(CHECK_OPTION)}"))


def test_an_existing_site_is_imported_with_its_url_rewritten_and_backed_up(
    lab: LabState, site: SitePlan, server: str, old_site: OldSite
) -> None:
    new_url = site.url.rstrip("/")
    snapshots_before = {s["id"] for s in complete_snapshots(lab, server, site)}

    assert carestack_import(lab, server, "--site", site.id, "--archive", str(old_site.archive),
                            "--dump", str(old_site.dump)) == 0  # fmt: skip

    front = page(lab, server, site)
    assert MARKER in front and site.checks[0].keyword in front  # the old site's content, the plan's keyword
    assert "old-bakery.test" not in front
    dumped = sh(lab, server, f"mariadb-dump --skip-extended-insert {site.database}")
    assert "old-bakery.test" not in dumped
    assert f"https:\\\\/\\\\/{site.domain}\\\\/wp-content\\\\/uploads\\\\/brot.jpg" in dumped  # JSON in post meta
    widget = stored_option(lab, server, site, "widget_text")  # PHP unserializes it on the server
    assert isinstance(widget, dict) and f'href="{new_url}/kontakt/"' in widget["2"]["text"]
    mods = stored_option(lab, server, site, "theme_mods_twentytwentythree")
    assert isinstance(mods, dict) and mods["header_image_data"]["url"] == f"{new_url}/wp-content/uploads/header.jpg"
    config = sh(lab, server, f"stat -c '%U %a' {site.root}/wp-config.php; cat {site.root}/wp-config.php")
    assert config.startswith(f"{site.linux_user} 600\n") and f"'DB_USER', '{site.linux_user}'" in config
    assert OLD_SECRET not in config and "'DB_USER', 'root'" not in config
    assert sh(lab, server, f"find {site.root} ! -user {site.linux_user} | head -3") == ""
    assert sh(lab, server, f"stat -c '%U:%G %a' {site.root}").strip() == f"{site.linux_user}:www-data 750"
    assert sh(lab, server, f"ls -a {site.root}/.. | grep -c '^.cs-import-' || true").strip() == "0"
    new = [s for s in complete_snapshots(lab, server, site) if s["id"] not in snapshots_before]
    assert len(new) == 1, "the import's first backup is one complete snapshot"
    assert sh(lab, server, "ls /var/lib/carestack/incoming").strip() == ""  # the uploads are gone


def test_bad_input_is_refused_by_name_before_anything_changes(
    lab: LabState, site: SitePlan, server: str, old_site: OldSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = page(lab, server, site)
    pg_dump = tmp_path / "pg.sql"
    pg_dump.write_text("--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n")
    no_config = tmp_path / "no-config.tar.gz"
    subprocess.run(["tar", "-czf", str(no_config), "-C", str(tmp_path), "pg.sql"], check=True)
    cases = {
        "OtherEngineDump": ["--archive", str(old_site.archive), "--dump", str(pg_dump)],
        "MissingWpConfig": ["--archive", str(no_config), "--dump", str(old_site.dump)],
    }
    for name, args in cases.items():
        capsys.readouterr()
        assert carestack_import(lab, server, "--site", site.id, *args) == 2, name
        assert f"refused, nothing was changed: {name}:" in capsys.readouterr().err
    assert carestack_import(lab, server, "--site", "bakery-nope", "--archive", str(old_site.archive)) == 2
    assert "UnknownSite: --site 'bakery-nope' is not a site of client bakery" in capsys.readouterr().err
    after = page(lab, server, site)
    assert site.checks[0].keyword in after and (MARKER in before) == (MARKER in after)
    assert sh(lab, server, "ls /var/lib/carestack/incoming").strip() == ""


def agent_import(
    lab: LabState, server: str, site: SitePlan, old_site: OldSite, kill_when: str, signal: str = "KILL"
) -> None:
    """Start the agent's import on the server and send it `signal` once `kill_when` (a shell test) holds."""
    run = (f"carestack-agent import {site.id} --archive {old_site.server_archive} --dump {old_site.server_dump} "
           f"--new-url {site.url} > {WORK}/run.log 2>&1 & pid=$!; "
           f"for i in $(seq 1 600); do if {kill_when}; then kill -{signal} $pid; wait $pid; echo killed; exit 0; fi; "
           "sleep 0.05; done; "
           "wait $pid; echo finished $?")  # fmt: skip
    assert sh(lab, server, run).strip() == "killed"


def test_a_killed_import_leaves_the_old_site(lab: LabState, site: SitePlan, server: str, old_site: OldSite) -> None:
    """Killed while staging: the old site serves on; killed after its swap: the next job puts the old site back."""
    sh(lab, server, f"runuser -u {site.linux_user} -- sh -c 'echo before-import > {site.root}/killed-marker.txt'")
    marker_row = "SELECT option_value FROM wp_options WHERE option_name = 'cs_kill_marker'"
    sh(lab, server, f"mariadb {site.database} -e \"INSERT INTO wp_options (option_name, option_value, autoload) "
                    "VALUES ('cs_kill_marker', 'before-import', 'no')\"")  # fmt: skip
    try:
        agent_import(lab, server, site, old_site, f"ls -d {site.root.rsplit('/', 1)[0]}/.cs-import-* >/dev/null 2>&1")
        assert "before-import" in sh(lab, server, f"cat {site.root}/killed-marker.txt")
        intent = f"/var/lib/carestack/import/{site.id}.json"
        agent_import(lab, server, site, old_site, f"test -e {intent} && sleep 0.5")
        assert sh(lab, server, f"test -e {intent} && echo intent").strip() == "intent"

        sh(lab, server, f"carestack-agent backup {site.id} --wait")  # the next job, as a timer would run it

        assert sh(lab, server, f"cat {site.root}/killed-marker.txt").strip() == "before-import"
        assert sh(lab, server, f'mariadb -N {site.database} -e "{marker_row}"').strip() == "before-import"
        assert sh(lab, server, f"test -e {intent} || echo gone").strip() == "gone"
        assert sh(lab, server, f"ls -a {site.root}/.. | grep -c '^.cs-import-' || true").strip() == "0"
        assert site.checks[0].keyword in page(lab, server, site)

        # SIGTERM (systemd stopping it, an operator's kill) after the swap: the import undoes itself at once
        agent_import(lab, server, site, old_site, f"test -e {intent} && sleep 0.5", signal="TERM")
        assert sh(lab, server, f"cat {site.root}/killed-marker.txt").strip() == "before-import"
        assert sh(lab, server, f'mariadb -N {site.database} -e "{marker_row}"').strip() == "before-import"
        assert sh(lab, server, f"test -e {intent} || echo gone").strip() == "gone"
        assert "stopped by SIGTERM" in sh(lab, server, f"cat {WORK}/run.log")
    finally:
        sh(lab, server, f"rm -f {site.root}/killed-marker.txt", ok=False)
        sh(lab, server, f"mariadb {site.database} -e \"DELETE FROM wp_options WHERE option_name = 'cs_kill_marker'\"",
           ok=False)  # fmt: skip


def test_an_import_whose_pages_fail_is_undone(lab: LabState, site: SitePlan, server: str, old_site: OldSite) -> None:
    """The client's files answer without the plan's keyword: both swaps are undone, the site is as it was."""
    before = page(lab, server, site)
    sh(lab, server, f"rm -rf {WORK}/broken; cp -a {WORK}/www {WORK}/broken; "
                    f"echo \"<?php echo 'Under construction';\" > {WORK}/broken/index.php; "
                    f"tar -C {WORK}/broken -czf {WORK}/broken.tar.gz .")  # fmt: skip
    done = lab.ssh(server, f"carestack-agent import {site.id} --archive {WORK}/broken.tar.gz "
                           f"--dump {old_site.server_dump} --new-url {site.url}", timeout=600)  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    assert "fails the plan's pages" in done.stderr and "the previous site is back" in done.stderr
    assert f"files back at {site.root}" in done.stderr and f"database {site.database} back" in done.stderr
    time.sleep(3)  # PHP's opcache revalidates a changed file every 2 s: until then it may run the failed import's
    after = page(lab, server, site)
    assert site.checks[0].keyword in after and (MARKER in before) == (MARKER in after)
    assert "backup" not in done.stdout  # no first backup of an import that did not stand
    assert sh(lab, server, f"ls -a {site.root}/.. | grep -c '^.cs-import-' || true").strip() == "0"


def test_a_site_is_fetched_from_the_old_host_over_ssh(
    lab: LabState, site: SitePlan, server: str, old_site: OldSite
) -> None:
    """The old host here is a lab server holding the old site's files and database (`oldsite`, root's socket login)."""
    snapshots_before = {s["id"] for s in complete_snapshots(lab, server, site)}
    source = f"root@{lab.host(server).address}:{WORK}/www"

    assert carestack_import(lab, server, "--site", site.id, "--from-ssh", source) == 0

    front = page(lab, server, site)
    assert MARKER in front and "old-bakery.test" not in front
    assert OLD_SECRET not in sh(lab, server, f"cat {site.root}/wp-config.php")
    assert len([s for s in complete_snapshots(lab, server, site) if s["id"] not in snapshots_before]) == 1
