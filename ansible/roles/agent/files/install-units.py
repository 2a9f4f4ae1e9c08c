#!/usr/bin/python3
"""Installs the agent's systemd units in one step.

A module call per unit file (and per timer to enable) costs a round trip each:
with four jobs per site that dominated a converge that changes nothing. This
reads {"units": {name: text}, "timers": [name]} on stdin, writes the units that
differ, reloads systemd if any did, enables and starts the timers, restarts
those whose schedule changed, and prints {"changed": [what it did]}.
"""

import json
import os
import subprocess
import sys
import tempfile

UNIT_DIR = "/etc/systemd/system"


def write_if_changed(name: str, text: str) -> bool:
    path = os.path.join(UNIT_DIR, name)
    try:
        with open(path, encoding="utf-8") as current:
            if current.read() == text:
                return False
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=UNIT_DIR, prefix=f".{name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as new:
        new.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return True


def systemctl(*args: str) -> str:
    return subprocess.run(["systemctl", *args], check=True, capture_output=True, text=True).stdout


def states(units: list[str]) -> dict[str, dict[str, str]]:
    """UnitFileState and ActiveState of each unit (`systemctl show` prints one block per unit)."""
    out = systemctl("show", "--property=Id,UnitFileState,ActiveState", "--", *units)
    found: dict[str, dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[props["Id"]] = props
    return found


def main() -> int:
    spec = json.load(sys.stdin)
    written = [name for name, text in sorted(spec["units"].items()) if write_if_changed(name, text)]
    if written:
        systemctl("daemon-reload")
    timers = spec["timers"]
    now = states(timers) if timers else {}
    enable = [t for t in timers if now[t].get("UnitFileState") != "enabled"]
    start = [t for t in timers if now[t].get("ActiveState") != "active"]
    restart = [t for t in timers if t in written and t not in start]
    if enable:
        systemctl("enable", "--", *enable)
    if start:
        systemctl("start", "--", *start)
    if restart:
        systemctl("restart", "--", *restart)
    changed = [f"wrote {n}" for n in written] + [f"enabled {t}" for t in enable]
    changed += [f"started {t}" for t in start] + [f"restarted {t}" for t in restart]
    print(json.dumps({"changed": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
