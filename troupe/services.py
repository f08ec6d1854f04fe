"""Finding the services a command talks to: configured URLs, or the running embedded ones."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from actors.kernel.bus import Bus
from actors.kernel.config import Settings


class NotRunning(RuntimeError):
    """Raised when no NATS URL is configured and no ``troupe up`` is running here."""


def url_file(settings: Settings) -> Path:
    return settings.home_path / "nats.url"


def nats_url(settings: Settings) -> str:
    """TROUPE_NATS_URL, else the URL the running ``troupe up`` wrote under its home."""
    if settings.nats_url:
        return settings.nats_url
    path = url_file(settings)
    if path.is_file():
        return path.read_text().strip()
    raise NotRunning(
        f"no NATS to talk to: set TROUPE_NATS_URL, or start `troupe up` here (it writes {path})"
    )


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url(settings), settings, name="troupe-cli")
    try:
        yield bus
    finally:
        await bus.close()
