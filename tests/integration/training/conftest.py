"""Fixtures of the training integration tests: a host running the training actor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.training.actor import ACTOR

StartHost = Callable[[], Coroutine[Any, Any, Host]]


@pytest.fixture
def training_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the workers write their runs."""
    path = tmp_path / "training"
    monkeypatch.setenv("TROUPE_TRAINING_DIR", str(path))
    # Workers are tiny; one thread each keeps them from fighting the test for the cores.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return path


@pytest.fixture
def settings(nats_server: EmbeddedNats, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        home=str(tmp_path / "home"),
        lease_poll_seconds=0.1,
    )


@pytest.fixture
async def start_host(
    settings: Settings, nats_server: EmbeddedNats, training_dir: Path
) -> AsyncIterator[StartHost]:
    """Starts hosts of the training actor; every one still running is stopped at the end."""
    hosts: list[Host] = []

    async def start() -> Host:
        host = Host(settings, [ACTOR], nats_url=nats_server.url)
        await host.start()
        await host.wait_ready()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        await host.stop()
