"""Which Uptime Kuma versions the monitors layer speaks, and the write path each one gets."""

from __future__ import annotations

import pytest

from infra.kuma_versions import UnsupportedKumaVersion, kuma_version


@pytest.mark.parametrize(
    ("text", "bulk_import", "conditions"),
    [("1.23.16", True, False), ("1.23.0", True, False), ("2.0.0-dev.0", True, False), ("2.5.3", False, True)],
)
def test_supported_versions_and_their_write_path(text: str, bulk_import: bool, conditions: bool) -> None:
    version = kuma_version(text, "http://kuma.example")
    assert (version.text, version.bulk_import, version.conditions) == (text, bulk_import, conditions)


@pytest.mark.parametrize("text", ["1.22.1", "2.0.0-beta.2", "3.0.0", "2.5", "", None])
def test_other_versions_are_refused_by_name(text: str | None) -> None:
    with pytest.raises(UnsupportedKumaVersion) as refused:
        kuma_version(text, "http://kuma.example")
    message = str(refused.value)
    assert f"Uptime Kuma at http://kuma.example announced {repr(text) if text else 'no version'}" in message
    assert "supported: 1.23.x, 2.x stable and the 2.0.0-dev.0 snapshot (tested: 1.23.16, 2.0.0-dev.0, 2.5.3)" in message
