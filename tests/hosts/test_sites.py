"""The site role: every site's own user, files, PHP pool and database, its pages, and isolation from its neighbours."""

from __future__ import annotations

import itertools

import pytest

from infra.plan import SitePlan
from tests.hosts.conftest import Server

BODY_END = "\n--carestack-status:"


def fetch(server: Server, site: SitePlan, path: str) -> tuple[int, str]:
    """GET through nginx on the server itself, with the site's Host header (as the lab and Kuma reach it)."""
    out = server.run_ok(
        "curl -s -H %s -w %s http://127.0.0.1%s", f"Host: {site.domain}", BODY_END + "%{http_code}", path
    )
    body, _, status = out.rpartition(BODY_END)
    return int(status), body


def as_user(server: Server, user: str, command: str, *args: str) -> int:
    return int(server.host.run(f"runuser -u %s -- {command}", user, *args).rc)


def test_every_page_the_plan_checks_answers_with_its_keyword(server: Server) -> None:
    for _, site in server.sites:
        for check in site.checks:
            status, body = fetch(server, site, check.path)
            assert status == check.status, (site.domain, check.path)
            assert check.keyword in body, (site.domain, check.path)


def test_a_wordpress_page_whose_content_is_gone_fails_its_check(server: Server) -> None:
    """The keyword is in the page's own content: with that gone, the page still answers with the site's
    name, title and menu, and its check fails."""
    pages = [
        (plan, site, c) for plan, site in server.sites if site.kind in ("wordpress", "woocommerce") for c in site.checks
    ]
    if not pages:
        pytest.skip(f"{server.name} carries no WordPress site")
    for plan, site, check in pages:
        assert site.database is not None
        holders = wordpress_posts_containing(server, site.database, check.keyword)
        assert holders, (site.domain, check.path, "no post holds the keyword")
        saved = {post: post_content(server, site.database, post) for post in holders}
        try:
            for post in holders:
                set_post_content(server, site.database, post, "")
            status, body = fetch(server, site, check.path)
            assert status == check.status and plan.client.name in body, (site.domain, check.path)
            assert check.keyword not in body, (site.domain, check.path)
        finally:
            for post, content in saved.items():
                set_post_content(server, site.database, post, content)
        status, body = fetch(server, site, check.path)
        assert status == check.status and check.keyword in body, f"{site.domain}{check.path} was not put back"


def wordpress_posts_containing(server: Server, database: str, text: str) -> list[int]:
    found = f"LOCATE(UNHEX('{text.encode().hex()}'), post_content) > 0"
    query = f"SELECT ID FROM wp_posts WHERE post_status = 'publish' AND {found}"
    return [int(line) for line in server.run_ok("mariadb -N %s -e %s", database, query).split()]


def post_content(server: Server, database: str, post: int) -> str:
    # HEX: the content comes back byte for byte, whatever it holds.
    out = server.run_ok("mariadb -N %s -e %s", database, f"SELECT HEX(post_content) FROM wp_posts WHERE ID = {post}")
    return bytes.fromhex(out.strip()).decode()


def set_post_content(server: Server, database: str, post: int, content: str) -> None:
    hexed = content.encode().hex()
    value = f"UNHEX('{hexed}')" if hexed else "''"
    server.run_ok("mariadb %s -e %s", database, f"UPDATE wp_posts SET post_content = {value} WHERE ID = {post}")


def test_each_site_has_its_own_user_home_and_root(server: Server) -> None:
    for _, site in server.sites:
        user = server.host.user(site.linux_user)
        assert user.exists and user.shell == "/usr/sbin/nologin"
        assert user.groups == [site.linux_user]  # in no group that could open another site's files
        home = server.host.file(user.home)
        assert (home.user, home.mode) == (site.linux_user, 0o700)
        root = server.host.file(site.root)
        assert (root.user, root.group, root.mode) == (site.linux_user, "www-data", 0o750)


def test_each_php_site_runs_in_its_own_pool_that_only_nginx_can_reach(server: Server) -> None:
    for _, site in server.sites:
        if site.kind == "static":
            continue
        sock = server.host.file(f"/run/php/{site.id}.sock")
        assert sock.is_socket and (sock.user, sock.group, sock.mode) == ("www-data", "www-data", 0o660)
        fetch(server, site, site.checks[0].path)  # an ondemand pool spawns its worker now
        workers = server.run_ok("ps -o user:32= -o args= -C php-fpm%s", server.php_version).splitlines()
        owners = {line.split()[0] for line in workers if line.rstrip().endswith(f"pool {site.id}")}
        assert owners == {site.linux_user}, workers


def test_each_site_reaches_its_own_database(server: Server) -> None:
    for _, site in server.sites:
        if site.database:
            assert as_user(server, site.linux_user, "mariadb %s -e 'SELECT 1'", site.database) == 0, site.id


def test_wordpress_config_is_readable_by_its_site_only(server: Server) -> None:
    for _, site in server.sites:
        if site.kind in ("wordpress", "woocommerce"):
            config = server.host.file(f"{site.root}/wp-config.php")
            assert (config.user, config.mode) == (site.linux_user, 0o600)
            assert as_user(server, site.linux_user, "cat %s", f"{site.root}/wp-config.php") == 0


def neighbours(server: Server) -> list[tuple[SitePlan, SitePlan]]:
    pairs = list(itertools.permutations([site for _, site in server.sites], 2))
    if not pairs:
        pytest.skip(f"{server.name} carries a single site")
    return pairs


def test_a_site_cannot_read_another_sites_files(server: Server) -> None:
    for mine, theirs in neighbours(server):
        target = f"{theirs.root}/wp-config.php" if theirs.kind in ("wordpress", "woocommerce") else theirs.root
        assert as_user(server, mine.linux_user, "cat %s", target) != 0, (mine.id, theirs.id)
        assert as_user(server, mine.linux_user, "ls %s", theirs.root) != 0, (mine.id, theirs.id)


def test_a_site_cannot_log_into_another_sites_database(server: Server) -> None:
    for mine, theirs in neighbours(server):
        if not theirs.database:
            continue
        # Neither with its own identity nor by claiming the other site's database user.
        user, database = mine.linux_user, theirs.database
        assert as_user(server, user, "mariadb %s -e 'SELECT 1'", database) != 0
        assert as_user(server, user, "mariadb -u %s %s -e 'SELECT 1'", theirs.linux_user, database) != 0


def test_a_site_cannot_talk_to_another_sites_php_pool(server: Server) -> None:
    for mine, theirs in neighbours(server):
        if theirs.kind != "static":
            sock = f"/run/php/{theirs.id}.sock"
            assert as_user(server, mine.linux_user, "python3 -c %s", _connect(sock)) != 0, (mine.id, theirs.id)


def _connect(path: str) -> str:
    return f"import socket; socket.socket(socket.AF_UNIX).connect({path!r})"
