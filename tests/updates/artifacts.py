"""Real update artifacts for the update tests and the bench, built on this machine.

- Debian packages (dpkg-deb) in flat apt repositories with a Release file
  each: `security` (suite lab-security, which the apt provider's `security`
  policy takes) and `updates` (suite lab-updates, which it leaves).
- Release tarballs of the PHP site (`<name>-<version>.tar.gz`).
- WordPress plugin zips laid out like WordPress.org's (one top directory).

The broken versions break the site the way real updates do: an nginx server
block that shadows the site (a package), a release and a plugin whose code
first writes to the site's database and then dies with a fatal error.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

SECURITY_SUITE = "lab-security"
UPDATES_SUITE = "lab-updates"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    files: dict[str, str]  # absolute path -> content
    scripts: dict[str, str]  # preinst/postinst/... -> shell script body
    description: str


def build_deb(pkg: Package, out_dir: Path) -> Path:
    root = out_dir / f"build-{pkg.name}-{pkg.version}"
    control = root / "DEBIAN"
    control.mkdir(parents=True)
    for path, content in pkg.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (control / "control").write_text(
        f"Package: {pkg.name}\nVersion: {pkg.version}\nArchitecture: all\n"
        f"Maintainer: carestack tests <tests@carestack.invalid>\nSection: misc\nPriority: optional\n"
        f"Description: {pkg.description}\n"
    )
    for name, body in pkg.scripts.items():
        script = control / name
        script.write_text("#!/bin/sh\nset -e\n" + body + "\n")
        script.chmod(0o755)
    deb = out_dir / f"{pkg.name}_{pkg.version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["rm", "-rf", str(root)], check=True)
    return deb


def write_flat_repo(directory: Path, suite: str, debs: list[Path]) -> None:
    """A flat repository (`deb [trusted=yes] file:DIR ./`): Packages(.gz) and a Release naming the suite."""
    directory.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for deb in debs:
        target = directory / deb.name
        target.write_bytes(deb.read_bytes())
        fields = subprocess.run(["dpkg-deb", "--field", str(target)], check=True, capture_output=True, text=True)
        data = target.read_bytes()
        stanzas.append(
            fields.stdout.rstrip("\n")
            + f"\nFilename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    packages = "\n".join(stanzas).encode()
    (directory / "Packages").write_bytes(packages)
    (directory / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    hashes = "".join(
        f" {hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_size} {p.name}\n"
        for p in (directory / "Packages", directory / "Packages.gz")
    )
    (directory / "Release").write_text(
        f"Origin: carestack-lab\nLabel: carestack-lab\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: {formatdate(usegmt=True)}\nArchitectures: all amd64\nSHA256:\n{hashes}"
    )


# -- the packages ---------------------------------------------------------------------

TOOLS = "carestack-lab-tools"  # security suite, good 1.0 -> 1.1
EXTRAS = "carestack-lab-extras"  # updates suite: policy security leaves it at 1.0
HELD = "carestack-lab-held"  # security suite, but held at 1.0
NGINX = "carestack-lab-nginx"  # security suite: 1.0 harmless, 2.0 shadows the PHP site


def _plain(name: str, version: str) -> Package:
    return Package(
        name, version, {f"/usr/share/{name}/VERSION": f"{version}\n"}, {}, f"carestack test package {version}"
    )


def nginx_package(version: str, domain: str | None, slow_seconds: int = 0) -> Package:
    """1.x: a harmless snippet; with `domain`: a server block that answers 503 for that site (listed
    before the sites, so nginx picks it). postinst reloads nginx like a real package would."""
    snippet = f"# {NGINX} {version}\n"
    if domain:
        snippet += f"server {{\n    listen 80;\n    server_name {domain};\n    return 503;\n}}\n"
    reload = "if nginx -t 2>/dev/null; then systemctl reload nginx; fi"
    scripts = {"postinst": reload, "postrm": reload}
    if slow_seconds:
        scripts["preinst"] = f"sleep {slow_seconds}"  # a slow maintainer script: dpkg is mid-way for a while
    return Package(NGINX, version, {"/etc/nginx/conf.d/carestack-lab.conf": snippet}, scripts,
                   f"carestack test package {version}")  # fmt: skip


def build_apt_repos(out: Path, broken_domain: str) -> dict[str, Path]:
    """Both repositories under `out` (security/, updates/): every package's 1.0 and its newer versions."""
    work = out / "debs"
    work.mkdir(parents=True, exist_ok=True)
    security = [build_deb(_plain(n, v), work) for n in (TOOLS, HELD) for v in ("1.0", "1.1")]
    security += [build_deb(nginx_package("1.0", None), work),
                 build_deb(nginx_package("2.0", broken_domain, slow_seconds=4), work)]  # fmt: skip
    updates = [build_deb(_plain(EXTRAS, v), work) for v in ("1.0", "1.1")]
    write_flat_repo(out / "security", SECURITY_SUITE, security)
    write_flat_repo(out / "updates", UPDATES_SUITE, updates)
    return {"security": out / "security", "updates": out / "updates"}


def sources_list(repo_root: str) -> str:
    return "".join(f"deb [trusted=yes] file:{repo_root}/{name} ./\n" for name in ("security", "updates"))


# -- release tarballs ---------------------------------------------------------------------


def _tar(name: str, files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        top = tarfile.TarInfo(name)
        top.type, top.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(top)
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def release_tarball(out: Path, name: str, version: str, *, keyword: str, user: str, database: str,
                    broken: bool) -> Path:  # fmt: skip
    """A release of the PHP site: its pages with the plan's keywords; a broken one first migrates the
    database (a table and a row), then dies with a fatal error on every page, and ships another file
    set (a rollback must leave exactly the previous tree: nothing added, nothing missing)."""
    connect = f"$db = new mysqli('localhost', '{user}', '', '{database}', 0, '/run/mysqld/mysqld.sock');\n"
    if broken:
        migrate = (
            "$db->query('CREATE TABLE IF NOT EXISTS release_migrations (version VARCHAR(32) PRIMARY KEY)');\n"
            f"$db->query(\"INSERT IGNORE INTO release_migrations VALUES ('{version}')\");\n"
            f"release_{version.replace('.', '_')}_is_broken();\n"
        )
        index = "<?php\n" + connect + migrate
    else:
        index = (
            "<?php\n" + connect + "$db->query('SELECT 1');\n?>\n"
            f"<!doctype html><html><head><title>{keyword}</title></head>"
            f"<body><h1>{keyword}</h1><p>release {version}</p></body></html>\n"
        )
    files = {"index.php": index, "health.php": '<?php echo "OK\\n";\n'}
    if broken:  # another file set: health.php gone, a file and a subdirectory only the broken version ships
        files = {"index.php": index, "broken-extra.php": index, "lib/broken/readme.txt": f"release {version}\n"}
    path = out / f"{name}-{version}.tar.gz"
    path.write_bytes(_tar(f"{name}-{version}", files))
    return path


# -- WordPress plugin zips ---------------------------------------------------------------

PLUGIN = "lab-notes"
PLUGIN_FILE = f"{PLUGIN}/{PLUGIN}.php"


def plugin_zip(out: Path, version: str, *, broken: bool) -> Path:
    """lab-notes: prints a marker in the footer; a broken version's upgrade routine writes an option and a
    table, then calls a function that does not exist (a fatal error on every page)."""
    header = (
        f"<?php\n/*\n * Plugin Name: Lab Notes\n * Version: {version}\n * Description: carestack test plugin\n */\n"
    )
    if broken:
        body = (
            "add_action('init', function () {\n    global $wpdb;\n"
            f"    update_option('lab_notes_schema', '{version}');\n"
            '    $wpdb->query("CREATE TABLE IF NOT EXISTS {$wpdb->prefix}lab_notes (id INT PRIMARY KEY)");\n'
            "    lab_notes_upgrade_routine_that_does_not_exist();\n});\n"
        )
    else:
        body = f"add_action('wp_footer', function () {{ echo '<!-- {PLUGIN} {version} -->'; }});\n"
    path = out / f"{PLUGIN}.{version}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{PLUGIN}/", "")
        archive.writestr(PLUGIN_FILE, header + body)
    return path


def feed_index(versions: dict[str, str]) -> str:
    """index.json of a directory feed offering lab-notes in these versions (version -> zip file name)."""
    return json.dumps({"plugins": {PLUGIN: versions}}, indent=1)
