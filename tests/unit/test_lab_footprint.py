"""Which processes `lab down` takes for its lab's: never another lab's, even one that shares its image."""

from __future__ import annotations

from lab.footprint import _names_state_dir, _points_inside

STATE = b"/var/lib/carestack-lab"
IMAGE = b"/var/lib/carestack-lab/cache/image"


def argv(*words: str) -> bytes:
    return b"\0".join(w.encode() for w in words) + b"\0"


def test_a_process_naming_the_state_directory_is_the_labs() -> None:
    assert _names_state_dir(
        argv("systemd-nspawn", "--directory=/var/lib/carestack-lab/hosts/shop-1/root"), STATE, IMAGE
    )
    assert _names_state_dir(argv("apt-cacher-ng", "CacheDir=/var/lib/carestack-lab/cache/apt"), STATE, IMAGE)
    assert _names_state_dir(argv("tool", "/var/lib/carestack-lab"), STATE, IMAGE)


def test_another_lab_that_shares_the_image_is_not_the_labs() -> None:
    other = argv("carestack", "lab", "up", "--subnet", "10.22.0.0/24", "--image-dir", IMAGE.decode())
    assert not _names_state_dir(other, STATE, IMAGE)
    assert not _names_state_dir(argv("debootstrap", IMAGE.decode() + "/rootfs.partial"), STATE, IMAGE)


def test_a_longer_name_is_another_directory() -> None:
    assert not _names_state_dir(argv("nspawn", "--directory=/var/lib/carestack-lab-2/hosts/a"), STATE, IMAGE)


def test_the_environment_counts_but_not_the_working_directory_or_the_image() -> None:
    assert _points_inside(b"DATA_DIR=/var/lib/carestack-lab/run/kuma/\0", STATE, IMAGE)
    assert not _points_inside(b"PWD=/var/lib/carestack-lab/run\0", STATE, IMAGE)
    assert not _points_inside(b"IMAGE=/var/lib/carestack-lab/cache/image/rootfs\0", STATE, IMAGE)
