"""Shared setup of the training unit tests: one torch thread, clean telemetry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from actors.kernel import telemetry


@pytest.fixture(autouse=True)
def _single_thread() -> Iterator[None]:
    # The machine is shared; small tensors gain nothing from more threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _telemetry() -> Iterator[None]:
    telemetry.reset()
    yield
    telemetry.reset()
