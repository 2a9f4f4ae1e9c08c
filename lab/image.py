"""The base image every lab server overlays: a minimal Debian, built once and cached.

Built with debootstrap from this machine's mirror into a temporary directory
and renamed into place only when complete, so an interrupted build is never
mistaken for an image. Labs that share one image directory (the tests' second lab, parallel
labs on one machine) build it one at a time: the first builds, the others wait and use it.
Per-host identity (machine-id, ssh host keys, hostname)
is removed here and created per host (`hosts.py`); so is the apt proxy
setting, which depends on the lab's subnet.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.config import LabConfig
from lab.errors import LabError
from lab.mirror import DebianMirror

BUILD_LOCK = ".build.lock"
PACKAGES = (
    "systemd-sysv",
    "openssh-server",
    "python3",
    "python3-apt",
    "sudo",
    "dbus",
    "libpam-systemd",
    "iproute2",
    "ca-certificates",
    "curl",
)
# Units that would only cost memory or start work nobody asked for in a lab server.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
    "console-getty.service",
)
JOURNALD_CONF = "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n"
MANIFEST = "image.json"
# apt lists are emptied; their date is set to the past so `cache_valid_time` still refreshes them.
LONG_AGO = 0


@dataclass(frozen=True)
class Image:
    root: Path
    manifest: dict[str, object]


def rootfs(config: LabConfig) -> Path:
    return config.image_dir / "rootfs"


def cached(config: LabConfig) -> Image | None:
    try:
        manifest = json.loads((config.image_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    root = rootfs(config)
    return Image(root, manifest) if (root / "usr/sbin/sshd").exists() else None


def _debootstrap(target: Path, mirror: DebianMirror, log: Path) -> None:
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        mirror.codename,
        str(target),
        mirror.url,
    ]
    with open(log, "wb") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        inner = target / "debootstrap" / "debootstrap.log"
        tail = (inner if inner.exists() else log).read_text(errors="replace").strip().splitlines()[-8:]
        raise LabError(
            f"building the base image: debootstrap from {mirror.url} failed ({done.returncode}); "
            f"log: {log}\n  " + "\n  ".join(tail)
        )


def _customize(root: Path, mirror: DebianMirror) -> None:
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(mirror.sources_text())
    journald = root / "etc/systemd/journald.conf.d"
    journald.mkdir(parents=True, exist_ok=True)
    (journald / "carestack-lab.conf").write_text(JOURNALD_CONF)
    lists = root / "var/lib/apt/lists"
    for entry in lists.iterdir():
        if entry.is_file():
            entry.unlink()
    os.utime(lists, (LONG_AGO, LONG_AGO))
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)


def build(config: LabConfig, mirror: DebianMirror) -> Image:
    """The cached image, or a fresh one from debootstrap (about a minute)."""
    image = cached(config)
    if image is not None:
        return image
    config.image_dir.mkdir(parents=True, exist_ok=True)
    with open(config.image_dir / BUILD_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        image = cached(config)  # another lab built it while this one waited
        return image if image is not None else _build(config, mirror)


def _build(config: LabConfig, mirror: DebianMirror) -> Image:
    target = config.image_dir / "rootfs.partial"
    if target.exists():
        shutil.rmtree(target)
    (config.image_dir / MANIFEST).unlink(missing_ok=True)
    started = time.monotonic()
    _debootstrap(target, mirror, config.image_dir / "debootstrap.log")
    _customize(target, mirror)
    final = rootfs(config)
    if final.exists():
        shutil.rmtree(final)
    target.rename(final)
    manifest: dict[str, object] = {
        "codename": mirror.codename,
        "mirror": mirror.url,
        "packages": list(PACKAGES),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (config.image_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Image(final, manifest)


def remove(config: LabConfig) -> None:
    if config.image_dir.exists():
        shutil.rmtree(config.image_dir)
