"""Every Battleship unit test leaves the process's telemetry as it found it: unconfigured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.kernel import telemetry


@pytest.fixture(autouse=True)
def _fresh_telemetry() -> Iterator[None]:
    yield
    telemetry.reset()
