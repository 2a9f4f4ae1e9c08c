"""Secret files, read at run time only.

Values never leave this module except into a child's environment (restic) or
a push URL (never logged). Errors name the file, never its content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretError(Exception):
    pass


def check_private(path: Path) -> None:
    """The file exists, is a regular file, and is not readable by group or others."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SecretError(f"{path}: secret file missing") from None
    except PermissionError:
        raise SecretError(f"{path}: secret file not accessible (permission denied)") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretError(f"{path}: secret file is not a regular file")
    if st.st_mode & 0o077:
        raise SecretError(
            f"{path}: secret file must not be accessible by group or others (mode {st.st_mode & 0o777:04o})"
        )


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (blank lines and # comments ignored, optional quotes stripped)."""
    check_private(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SecretError(f"{path}: cannot read secret file ({type(e).__name__})") from None
    values: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise SecretError(f"{path}: line {n} is not KEY=value")  # content deliberately not shown
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def s3_environment(path: Path) -> dict[str, str]:
    """AWS_* variables for restic's S3 backend."""
    values = read_env_file(path)
    env = {k: v for k, v in values.items() if k.startswith("AWS_")}
    missing = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(k)]
    if missing:
        raise SecretError(f"{path}: missing {', '.join(missing)}")
    return env
