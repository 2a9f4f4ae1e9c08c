#!/usr/bin/python3
"""Brings a batch of files, links, lines and units to their desired state in one step.

A module call per file, link or service costs a round trip each: that dominated a converge that
changes nothing. Each role instead sends its whole set of host state once. This reads, on stdin,

    {"hostname": "shared-1",
     "directories": [{"path": "/abs/dir", "mode": "0755", "owner": "root", "group": "root"}, ...],
     "mode": "0644", "files": {"/abs/path": "content", ...},
     "entries": [{"path": "/abs/path", "content": "...", "mode": "0640", "owner": "root", "group": "adm",
                  "create_only": false, "validate": ["sshd", "-t", "-f", "%s"],
                  "then": [["systemctl", "reload", "ssh.service"]]}, ...],
     "links": [{"path": "/etc/localtime", "target": "/usr/share/zoneinfo/UTC", "then": [...]}],
     "absent": [{"path": "/etc/nginx/sites-enabled/default", "then": [...]}],
     "lines": [{"path": "/etc/hosts", "regexp": "^127\\.0\\.1\\.1\\s", "line": "127.0.1.1 x"}],
     "blocks": [{"path": "/etc/hosts", "marker": "# {mark} x", "block": "127.0.0.1 a b"}],
     "then": [["systemctl", "reload-or-restart", "nginx.service"]],
     "assemble": [{"src": "/etc/carestack/agent.d", "suffix": ".toml", "dest": "/etc/carestack/agent.toml",
                   "mode": "0640", "validate": ["carestack-agent", "--config", "%s", "validate"]}],
     "units": ["nftables.service", "x.timer"],
     "name": "web"}

(every key optional; `files` are root's with the one `mode`, `entries` name their own; owner and
group default to root; a `create_only` entry is written only where no file exists, never replaced;
`assemble` joins the pieces in `src` ending in `suffix`, sorted by name, into `dest` as Ansible's
assemble module does with a newline delimiter: pieces of other runs on the host count too).
Order of work: the host name; directories; every changed file (the entries, and the files that
`lines` and `blocks` edit) staged beside its target and validated, then all replaced (a failed
validation replaces nothing and names the file); the assembled files, the same way; links and
removals; `systemctl daemon-reload` if anything under /etc/systemd/system changed; the `then`
commands of what changed (and the top-level `then` if anything changed), each once, in the order
first named; finally each of `units` enabled and started, restarted if its own unit file was
written (a new schedule takes effect). Prints {"changed": [what it did]}; contents never appear in
its output.

A command that fails fails the run, and the next run would find the files already in place and run
nothing: with a `name`, the commands still to run are kept in PENDING_DIR/<name>.json until they
succeed, and the next call of that name runs them again after writing its files (what Ansible's
force_handlers did for the handlers this replaces).
"""

import grp
import json
import os
import pwd
import re
import subprocess
import sys
import tempfile

UNIT_DIR = "/etc/systemd/system/"
PENDING_DIR = os.environ.get("CARESTACK_INSTALL_PENDING_DIR", "/var/lib/carestack/install-pending")


class Refused(Exception):
    """A staged file failed its validation: nothing was replaced."""


def ids(entry: dict) -> tuple[int, int]:
    return pwd.getpwnam(entry.get("owner", "root")).pw_uid, grp.getgrnam(entry.get("group", "root")).gr_gid


def ensure_hostname(name: str) -> list[str]:
    # Not hostnamectl: systemd-hostnamed's D-Bus activation timed out on a busy host.
    with open("/etc/hostname", encoding="utf-8") as current:
        on_disk = current.read().strip()
    running = os.uname().nodename
    if on_disk == name and running == name:
        return []
    stage_and_replace([("/etc/hostname", f"{name}\n".encode(), 0o644, 0, 0)])
    subprocess.run(["hostname", name], check=True)
    return [f"named the server {name}"]


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


def differs(path: str, data: bytes, mode: int, uid: int, gid: int, create_only: bool = False) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    if create_only:
        return False
    if st.st_mode & 0o7777 != mode or (st.st_uid, st.st_gid) != (uid, gid):
        return True
    with open(path, "rb") as current:
        return current.read() != data


def stage(path: str, data: bytes, mode: int, uid: int, gid: int) -> str:
    """A private temporary file beside `path` with the final content, mode and owner."""
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
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def stage_and_replace(changes: list[tuple[str, bytes, int, int, int]], validators: dict | None = None) -> None:
    """Stages every change, validates each staged file, then replaces them all (or none)."""
    staged: list[tuple[str, str]] = []
    try:
        for path, data, mode, uid, gid in changes:
            staged.append((stage(path, data, mode, uid, gid), path))
        for tmp, path in staged:
            validate = (validators or {}).get(path)
            if validate:
                argv = [tmp if arg == "%s" else arg for arg in validate]
                result = subprocess.run(argv, capture_output=True, text=True)
                if result.returncode != 0:
                    raise Refused(f"{path} failed its validation ({validate[0]}): {result.stderr.strip()[-500:]}")
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)


def with_line(text: str, regexp: str, line: str) -> str:
    lines = text.splitlines()
    pattern = re.compile(regexp)
    for index, existing in enumerate(lines):
        if pattern.search(existing):
            lines[index] = line
            break
    else:
        lines.append(line)
    return "\n".join(lines) + "\n"


def with_block(text: str, marker: str, block: str) -> str:
    begin, end = marker.replace("{mark}", "BEGIN"), marker.replace("{mark}", "END")
    wanted = [begin, *block.splitlines(), end]
    lines = text.splitlines()
    if begin in lines and end in lines[lines.index(begin) :]:
        start = lines.index(begin)
        stop = lines.index(end, start)
        lines[start : stop + 1] = wanted
    else:
        lines.extend(wanted)
    return "\n".join(lines) + "\n"


def edited_files(spec: dict) -> dict[str, str]:
    """The new text of each file that `lines` and `blocks` edit (read once, edited in order)."""
    texts: dict[str, str] = {}
    for kind, edit in (
        ("lines", lambda t, e: with_line(t, e["regexp"], e["line"])),
        ("blocks", lambda t, e: with_block(t, e["marker"], e["block"])),
    ):
        for entry in spec.get(kind) or []:
            path = entry["path"]
            if path not in texts:
                try:
                    with open(path, encoding="utf-8") as current:
                        texts[path] = current.read()
                except FileNotFoundError:
                    texts[path] = ""
            texts[path] = edit(texts[path], entry)
    return texts


def existing_mode(path: str) -> str:
    """An edited file keeps its mode (a new one is 0644)."""
    return format(os.stat(path).st_mode & 0o7777, "04o") if os.path.exists(path) else "0644"


def assembled(src: str, suffix: str) -> str:
    """The pieces joined as ansible.builtin.assemble joins them with delimiter "\\n"."""
    out, first, needs_newline = "", True, False
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not name.endswith(suffix) or name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as piece:
            content = piece.read()
        if needs_newline:
            out += "\n"
        if not first:
            out += "\n"
        out += content
        first, needs_newline = False, not content.endswith("\n")
    return out


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


def start_units(units: list[str], written_units: set[str]) -> list[str]:
    now = unit_states(units)
    enable = [u for u in units if now[u].get("UnitFileState") not in ("enabled", "static", "alias")]
    start = [u for u in units if now[u].get("ActiveState") != "active"]
    restart = [u for u in units if u in written_units and u not in start]  # a new schedule takes effect
    for verb, names in (("enable", enable), ("start", start), ("restart", restart)):
        if names:
            systemctl(verb, "--", *names)
    return [f"enabled {u}" for u in enable] + [f"started {u}" for u in start] + [f"restarted {u}" for u in restart]


def pending_file(name: str | None) -> str | None:
    return os.path.join(PENDING_DIR, f"{name}.json") if name else None


def read_pending(name: str | None) -> list[list[str]]:
    path = pending_file(name)
    if path is None or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as pending:
        return json.load(pending)


def run_then(commands: list[list[str]], name: str | None) -> list[str]:
    unique: list[list[str]] = []
    for argv in commands:
        if argv not in unique:
            unique.append(argv)
    path = pending_file(name)
    if path is not None and unique:
        os.makedirs(PENDING_DIR, mode=0o700, exist_ok=True)
        stage_and_replace([(path, json.dumps(unique).encode(), 0o600, 0, 0)])
    done: list[str] = []
    for argv in unique:
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise Refused(f"`{' '.join(argv)}` failed after the change: {result.stderr.strip()[-500:]}")
        done.append(f"ran {' '.join(argv)}")
    if path is not None and os.path.exists(path):
        os.unlink(path)
    return done


def main() -> int:
    spec = json.load(sys.stdin)
    changed: list[str] = []
    then: list[list[str]] = []
    if spec.get("hostname"):
        changed += ensure_hostname(spec["hostname"])
    changed += [line for entry in (spec.get("directories") or []) for line in ensure_directory(entry)]

    entries = [
        {"path": path, "content": content, "mode": spec.get("mode", "0644")}
        for path, content in sorted((spec.get("files") or {}).items())
    ]
    entries += spec.get("entries") or []
    entries += [
        {"path": path, "content": text, "mode": existing_mode(path)} for path, text in edited_files(spec).items()
    ]
    changes, validators = [], {}
    for entry in entries:
        mode = int(entry.get("mode", "0644"), 8)
        uid, gid = ids(entry)
        data = entry["content"].encode()
        if differs(entry["path"], data, mode, uid, gid, entry.get("create_only", False)):
            changes.append((entry["path"], data, mode, uid, gid))
            then += entry.get("then", [])
            if entry.get("validate"):
                validators[entry["path"]] = entry["validate"]
    stage_and_replace(changes, validators)
    touched = [path for path, *_ in changes]
    changed += [f"wrote {path}" for path in touched]

    assemblies = []
    for entry in spec.get("assemble") or []:
        mode, (uid, gid) = int(entry.get("mode", "0644"), 8), ids(entry)
        data = assembled(entry["src"], entry.get("suffix", "")).encode()
        if differs(entry["dest"], data, mode, uid, gid):
            assemblies.append((entry["dest"], data, mode, uid, gid))
            then += entry.get("then", [])
    stage_and_replace(assemblies, {e["dest"]: e["validate"] for e in (spec.get("assemble") or []) if e.get("validate")})
    touched += [path for path, *_ in assemblies]
    changed += [f"assembled {path}" for path, *_ in assemblies]

    for link in spec.get("links") or []:
        path, target = link["path"], link["target"]
        # tzdata links /etc/localtime to Etc/UTC where the plan says UTC (a link to Etc/UTC): the same file.
        if os.path.islink(path) and (os.readlink(path) == target or os.path.realpath(path) == os.path.realpath(target)):
            continue
        tmp = f"{path}.carestack-new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, path)
        touched.append(path)
        then += link.get("then", [])
        changed.append(f"linked {path} to {target}")
    for gone in spec.get("absent") or []:
        if os.path.lexists(gone["path"]):
            os.unlink(gone["path"])
            touched.append(gone["path"])
            then += gone.get("then", [])
            changed.append(f"removed {gone['path']}")

    if any(path.startswith(UNIT_DIR) for path in touched):
        systemctl("daemon-reload")
    if changed:
        then += spec.get("then") or []
    changed += run_then(read_pending(spec.get("name")) + then, spec.get("name"))
    if spec.get("units"):
        written_units = {os.path.basename(p) for p in touched if os.path.dirname(p) + "/" == UNIT_DIR}
        changed += start_units(spec["units"], written_units)
    print(json.dumps({"changed": changed}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Refused as refused:
        print(refused, file=sys.stderr)
        sys.exit(1)
