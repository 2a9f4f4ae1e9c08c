"""MariaDB: a consistent streamed dump, and a restore that swaps in atomically.

Dump: `mariadb-dump --single-transaction` (InnoDB snapshot at one instant; no
table locks held while the site keeps writing), stdout is a pipe the caller
streams into restic. Its exit status is checked: a dump that failed is a failed
backup.

Restore: the dump is imported into a staging database first; only when the
import succeeded are the tables swapped in with one `RENAME TABLE` (atomic in
MariaDB), so a broken or interrupted restore never leaves the site half
restored. A schema with views, triggers or routines cannot be swapped with
RENAME TABLE; it is imported into a recreated database instead.
Authentication is MariaDB's unix_socket as root (the agent runs as root).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..config import AgentSettings
from ..proc import Deadline, TailReader, Watchdog, spawn

STAGING_SUFFIX = "__csrestore"
OLD_SUFFIX = "__csold"
DUMP_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    "--default-character-set=utf8mb4",
)


class DatabaseError(Exception):
    pass


def client_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}


def start_dump(
    settings: AgentSettings, name: str, socket: Path, stdout: int | IO[bytes] = subprocess.PIPE
) -> tuple[subprocess.Popen[bytes], TailReader]:
    """Start the dump; the caller reads proc.stdout (or gives a file) and must call `finish_dump`."""
    proc = spawn(
        [str(settings.mariadb_dump), f"--socket={socket}", "--user=root", *DUMP_OPTIONS, name],
        env=client_env(),
        nice=settings.nice,
        ionice_idle=settings.ionice_idle,
        sched_idle=settings.sched_idle,
        stdout=stdout,
    )
    return proc, TailReader(proc.stderr, keep=10)


def finish_dump(proc: subprocess.Popen[bytes], stderr: TailReader) -> str | None:
    """Wait for the dump; None if it succeeded, else a one-line reason."""
    rc = proc.wait()
    lines = [x for x in stderr.join(timeout=5) if x.strip()]
    if rc == 0:
        return None
    detail = lines[-1] if lines else ""
    return f"mariadb-dump exited with status {rc}" + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class Target:
    name: str
    socket: Path


def _q(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def sql(
    settings: AgentSettings, socket: Path, statement: str, deadline: Deadline, database: str | None = None
) -> list[list[str]]:
    """Run SQL through the mariadb client; rows as lists of strings."""
    argv = [str(settings.mariadb), f"--socket={socket}", "--user=root", "--batch", "--skip-column-names"]
    if database:
        argv.append(f"--database={database}")
    proc = spawn([*argv, "-e", statement], env=client_env())
    with Watchdog(deadline, [proc]) as dog:
        out, err = proc.communicate()
    if proc.returncode != 0:
        if dog.fired:
            raise DatabaseError("mariadb client killed by the watchdog at the job's deadline")
        msg = err.decode("utf-8", "replace").strip().splitlines()
        raise DatabaseError(f"mariadb: {msg[-1] if msg else f'exit status {proc.returncode}'}")
    return [line.split("\t") for line in out.decode("utf-8", "replace").splitlines()]


def import_stream(settings: AgentSettings, socket: Path, database: str, dump: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start `mariadb` importing the dump it reads from `dump` (a running producer's stdout) into `database`."""
    return spawn(
        [str(settings.mariadb), f"--socket={socket}", "--user=root", "--binary-mode", f"--database={database}"],
        env=client_env(),
        stdin=dump,
        stdout=subprocess.DEVNULL,
    )


def staging_name(name: str) -> str:
    return name[: 64 - len(STAGING_SUFFIX)] + STAGING_SUFFIX


def old_name(name: str) -> str:
    return name[: 64 - len(OLD_SUFFIX)] + OLD_SUFFIX


def prepare_staging(settings: AgentSettings, target: Target, deadline: Deadline) -> str:
    staging = staging_name(target.name)
    sql(settings, target.socket, f"DROP DATABASE IF EXISTS {_q(staging)}; CREATE DATABASE {_q(staging)}", deadline)
    return staging


@dataclass(frozen=True)
class Swap:
    """A prepared swap of a staging database's tables into the live one (see `prepare_swap`)."""

    target: Target
    staging: str
    tables: list[str]  # the staging database's tables, to go live
    live_tables: list[str]  # the live database's tables, to go to the old-name database


def prepare_swap(settings: AgentSettings, target: Target, staging: str, deadline: Deadline) -> Swap:
    """Everything a swap needs except the swap itself, so the swap is one statement (`commit_swap`).

    Raises DatabaseError("views, triggers or routines present") when RENAME TABLE
    cannot carry the schema (the caller imports into a recreated database instead).
    """
    live, old = target.name, old_name(target.name)
    rows = sql(
        settings,
        target.socket,
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"'{staging}'; SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{staging}'; "
        f"SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{staging}'",
        deadline,
    )
    tables = [r[0] for r in rows if len(r) == 2 and r[1] == "BASE TABLE"]
    others = [r for r in rows if len(r) == 2 and r[1] != "BASE TABLE"]
    counts = [int(r[0]) for r in rows if len(r) == 1]
    if others or any(counts):
        raise DatabaseError("views, triggers or routines present")  # caller falls back to a direct import
    # One client run for the rest (each start of the mariadb client costs tens of milliseconds).
    live_tables = [
        r[0]
        for r in sql(
            settings,
            target.socket,
            f"CREATE DATABASE IF NOT EXISTS {_q(live)}; DROP DATABASE IF EXISTS {_q(old)}; CREATE DATABASE {_q(old)}; "
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{live}'",
            deadline,
        )
    ]
    return Swap(target, staging, tables, live_tables)


def commit_swap(settings: AgentSettings, swap: Swap, deadline: Deadline) -> None:
    """The swap itself: one RENAME TABLE (atomic in MariaDB); the live tables go to the old-name database."""
    live, old, staging = swap.target.name, old_name(swap.target.name), swap.staging
    renames = [f"{_q(live)}.{_q(t)} TO {_q(old)}.{_q(t)}" for t in swap.live_tables]
    renames += [f"{_q(staging)}.{_q(t)} TO {_q(live)}.{_q(t)}" for t in swap.tables]
    if renames:
        sql(settings, swap.target.socket, "RENAME TABLE " + ", ".join(renames), deadline)


def finish_swap(settings: AgentSettings, swap: Swap, deadline: Deadline) -> str:
    """Drop what the swap left (the old tables, the emptied staging database); returns how it was done."""
    sql(settings, swap.target.socket,
        f"DROP DATABASE IF EXISTS {_q(old_name(swap.target.name))}; DROP DATABASE IF EXISTS {_q(swap.staging)}",
        deadline)  # fmt: skip
    return f"{len(swap.tables)} tables swapped in atomically"


def swap_in(settings: AgentSettings, target: Target, staging: str, deadline: Deadline) -> str:
    """Make `staging`'s content the live database `target.name`; returns how it was done."""
    swap = prepare_swap(settings, target, staging, deadline)
    commit_swap(settings, swap, deadline)
    return finish_swap(settings, swap, deadline)


def recreate(settings: AgentSettings, target: Target, deadline: Deadline) -> None:
    sql(
        settings,
        target.socket,
        f"DROP DATABASE IF EXISTS {_q(target.name)}; CREATE DATABASE {_q(target.name)}",
        deadline,
    )


def drop(settings: AgentSettings, target: Target, name: str, deadline: Deadline) -> None:
    sql(settings, target.socket, f"DROP DATABASE IF EXISTS {_q(name)}", deadline)
