"""Fixtures for the Pulumi mock tests (the mocks themselves are in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pulumi.harness import Deployer, RecordingMocks, mock_platform_outputs


@pytest.fixture
def mocks() -> RecordingMocks:
    return RecordingMocks(platform_outputs=mock_platform_outputs())


@pytest.fixture
def deploy(mocks: RecordingMocks, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployer]:
    yield Deployer(mocks, monkeypatch)


def pytest_configure(config: pytest.Config) -> None:
    # The mocks load every pulumi_aws resource module; its deprecated aliases warn on load.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")
