"""The previous version of a Debian package as a .deb file, secured before upgrading it.

A rollback reinstalls the exact versions that ran before, so their .debs must
be at hand before anything changes. Mirrors drop superseded versions (a
security update replaces the previous one), so there are three sources, tried
in order:
1. apt's own cache (/var/cache/apt/archives), where the last install left it;
2. `apt-get download name=version`, while a configured source still has it;
3. rebuilt from the installed package itself, the way dpkg-repack does: its
   files as listed by dpkg, its control fields, conffiles and maintainer
   scripts from dpkg's database (locally changed files are packed as they are).
A copy is checked (`dpkg-deb --field`) before it counts.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..proc import Deadline, run

APT_CACHE = Path("/var/cache/apt/archives")
DPKG_INFO = Path("/var/lib/dpkg/info")
# Files of dpkg's database that belong in the rebuilt package's DEBIAN/ (scripts executable).
CONTROL_FILES = {"preinst": 0o755, "postinst": 0o755, "prerm": 0o755, "postrm": 0o755, "config": 0o755,
                 "templates": 0o644, "triggers": 0o644, "shlibs": 0o644, "symbols": 0o644,
                 "md5sums": 0o644}  # fmt: skip
# Status fields that describe the installation, not the package.
NOT_CONTROL_FIELDS = {"Status", "Conffiles", "Config-Version"}
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def deb_name(package: str, version: str, arch: str) -> str:
    """apt's file name for a package version (an epoch's colon is escaped as %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def fields_of(deb: Path, deadline: Deadline) -> dict[str, str]:
    done = run(["dpkg-deb", "--field", str(deb), "Package", "Version", "Architecture"], env=ENV, deadline=deadline)
    if done.returncode != 0:
        return {}
    return dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)


def _is(deb: Path, package: str, version: str, deadline: Deadline) -> bool:
    found = fields_of(deb, deadline)
    return found.get("Package") == package and found.get("Version") == version


def secure(
    package: str, version: str, arch: str, dest: Path, deadline: Deadline, apt_options: list[str]
) -> tuple[Path, str]:
    """A verified .deb of package=version in `dest`, and where it came from (cache, download, rebuilt)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / deb_name(package, version, arch)
    if target.exists() and _is(target, package, version, deadline):
        return target, "kept"
    cached = APT_CACHE / target.name
    if cached.exists() and _is(cached, package, version, deadline):
        shutil.copy2(cached, target)
        return target, "apt cache"
    download = run(["apt-get", *apt_options, "download", f"{package}={version}"], env=ENV, deadline=deadline, cwd=dest)
    if download.returncode == 0 and target.exists() and _is(target, package, version, deadline):
        return target, "downloaded"
    target.unlink(missing_ok=True)
    rebuilt = rebuild(package, arch, dest, deadline)
    if not _is(rebuilt, package, version, deadline):
        rebuilt.unlink(missing_ok=True)
        raise OSError(f"{package} {version}: the rebuilt package does not carry that version")
    return rebuilt, "rebuilt from the installed package"


def _status(package: str, deadline: Deadline) -> list[tuple[str, str]]:
    """The package's dpkg status stanza as (field, value) pairs, continuation lines kept."""
    done = run(["dpkg-query", "--status", package], env=ENV, deadline=deadline)
    if done.returncode != 0:
        raise OSError(f"{package}: not installed ({done.last_error()})")
    pairs: list[tuple[str, str]] = []
    for line in done.stdout.splitlines():
        if line.startswith((" ", "\t")) and pairs:
            pairs[-1] = (pairs[-1][0], pairs[-1][1] + "\n" + line)
        elif ":" in line:
            name, _, value = line.partition(":")
            pairs.append((name, value.strip()))
    return pairs


def _info_name(package: str, arch: str) -> str:
    """dpkg names a Multi-Arch: same package's database files <package>:<arch>.*."""
    return package if (DPKG_INFO / f"{package}.list").exists() else f"{package}:{arch}"


def _copy_entry(source: Path, tree: Path) -> None:
    target = tree / source.relative_to("/")
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return  # excluded at install (path-exclude) or removed locally: nothing to pack
    if stat.S_ISDIR(st.st_mode):
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, stat.S_IMODE(st.st_mode))
    elif stat.S_ISLNK(st.st_mode):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    else:
        return
    os.lchown(target, st.st_uid, st.st_gid)


def rebuild(package: str, arch: str, dest: Path, deadline: Deadline) -> Path:
    """Build a .deb of the installed package from dpkg's database (what dpkg-repack does)."""
    info = _info_name(package, arch)
    pairs = _status(info, deadline)
    fields = dict(pairs)
    version = fields.get("Version", "")
    with tempfile.TemporaryDirectory(prefix="cs-rebuild-", dir=dest) as tmp:
        tree = Path(tmp) / "tree"
        control = tree / "DEBIAN"
        control.mkdir(parents=True)
        for line in (DPKG_INFO / f"{info}.list").read_text().splitlines():
            if line and line != "/.":
                _copy_entry(Path(line), tree)
        (control / "control").write_text(
            "".join(f"{name}: {value}\n" for name, value in pairs if name not in NOT_CONTROL_FIELDS)
        )
        conffiles = [
            entry.split()[0]
            for entry in fields.get("Conffiles", "").splitlines()
            if entry.strip() and not entry.strip().endswith("obsolete")
        ]
        # A conffile the admin deleted is not packed, and dpkg-deb refuses to list what is missing.
        conffiles = [c for c in conffiles if (tree / c.lstrip("/")).is_file()]
        if conffiles:
            (control / "conffiles").write_text("".join(f"{c}\n" for c in conffiles))
        for name, mode in CONTROL_FILES.items():
            src = DPKG_INFO / f"{info}.{name}"
            if src.exists():
                shutil.copyfile(src, control / name)
                os.chmod(control / name, mode)
        os.chmod(tree, 0o755)
        os.chmod(control, 0o755)
        out = dest / deb_name(package, version, fields.get("Architecture", arch))
        # gzip at level 1: a rollback copy is written often and read rarely; xz would cost seconds.
        built = run(["dpkg-deb", "-Zgzip", "-z1", "--build", str(tree), str(out)], env=ENV, deadline=deadline)
        if built.returncode != 0:
            raise OSError(f"{package}: rebuilding the installed version failed: {built.last_error()}")
    return out
