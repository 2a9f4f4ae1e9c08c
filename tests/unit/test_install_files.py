"""The converge's file installer (ansible/roles/common/files/install-files.py), run as Ansible runs it.

Every role sends its host state through it in one round trip, so a rerun that changes nothing
must report nothing, a file that fails its validation must replace nothing, and a command tied to a
change must run once, and only when that change happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INSTALLER = Path(__file__).resolve().parents[2] / "ansible/roles/common/files/install-files.py"


def install(spec: dict[str, Any]) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(INSTALLER)], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    changed: list[str] = json.loads(result.stdout)["changed"]
    return changed


def test_files_directories_links_and_removals_are_made_once_and_a_rerun_reports_nothing(tmp_path: Path) -> None:
    (tmp_path / "default").write_text("nginx's default\n")
    spec = {
        "directories": [{"path": str(tmp_path / "d"), "mode": "0711"}],
        "mode": "0640",
        "files": {str(tmp_path / "d/a.conf"): "a\n"},
        "entries": [{"path": str(tmp_path / "secret"), "content": "s\n", "mode": "0600"}],
        "links": [{"path": str(tmp_path / "localtime"), "target": "/usr/share/zoneinfo/UTC"}],
        "absent": [{"path": str(tmp_path / "default")}],
    }
    first = install(spec)
    assert len(first) == 6, first  # the directory: created, then its mode set
    assert (tmp_path / "d").stat().st_mode & 0o7777 == 0o711
    assert (tmp_path / "d/a.conf").read_text() == "a\n"
    assert (tmp_path / "d/a.conf").stat().st_mode & 0o7777 == 0o640
    assert (tmp_path / "secret").stat().st_mode & 0o7777 == 0o600
    assert os.readlink(tmp_path / "localtime") == "/usr/share/zoneinfo/UTC"
    assert not (tmp_path / "default").exists()
    assert install(spec) == []


def test_a_create_only_file_is_never_replaced(tmp_path: Path) -> None:
    page = tmp_path / "index.php"
    spec = {"entries": [{"path": str(page), "content": "placeholder\n", "create_only": True}]}
    assert install(spec) == [f"wrote {page}"]
    page.write_text("the client's own code\n")
    assert install(spec) == []
    assert page.read_text() == "the client's own code\n"


def test_a_file_failing_validation_replaces_nothing_and_is_named(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.conf", tmp_path / "bad.conf"
    bad.write_text("old\n")
    spec = {
        "entries": [
            {"path": str(good), "content": "fine\n"},
            {"path": str(bad), "content": "broken\n", "validate": ["sh", "-c", "! grep -q broken $0", "%s"]},
        ]
    }
    result = subprocess.run(
        [sys.executable, str(INSTALLER)], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert f"{bad} failed its validation" in result.stderr
    assert not good.exists()
    assert bad.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.conf"]  # no staged file left behind


def test_commands_run_once_in_order_and_only_for_what_changed(tmp_path: Path) -> None:
    log = tmp_path / "log"
    note = ["sh", "-c", f"echo $0 >> {log}"]
    spec = {
        "entries": [
            {"path": str(tmp_path / "pool.conf"), "content": "p\n", "then": [[*note, "php"]]},
            {"path": str(tmp_path / "vhost.conf"), "content": "v\n", "then": [[*note, "nginx"]]},
            {"path": str(tmp_path / "vhost2.conf"), "content": "w\n", "then": [[*note, "nginx"]]},
        ],
        "then": [[*note, "anything"]],
    }
    install(spec)
    assert log.read_text().split() == ["php", "nginx", "anything"]
    (tmp_path / "vhost2.conf").write_text("drift\n")
    log.unlink()
    install(spec)
    assert log.read_text().split() == ["nginx", "anything"]
    log.unlink()
    assert install(spec) == []
    assert not log.exists()


def test_a_failing_command_fails_the_run_and_names_it(tmp_path: Path) -> None:
    spec = {"entries": [{"path": str(tmp_path / "x"), "content": "x\n", "then": [["sh", "-c", "echo no >&2; exit 3"]]}]}
    result = subprocess.run(
        [sys.executable, str(INSTALLER)], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "failed after the change: no" in result.stderr


def test_lines_and_blocks_edit_a_shared_file_in_place_and_keep_the_rest(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n127.0.1.1 old-name\n# an operator's line\n")
    hosts.chmod(0o644)
    spec: dict[str, Any] = {
        "lines": [{"path": str(hosts), "regexp": r"^127\.0\.1\.1\s", "line": "127.0.1.1 shared-1"}],
        "blocks": [
            {"path": str(hosts), "marker": "# {mark} carestack sites of studio", "block": "127.0.0.1 a.test b.test"},
            {"path": str(hosts), "marker": "# {mark} carestack sites of bakery", "block": "127.0.0.1 c.test"},
        ],
    }
    assert install(spec) == [f"wrote {hosts}"]
    assert hosts.read_text() == (
        "127.0.0.1 localhost\n127.0.1.1 shared-1\n# an operator's line\n"
        "# BEGIN carestack sites of studio\n127.0.0.1 a.test b.test\n# END carestack sites of studio\n"
        "# BEGIN carestack sites of bakery\n127.0.0.1 c.test\n# END carestack sites of bakery\n"
    )
    assert install(spec) == []
    spec["blocks"][0]["block"] = "127.0.0.1 a.test"
    install(spec)
    assert "127.0.0.1 a.test\n# END carestack sites of studio" in hosts.read_text()
    assert hosts.read_text().count("BEGIN") == 2
    assert hosts.stat().st_mode & 0o7777 == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="owners need root")
def test_owners_are_set_on_files_and_directories(tmp_path: Path) -> None:
    spec = {
        "directories": [{"path": str(tmp_path / "root"), "mode": "0750", "owner": "nobody", "group": "nogroup"}],
        "entries": [{"path": str(tmp_path / "root/f"), "content": "f\n", "owner": "nobody", "group": "nogroup"}],
    }
    install(spec)
    assert (tmp_path / "root").stat().st_uid == (tmp_path / "root/f").stat().st_uid != 0
    assert install(spec) == []


def test_a_failed_command_runs_again_on_the_next_call_of_that_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARESTACK_INSTALL_PENDING_DIR", str(tmp_path / "pending"))
    gate, log = tmp_path / "gate", tmp_path / "log"
    reload = ["sh", "-c", f"test -e {gate} && echo reloaded >> {log}"]
    spec = {"name": "web", "entries": [{"path": str(tmp_path / "vhost.conf"), "content": "v\n", "then": [reload]}]}
    result = subprocess.run(
        [sys.executable, str(INSTALLER)], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    other = {"name": "common", "entries": [{"path": str(tmp_path / "other"), "content": "o\n"}]}
    install(other)
    assert not log.exists()  # another call's failure is not this one's to retry
    gate.touch()
    assert install(spec) == [f"ran {' '.join(reload)}"]
    assert log.read_text() == "reloaded\n"
    assert install(spec) == []
    assert list((tmp_path / "pending").iterdir()) == []


def test_pieces_are_assembled_as_ansibles_assemble_module_does_and_validated(tmp_path: Path) -> None:
    pieces, dest = tmp_path / "agent.d", tmp_path / "agent.toml"
    pieces.mkdir()
    (pieces / "00-agent.toml").write_text("[agent]\n")
    (pieces / "studio.toml").write_text("[sites.a]")  # no final newline: one is added before the delimiter
    (pieces / "notes.txt").write_text("not a piece\n")
    spec = {
        "entries": [{"path": str(pieces / "bakery.toml"), "content": "[sites.b]\n"}],
        "assemble": [
            {
                "src": str(pieces),
                "suffix": ".toml",
                "dest": str(dest),
                "mode": "0640",
                "validate": ["sh", "-c", "! grep -q broken $0", "%s"],
            }
        ],
    }
    assert install(spec) == [f"wrote {pieces / 'bakery.toml'}", f"assembled {dest}"]
    assert dest.read_text() == "[agent]\n\n[sites.b]\n\n[sites.a]"
    assert dest.stat().st_mode & 0o7777 == 0o640
    assert install(spec) == []
    (pieces / "studio.toml").write_text("broken\n")
    result = subprocess.run(
        [sys.executable, str(INSTALLER)], input=json.dumps(spec), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and f"{dest} failed its validation" in result.stderr
    assert dest.read_text() == "[agent]\n\n[sites.b]\n\n[sites.a]"


def test_a_link_to_another_name_of_the_same_file_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "Etc").mkdir()
    (tmp_path / "Etc/UTC").write_text("TZif\n")
    (tmp_path / "UTC").symlink_to("Etc/UTC")
    localtime = tmp_path / "localtime"
    localtime.symlink_to(tmp_path / "Etc/UTC")  # as tzdata's postinst leaves it
    assert install({"links": [{"path": str(localtime), "target": str(tmp_path / "UTC")}]}) == []
    assert os.readlink(localtime) == str(tmp_path / "Etc/UTC")


def test_empty_lists_from_a_template_with_nothing_to_list_are_nothing_to_do(tmp_path: Path) -> None:
    # A standby serves no site: the site role's template renders `entries:` with nothing under it.
    empty: dict[str, Any] = {key: None for key in ("directories", "files", "entries", "links", "absent", "lines",
                                                   "blocks", "assemble", "then", "units")}  # fmt: skip
    assert install(empty) == []
