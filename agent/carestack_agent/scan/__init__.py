"""The security scan's checks: one plug-in per check (see base.Check), all run by actions/scan.py."""

from __future__ import annotations

from .base import Check
from .core import CoreIntegrity
from .database import DatabaseCheck
from .host import HostCheck
from .integrity import FileIntegrity
from .patterns import KnownBadPatterns
from .uploads import CodeInUploads
from .vulns import VulnerableVersions


def all_checks() -> list[Check]:
    return [FileIntegrity(), CodeInUploads(), CoreIntegrity(), KnownBadPatterns(), DatabaseCheck(), HostCheck(),
            VulnerableVersions()]  # fmt: skip
