"""Staging and atomic tree swaps on a real file system (fast, no restic)."""

from __future__ import annotations

from pathlib import Path

import pytest
from carestack_agent import fsops


def test_a_staged_tree_is_swapped_in_and_the_old_one_left_in_staging(tmp_path: Path) -> None:
    live = tmp_path / "www"
    live.mkdir()
    (live / "index.php").write_text("old")
    staging = fsops.fresh_dir(fsops.staging_path(live, "restore", "r1"))
    assert staging == tmp_path / ".cs-restore-www-r1" and staging.is_dir()
    (staging / "index.php").write_text("new")
    fsops.swap_in(staging, live)
    assert (live / "index.php").read_text() == "new"
    assert (staging / "index.php").read_text() == "old"
    fsops.remove_tree(staging)
    assert not staging.exists()
    fsops.remove_tree(staging)  # already gone is fine


def test_a_missing_live_path_is_created_by_rename_and_a_leftover_staging_dir_is_emptied(tmp_path: Path) -> None:
    live = tmp_path / "gone"
    leftover = fsops.staging_path(live, "release", "r2")
    leftover.mkdir()
    (leftover / "half-unpacked").write_text("x")
    staging = fsops.fresh_dir(leftover)
    assert list(staging.iterdir()) == []
    (staging / "a").write_text("a")
    fsops.swap_in(staging, live)
    assert (live / "a").read_text() == "a" and not staging.exists()


def test_exchange_names_both_paths_when_it_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"renameat2\(RENAME_EXCHANGE\) .*nope <-> .*www"):
        fsops.exchange(tmp_path / "nope", tmp_path / "www")


def test_leftovers_of_any_run_beside_a_path_are_cleared_and_other_paths_kept(tmp_path: Path) -> None:
    live = tmp_path / "www"
    live.mkdir()
    mine = [fsops.staging_path(live, "restore", r) for r in ("20260101T000000-abcdef", "20251231T235959-0a0b0c")]
    for p in mine:
        (p / "srv/www").mkdir(parents=True)
        (p / "srv/www/extra.php").write_text("from the broken version")
    others = [
        fsops.staging_path(tmp_path / "www-2", "restore", "20260101T000000-abcdef"),  # another path's
        fsops.staging_path(live, "release", "20260101T000000-abcdef"),  # another purpose's
        tmp_path / ".cs-restore-www-notarun",
    ]
    for p in others:
        p.mkdir()
    assert fsops.clear_leftovers(live, "restore") == sorted(mine)
    assert not any(p.exists() for p in mine) and all(p.exists() for p in others)
    assert fsops.clear_leftovers(tmp_path / "missing" / "www", "restore") == []
