"""Version comparison, the way each ecosystem's own tool compares.

- `debian_compare`: dpkg's algorithm (epoch, upstream, revision; `~` sorts
  before anything, letters before other symbols). Used for Debian packages and
  for release artifacts, so `1.10 > 1.9` and `2.0~rc1 < 2.0`.
- `php_compare`: PHP's `version_compare`, which WordPress uses for plugins,
  themes and core (`1.2-beta < 1.2 < 1.2.1`, `dev < alpha < beta < RC < pl`).
- `major`: the first component of a WordPress plugin/theme version, what the
  plan's `wordpress_policy = "minor"` keeps fixed.
"""

from __future__ import annotations

import re


def _order(c: str) -> int:
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating non-digit and digit runs."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and j < len(b) and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_debian(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def debian_compare(a: str, b: str) -> int:
    """<0, 0, >0 as dpkg --compare-versions would order a and b."""
    ea, ua, ra = _split_debian(a)
    eb, ub, rb = _split_debian(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# PHP's special version forms, in its order; a prefix match picks the form.
_PHP_FORMS = (("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4),
              ("pl", 5), ("p", 5))  # fmt: skip
_PHP_UNKNOWN_FORM = -6


def _php_canonical(version: str) -> list[str]:
    """PHP's canonicalization: `-_+` and other symbols become dots, digit/letter boundaries get one."""
    if not version:
        return []

    def non_digit(c: str) -> bool:
        return not c.isdigit() and c != "."

    out = [version[0]]
    prev = version[0]
    for c in version[1:]:
        if c in "-_+" or (not c.isalnum() and c != "."):
            if out[-1] != ".":
                out.append(".")
        elif (non_digit(prev) and c.isdigit()) or (prev.isdigit() and non_digit(c)):
            if out[-1] != ".":
                out.append(".")
            out.append(c)
        else:
            out.append(c)
        prev = c
    return [part for part in "".join(out).split(".") if part]


def _php_form(part: str) -> int:
    for name, order in _PHP_FORMS:
        if part.startswith(name):
            return order
    return _PHP_UNKNOWN_FORM


def _php_part(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit():
        return (int(a) > int(b)) - (int(a) < int(b))
    fa = _php_form("#" if a.isdigit() else a)
    fb = _php_form("#" if b.isdigit() else b)
    return (fa > fb) - (fa < fb)


def php_compare(a: str, b: str) -> int:
    """-1, 0, 1 as PHP's version_compare(a, b)."""
    pa, pb = _php_canonical(a), _php_canonical(b)
    for x, y in zip(pa, pb, strict=False):
        result = _php_part(x, y)
        if result:
            return result
    if len(pa) > len(pb):
        rest = pa[len(pb)]
        return 1 if rest.isdigit() else _php_part(rest, "#")
    if len(pb) > len(pa):
        rest = pb[len(pa)]
        return -1 if rest.isdigit() else _php_part("#", rest)
    return 0


_LEADING_NUMBER = re.compile(r"^\d+")


def major(version: str) -> str:
    """The major part of a WordPress plugin/theme version: its first number (`2` of `2.4.1`)."""
    found = _LEADING_NUMBER.match(version.strip().lstrip("vV"))
    return str(int(found.group())) if found else version
