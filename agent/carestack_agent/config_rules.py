"""The rules a config value must follow, each with the words that describe it.

A rule says what a value must be (`what`, shown in the generated docs) and
returns, for a bad value, the error without its key path ("must be an integer
between 0 and 19, got 40"). `config.py` attaches one rule to every key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SITE_ID = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # a Linux user (useradd's default rule)
DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
# A check's path: what the probe requests on the site (query strings allowed, no host).
CHECK_PATH = re.compile(r"^/[^\s#]*$")
# release_preserve entries: paths inside the site root, kept across a release.
RELATIVE_PATH = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[^\0]+$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
S3_REPOSITORY = re.compile(r"^s3:https?://[^\s/]+/[^\s]+$")


@dataclass(frozen=True)
class Rule:
    what: str  # what a good value is, for the docs: "an integer between 0 and 19"
    problem: Callable[[Any], str | None]  # the error for a bad value (without the key path), None for a good one


def show(value: Any) -> str:
    """A value as an error message quotes it (tables and lists by their kind only: they may be long)."""
    if isinstance(value, (dict, list)):
        return type(value).__name__
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(minimum: int, maximum: int | None = None) -> Rule:
    bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
    what = f"an integer {bound}"

    def problem(v: Any) -> str | None:
        if _is_int(v) and v >= minimum and (maximum is None or v <= maximum):
            return None
        return f"must be {what}, got {show(v)}"

    return Rule(what, problem)


def number(minimum: float) -> Rule:
    what = f"a number >= {minimum:g}"

    def problem(v: Any) -> str | None:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= minimum:
            return None
        return f"must be {what}, got {show(v)}"

    return Rule(what, problem)


boolean = Rule("true or false", lambda v: None if isinstance(v, bool) else f"must be true or false, got {show(v)}")


def string(pattern: re.Pattern[str] | None = None, what: str = "") -> Rule:
    def problem(v: Any) -> str | None:
        if not isinstance(v, str) or not v:
            return f"must be a non-empty string, got {show(v)}"
        if pattern is not None and not pattern.match(v):
            return f"must be {what}, got {show(v)}"
        return None

    return Rule(what or "a non-empty string", problem)


def one_of(*choices: str) -> Rule:
    what = f"one of {', '.join(choices)}"
    return Rule(what, lambda v: None if v in choices else f"must be {what}, got {show(v)}")


def _abspath(v: Any) -> str | None:
    if not isinstance(v, str) or not v.startswith("/") or "\0" in v:
        return f"must be an absolute path, got {show(v)}"
    if any(part == ".." for part in v.split("/")):
        return f"must not contain '..', got {show(v)}"
    return None


abspath = Rule("an absolute path (no '..')", _abspath)


def list_of(item: Rule, *, non_empty: bool) -> Rule:
    def problem(v: Any) -> str | None:
        if not isinstance(v, list):
            return f"must be a list, got {show(v)}"
        if non_empty and not v:
            return "must not be empty"
        for i, x in enumerate(v):
            err = item.problem(x)
            if err:
                return f"item {i} {err}"
        return None

    return Rule(f"a{' non-empty' if non_empty else ''} list, each item {item.what}", problem)


url = Rule(
    "an http:// or https:// URL",
    lambda v: None if isinstance(v, str) and URL.match(v) else f"must be an http:// or https:// URL, got {show(v)}",
)


def _path_or_url(v: Any) -> str | None:
    if url.problem(v) is None or _abspath(v) is None:
        return None
    return f"must be an absolute path or an http:// or https:// URL, got {show(v)}"


path_or_url = Rule("an absolute path or an http:// or https:// URL", _path_or_url)


def subset_of(*choices: str) -> Rule:
    what = f"a list of distinct values from {', '.join(choices)}"

    def problem(v: Any) -> str | None:
        if isinstance(v, list) and all(x in choices for x in v) and len(set(v)) == len(v):
            return None
        return f"must be {what}, got {show(v)}"

    return Rule(what, problem)


def _repository(v: Any) -> str | None:
    if isinstance(v, str) and (S3_REPOSITORY.match(v) or v.startswith("/")):
        return None
    return f'must be "s3:http(s)://host[:port]/bucket[/prefix]" or an absolute path, got {show(v)}'


repository = Rule('"s3:http(s)://host[:port]/bucket[/prefix]" or an absolute path', _repository)
