"""The import's inputs: SQL dumps and site archives checked before anything changes, each refusal named.

Real files throughout: tar archives built with tarfile (as tar and gzip write
them), dumps in mysqldump's own format, PHP unserializing what the dump rewrite
produced, a small tmpfs standing for a volume too small for the site.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import subprocess
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from carestack_agent import config_docs, site_archive, sqldump
from carestack_agent.actions.import_site import ImportOptions, ImportRefused, check_inputs, check_space
from carestack_agent.config import Site, parse
from carestack_agent.serialized import UrlRewrite

OLD, NEW = "http://old.example", "https://www.bakery.example"
WP_CONFIG = b"<?php\ndefine('DB_PASSWORD', 'old-host-secret');\n$table_prefix = 'wp_';\nrequire 'wp-settings.php';\n"

MYSQLDUMP = rb"""-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: oldsite
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
CREATE DATABASE /*!32312 IF NOT EXISTS*/ `oldsite` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;
USE `oldsite`;
DROP TABLE IF EXISTS `wp_options`;
CREATE TABLE `wp_options` (
  `option_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `option_name` varchar(191) NOT NULL DEFAULT '',
  `option_value` longtext NOT NULL,
  PRIMARY KEY (`option_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `wp_options` VALUES (1,'siteurl','http://old.example','yes'),(2,'home','http://old.example','yes')
,(3,'widget_text',
'a:1:{i:2;a:2:{s:5:\"title\";s:8:\"Find us\'\";s:4:\"text\";s:45:\"<a href=\\\"http://old.example/c/\\\">Contact</a>\";}}','yes')
,(4,'blogdescription','It\'s fresh\nevery day','yes');
INSERT INTO `wp_posts` VALUES (1,'<!-- wp:cover {\"url\":\"http:\\/\\/old.example\\/a.jpg\"} -->','a
raw newline http://old.example/raw');
"""


def test_a_mysqldump_is_inspected_for_its_url_prefix_and_size(tmp_path: Path) -> None:
    plain = tmp_path / "site.sql"
    plain.write_bytes(MYSQLDUMP)
    packed = tmp_path / "site.sql.whatever"
    packed.write_bytes(gzip.compress(MYSQLDUMP))
    for path in (plain, packed):
        facts = sqldump.inspect(path, wordpress=True)
        assert facts.home == OLD and facts.prefix == "wp_" and facts.tables == ["wp_options"]
        assert facts.sql_bytes == len(MYSQLDUMP)  # uncompressed, also through gzip


def test_mariadb_dumps_with_one_row_per_line_are_read_too(tmp_path: Path) -> None:
    """mariadb-dump 10.11 writes `INSERT INTO ... VALUES` alone on a line and each row on its own."""
    path = tmp_path / "site.sql"
    path.write_bytes(
        b"-- MariaDB dump 10.19-11.4\nCREATE TABLE `shop_options` (`option_id` int);\n"
        b"INSERT INTO `shop_options` VALUES\n(1,'siteurl','http://old.example/wp','yes'),\n"
        b"(2,'home','http://old.example','yes'),\n(3,'blogname','Shop','yes');\n"
        b"INSERT INTO `shop_posts` VALUES\n(1,'home','http://elsewhere.example');\n"
    )
    facts = sqldump.inspect(path, wordpress=True)
    assert (facts.home, facts.prefix) == (OLD, "shop_")


def test_the_dump_rewrite_keeps_sql_escaping_and_serialized_lengths(tmp_path: Path) -> None:
    out = io.BytesIO()
    figures = sqldump.RewriteFigures()
    sqldump.rewrite(io.BytesIO(MYSQLDUMP), out, UrlRewrite(OLD, NEW), figures)
    sql = out.getvalue()

    assert b"old.example" not in sql
    assert b"USE `oldsite`" not in sql and b"CREATE DATABASE" not in sql  # never another database
    assert len(figures.statements_dropped) == 2
    assert figures.literals_changed == 5
    assert b"(4,'blogdescription','It\\'s fresh\\nevery day','yes')" in sql  # untouched literals byte for byte
    assert b'{\\"url\\":\\"https:\\\\/\\\\/www.bakery.example\\\\/a.jpg\\"}' in sql  # JSON in SQL, still escaped
    widget = sql.split(b"(3,'widget_text',\n'")[1].split(b"','yes')")[0]
    stored = sqldump.unescape(widget)
    assert b's:53:"<a href=\\"https://www.bakery.example/c/\\">Contact</a>"' in stored
    done = subprocess.run(
        ["php", "-r", "exit(unserialize(stream_get_contents(STDIN)) === false ? 1 : 0);"], input=stored, check=False
    )
    assert done.returncode == 0, "PHP cannot unserialize the rewritten widget"
    # a literal over two lines: rewritten, its newline now escaped as mysqldump would
    assert b"'a\\nraw newline https://www.bakery.example/raw'" in sql


def test_a_dump_cut_inside_a_string_is_an_error() -> None:
    cut = MYSQLDUMP[: MYSQLDUMP.index(b"Contact")]
    with pytest.raises(sqldump.DumpError, match="ends inside a string literal"):
        sqldump.rewrite(io.BytesIO(cut), io.BytesIO(), UrlRewrite(OLD, NEW), sqldump.RewriteFigures())


def test_escape_and_unescape_are_inverse_for_every_byte() -> None:
    every = bytes(range(256)) + "Brötchen 🥐".encode()
    assert sqldump.unescape(sqldump.escape(every)) == every
    assert sqldump.unescape(b"a''b\\%\\_\\Z\\0") == b"a'b\\%\\_\x1a\x00"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b"--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n", "PostgreSQL dump \\(pg_dump SQL\\)"),
        (b"PGDMP\x01\x0e\x00\x04\x08\x01\x01\x01", "PostgreSQL dump \\(pg_dump custom format\\)"),
        (b"SQLite format 3\x00\x10\x00\x01\x01\x00@  ", "an SQLite database file"),
        (b"COPY public.wp_options (id, name) FROM stdin;\n1\thome\n", "PostgreSQL dump"),
    ],
    ids=["postgres_sql", "postgres_custom", "sqlite", "postgres_copy"],
)
def test_a_dump_of_another_engine_is_refused_by_name(tmp_path: Path, content: bytes, named: str) -> None:
    for path in (tmp_path / "dump.sql", tmp_path / "dump.sql.gz"):
        path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
        with pytest.raises(sqldump.OtherEngineDump, match=named):
            sqldump.inspect(path, wordpress=True)


def test_something_that_is_no_dump_at_all_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sql"
    path.write_text("just some notes\n")
    with pytest.raises(sqldump.DumpError, match="not a MySQL/MariaDB SQL dump"):
        sqldump.inspect(path, wordpress=True)


def test_a_wordpress_dump_without_options_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sql"
    path.write_bytes(b"-- MySQL dump 10.13\nCREATE TABLE `orders` (id int);\n")
    with pytest.raises(sqldump.DumpError, match="no WordPress options table"):
        sqldump.inspect(path, wordpress=True)
    assert sqldump.inspect(path, wordpress=False).tables == ["orders"]  # a plain PHP site's dump is fine


# -- archives ------------------------------------------------------------------------------------------


def add(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o4777 if kind == tarfile.REGTYPE else 0o777  # set-id and world-writable: never kept
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def archive(path: Path, members: list[tuple[str, bytes, bytes, str]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        for name, data, kind, link in members:
            add(tar, name, data, kind, link)
    return path


def wp_site(top: str = "") -> list[tuple[str, bytes, bytes, str]]:
    return [
        (f"{top}wp-config.php", WP_CONFIG, tarfile.REGTYPE, ""),
        (f"{top}index.php", b"<?php require 'wp-blog-header.php';", tarfile.REGTYPE, ""),
        (f"{top}wp-content", b"", tarfile.DIRTYPE, ""),
        (f"{top}wp-content/uploads", b"", tarfile.DIRTYPE, ""),
        (f"{top}wp-content/uploads/a.jpg", b"\xff\xd8jpeg", tarfile.REGTYPE, ""),
        (f"{top}wp-content/latest", b"", tarfile.SYMTYPE, "uploads/a.jpg"),
        (f"{top}wp-content/same.jpg", b"", tarfile.LNKTYPE, f"{top}wp-content/uploads/a.jpg"),
    ]


@pytest.mark.parametrize("top", ["", "public_html/", "./"])
def test_a_wordpress_archive_is_read_with_or_without_its_top_directory(tmp_path: Path, top: str) -> None:
    path = archive(tmp_path / "site.tar.gz", wp_site(top))
    facts = site_archive.inspect(path, wordpress=True)
    assert facts.top == top.strip("./").rstrip("/") and facts.table_prefix == "wp_"
    assert facts.file_bytes == sum(len(data) for _, data, kind, _ in wp_site() if kind == tarfile.REGTYPE)

    dest = tmp_path / "staged"
    dest.mkdir()
    assert site_archive.extract(facts, dest) == 7
    assert (dest / "wp-config.php").read_bytes() == WP_CONFIG
    assert os.readlink(dest / "wp-content/latest") == "uploads/a.jpg"
    assert (dest / "wp-content/same.jpg").stat().st_ino == (dest / "wp-content/uploads/a.jpg").stat().st_ino
    site_archive.hand_to(dest, 65534, 65534)
    st = (dest / "index.php").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (65534, 65534, 0o644)
    assert (dest / "wp-content").stat().st_mode & 0o7777 == 0o755


def test_a_wordpress_archive_without_wp_config_is_refused(tmp_path: Path) -> None:
    path = archive(tmp_path / "site.tar", [m for m in wp_site("www/") if not m[0].endswith("wp-config.php")], "w")
    with pytest.raises(site_archive.MissingWpConfig, match=r"no wp-config\.php"):
        site_archive.inspect(path, wordpress=True)
    assert site_archive.inspect(path, wordpress=False).members == 6  # a PHP site needs none


@pytest.mark.parametrize(
    ("member", "named"),
    [
        (("../escape.php", b"x", tarfile.REGTYPE, ""), "contains '..'"),
        (("wp-content/../../escape.php", b"x", tarfile.REGTYPE, ""), "contains '..'"),
        (("/etc/cron.d/evil", b"x", tarfile.REGTYPE, ""), "an absolute path"),
        (("wp-content/etc", b"", tarfile.SYMTYPE, "/etc"), "a symlink to '/etc', outside the site root"),
        (("wp-content/up", b"", tarfile.SYMTYPE, "../../secrets"), "a symlink to '../../secrets', outside"),
        (("passwd", b"", tarfile.LNKTYPE, "/etc/passwd"), "a hard link to '/etc/passwd', outside"),
        (("wp-content/tty", b"", tarfile.CHRTYPE, ""), "a device file or FIFO"),
        (("wp-content/pipe", b"", tarfile.FIFOTYPE, ""), "a device file or FIFO"),
    ],
    ids=["dotdot", "dotdot_inside", "absolute", "symlink_absolute", "symlink_up", "hardlink_out", "device", "fifo"],
)
def test_an_archive_member_outside_the_root_is_refused(
    tmp_path: Path, member: tuple[str, bytes, bytes, str], named: str
) -> None:
    path = archive(tmp_path / "site.tar.gz", [*wp_site(), member])
    with pytest.raises(site_archive.UnsafeMember, match=named):
        site_archive.inspect(path, wordpress=True)


def test_a_link_that_leaves_the_top_directory_is_outside_the_root(tmp_path: Path) -> None:
    """Inside the archive, but `public_html/x -> ../y` points beside the root the import builds."""
    escaping = ("public_html/x", b"", tarfile.SYMTYPE, "../y")
    path = archive(tmp_path / "site.tar.gz", [*wp_site("public_html/"), escaping])
    with pytest.raises(site_archive.UnsafeMember, match=r"a symlink to '\.\./y', outside the site root"):
        site_archive.inspect(path, wordpress=True)


def test_something_that_is_no_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.tar.gz"
    path.write_bytes(MYSQLDUMP)
    with pytest.raises(site_archive.ArchiveError, match="not a readable tar archive"):
        site_archive.inspect(path, wordpress=True)


# -- free space ------------------------------------------------------------------------------------------


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A real 32 MiB file system (tmpfs), as a server's too-small volume."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (the agent's tests run as root)")
    mount = tmp_path / "volume"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.agent  # mounts a real file system: root, like the other tests of the agent's real parts
def test_a_site_larger_than_its_volume_is_refused_by_name(small_volume: Path, tmp_path: Path) -> None:
    root = small_volume / "srv/www/bakery-www"
    big = tmp_path / "site.tar"
    with tarfile.open(big, "w") as tar:
        add(tar, "wp-config.php", WP_CONFIG)
        add(tar, "wp-content/uploads/video.mp4", os.urandom(40 * 1024 * 1024))
    facts = site_archive.inspect(big, wordpress=True)

    with pytest.raises(ImportRefused, match=r"needs .* \(files 40.0 MiB, plus 10% .*the volume has .* free") as e:
        check_space([(root, facts.file_bytes, "files")])
    assert e.value.name == "NotEnoughSpace"
    assert check_space([(tmp_path, facts.file_bytes, "files")])  # the machine's own disk holds it


# -- the agent's checks of one site's inputs ------------------------------------------------------------

ROLE_CONFIG = b"<?php\ndefine('DB_USER', 'bakery-www');\n$table_prefix = 'wp_';\ndefine('WP_HOME', '%s');\n"


@pytest.fixture
def live_site(tmp_path: Path) -> Site:
    """The sample config's WordPress site, its root a real directory holding what the role writes."""
    site = parse(tomllib.loads(config_docs.sample())).sites["bakery-www"]
    root = tmp_path / "srv/www/bakery-www"
    root.mkdir(parents=True)
    (root / "wp-config.php").write_bytes(ROLE_CONFIG % NEW.encode())
    (root / "wp-salts.php").write_bytes(b"<?php\n")
    return dataclasses.replace(site, root=root, paths=(root,))


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    dump = tmp_path / "site.sql"
    dump.write_bytes(MYSQLDUMP)
    return archive(tmp_path / "site.tar.gz", wp_site()), dump


def test_good_inputs_pass_with_the_old_url_from_the_dump_and_the_new_from_the_role(
    live_site: Site, inputs: tuple[Path, Path]
) -> None:
    checked = check_inputs(live_site, ImportOptions(*inputs))
    assert checked.rewrite is not None and (checked.rewrite.old, checked.rewrite.new) == (OLD, NEW)
    assert checked.dump is not None and checked.dump.prefix == "wp_"


def refused(site: Site, opts: ImportOptions) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        check_inputs(site, opts)
    return caught.value


def test_each_bad_input_is_refused_by_name(live_site: Site, inputs: tuple[Path, Path], tmp_path: Path) -> None:
    archive_path, dump = inputs
    other_prefix = tmp_path / "other.sql"
    other_prefix.write_bytes(MYSQLDUMP.replace(b"`wp_", b"`shop_"))
    assert refused(live_site, ImportOptions(archive_path)).name == "MissingInput"  # a database and no dump
    assert refused(live_site, ImportOptions(tmp_path / "none.tar", dump)).name == "MissingInput"
    bad = refused(live_site, ImportOptions(archive_path, other_prefix))
    assert bad.name == "TablePrefixMismatch" and "'shop_'" in bad.message and "uses 'wp_'" in bad.message
    bad = refused(live_site, ImportOptions(archive_path, dump, old_url="old.example"))
    assert bad.name == "BadUrl"
    (live_site.root / "wp-salts.php").unlink()
    bad = refused(live_site, ImportOptions(archive_path, dump))
    assert bad.name == "SiteNotConfigured" and "wp-salts.php missing" in bad.message
    static = dataclasses.replace(live_site, kind="static", database=None)
    assert refused(static, ImportOptions(archive_path, dump)).name == "UnexpectedDump"
