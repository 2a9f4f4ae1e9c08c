"""Plain words for messages people read: the heartbeats that reach the agency's and clients' channels.

The journal and the command line keep the technical detail an engineer
needs; a heartbeat says what happened. Program exits become words (`mariadb-dump
exited with status -9` → `the database dump (mariadb-dump) was killed
(SIGKILL)`), a Python exception's class name and errno prefix are dropped, and
an internal error points to the server's journal.
"""

from __future__ import annotations

import re
import signal

PROGRAMS = {
    "mariadb-dump": "the database dump (mariadb-dump)",
    "mysqldump": "the database dump (mysqldump)",
    "mariadb": "the database client (mariadb)",
    "restic": "the backup program (restic)",
    "dpkg": "the package manager (dpkg)",
    "apt-get": "the package manager (apt-get)",
    "php": "WordPress's updater (php)",
}

_EXITED = re.compile(r"\b([A-Za-z][\w.+-]*) (?:exited with status|exit status|exit code) (-?\d+)\b")
_PAREN_KILLED = re.compile(r"\(exit(?: status| code)? -(\d+)\)")  # restic's "failed (exit -9)"
_KILLED_STATUS = re.compile(r"\(?\bexit(?:ed with)? status -(\d+)\)?")  # a bare one, after _EXITED
_EXCEPTION = re.compile(r"\b(?:[A-Z]\w*Error|OSError|TimeoutExpired): (?:\[Errno \d+\] )?")
_INTERNAL = re.compile(r"internal error: (\w+)")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def outcome(returncode: int) -> str:
    """`was killed (SIGKILL)`, `was stopped (SIGTERM)`, `failed (exit status 2)`."""
    if returncode < 0:
        name = signal_name(-returncode)
        verb = "was killed" if -returncode == signal.SIGKILL else "was stopped"
        return f"{verb} ({name})"
    return f"failed (exit status {returncode})"


def _program(match: re.Match[str]) -> str:
    program, code = match.group(1), int(match.group(2))
    return f"{PROGRAMS.get(program, program)} {outcome(code)}"


def plain(message: str) -> str:
    """The message with raw exits, exception class names and internal-error names put into words."""
    text = _EXITED.sub(_program, message)
    text = _PAREN_KILLED.sub(lambda m: f"({'killed' if int(m.group(1)) == signal.SIGKILL else 'stopped'} by "
                                       f"{signal_name(int(m.group(1)))})", text)  # fmt: skip
    text = _KILLED_STATUS.sub(lambda m: "the program " + outcome(-int(m.group(1))), text)
    text = _EXCEPTION.sub("", text)
    text = _INTERNAL.sub(r"the agent met an internal error (\1); the details are in the server's log", text)
    return text
