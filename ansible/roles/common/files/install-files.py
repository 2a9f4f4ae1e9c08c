#!/usr/bin/python3
"""Writes a batch of files and directories in one step, then starts the timers among them.

A module call per file costs a round trip each: with four jobs and a secret per
site, that dominated a converge that changes nothing. This reads, on stdin,

    {"directories": [{"path": "/abs/dir", "mode": "0755", "owner": "root", "group": "root"}, ...],
     "mode": "0644", "files": {"/abs/path": "content", ...},
     "entries": [{"path": "/abs/path", "content": "...", "mode": "0640", "owner": "root", "group": "adm"}, ...],
     "timers": ["x.timer"]}

(every key optional; `files` are root's with the one `mode`, `entries` name their own; owner and
group default to root). It creates each directory that is missing and sets its mode and owner,
replaces each file whose content, mode or owner differs (atomically, private until it has its final
mode and owner), reloads systemd if a unit changed, enables and starts the timers, restarts those
whose unit changed, and prints {"changed": [what it did]}. Contents never appear in its output.
"""

import grp
import json
import os
import pwd
import subprocess
import sys
import tempfile

UNIT_DIR = "/etc/systemd/system/"


def ids(entry: dict) -> tuple[int, int]:
    return pwd.getpwnam(entry.get("owner", "root")).pw_uid, grp.getgrnam(entry.get("group", "root")).gr_gid


def ensure_directory(entry: dict) -> list[str]:
    """The directory exists with its mode and owner; what was done (nothing: [])."""
    path, mode = entry["path"], int(entry.get("mode", "0755"), 8)
    uid, gid = ids(entry)
    done = []
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
        done.append(f"created {path}")
    st = os.stat(path)
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        done.append(f"set the mode of {path}")
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        done.append(f"set the owner of {path}")
    return done


def write_if_changed(path: str, content: str, mode: int, uid: int = 0, gid: int = 0) -> bool:
    data = content.encode()
    try:
        st = os.stat(path)
        with open(path, "rb") as current:
            if current.read() == data and st.st_mode & 0o7777 == mode and (st.st_uid, st.st_gid) == (uid, gid):
                return False
    except FileNotFoundError:
        pass
    directory, name = os.path.split(path)
    old_umask = os.umask(0o077)  # the temporary file is private from the first byte
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    finally:
        os.umask(old_umask)
    try:
        with os.fdopen(fd, "wb") as new:
            new.write(data)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def systemctl(*args: str) -> str:
    return subprocess.run(["systemctl", *args], check=True, capture_output=True, text=True).stdout


def unit_states(units: list[str]) -> dict[str, dict[str, str]]:
    """UnitFileState and ActiveState of each unit (`systemctl show` prints one block per unit)."""
    out = systemctl("show", "--property=Id,UnitFileState,ActiveState", "--", *units)
    found = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[props["Id"]] = props
    return found


def start_timers(timers: list[str], written_units: set[str]) -> list[str]:
    now = unit_states(timers)
    enable = [t for t in timers if now[t].get("UnitFileState") != "enabled"]
    start = [t for t in timers if now[t].get("ActiveState") != "active"]
    restart = [t for t in timers if t in written_units and t not in start]  # a new schedule takes effect
    for verb, units in (("enable", enable), ("start", start), ("restart", restart)):
        if units:
            systemctl(verb, "--", *units)
    return [f"enabled {t}" for t in enable] + [f"started {t}" for t in start] + [f"restarted {t}" for t in restart]


def main() -> int:
    spec = json.load(sys.stdin)
    changed = [line for entry in spec.get("directories", []) for line in ensure_directory(entry)]
    mode = int(spec.get("mode", "0644"), 8)
    written = [path for path, content in sorted(spec.get("files", {}).items()) if write_if_changed(path, content, mode)]
    for entry in spec.get("entries", []):
        if write_if_changed(entry["path"], entry["content"], int(entry.get("mode", "0644"), 8), *ids(entry)):
            written.append(entry["path"])
    units = {os.path.basename(p) for p in written if p.startswith(UNIT_DIR)}
    if units:
        systemctl("daemon-reload")
    changed += [f"wrote {path}" for path in written]
    if spec.get("timers"):
        changed += start_timers(spec["timers"], units)
    print(json.dumps({"changed": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
