"""Trained agents as players for matches: loaded once from the registry, then served from memory.

``load_player(engine_or_conn, agent_id)`` reads the ``agents`` row, checks the model file
against its recorded sha256 and builds a ``TrainedPlayer``; the result is cached, so
calling it again costs a dictionary lookup. ``trained_agents(services)`` is the hook the
match actor enters: it loads every registered agent, loads new ones as their
``training.agent_registered`` events arrive (and on a slow poll, in case one is missed),
and yields a lookup that answers from memory inside ``decide``.

torch is imported only when a model is loaded, so processes without trained agents (or
without the ``training`` extra) never pay for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actors.battleship.players import Player
from actors.kernel.actor import Services
from actors.training.errors import ModelMismatch, TrainingError
from actors.training.tables import agents
from schemas import subjects

if TYPE_CHECKING:
    from actors.training.policy import TrainedPlayer

log = logging.getLogger("troupe.training.agents")

REFRESH_SECONDS = 30.0
"""How often the hook looks for agents registered while it missed the events."""

AgentLookup = Callable[[str], Player | None]

_lock = threading.Lock()
_threads_set = False
_players: dict[str, tuple[str, Player]] = {}
"""agent id -> (model sha256, player)."""


def cached_player(agent_id: str) -> Player | None:
    """The player of a trained agent already loaded in this process, else None (no I/O)."""
    entry = _players.get(agent_id)
    return entry[1] if entry is not None else None


def forget(agent_id: str | None = None) -> None:
    """Drop one cached agent (or all): the next ``load_player`` reads the registry again."""
    with _lock:
        if agent_id is None:
            _players.clear()
        else:
            _players.pop(agent_id, None)


def _load_file(agent_id: str, path: Path, sha256: str) -> TrainedPlayer:
    from actors.training.checkpoints import sha256_of
    from actors.training.policy import TrainedPlayer

    if not path.is_file():
        raise ModelNotFound(agent_id, path)
    actual = sha256_of(path)
    if actual != sha256:
        raise ModelMismatch(path, sha256, actual)
    return TrainedPlayer.from_file(agent_id, path)


def _serving_threads() -> None:
    """Run inference on ``TROUPE_TORCH_THREADS`` threads (1 by default) in serving processes.

    A match move is one board: a forward pass takes a fraction of a millisecond on one
    thread, while handing it to a pool costs more than it saves (and much more when the
    cores are busy), so processes that only play use a single thread. The setting is per
    OS thread, so this runs on the thread that will call ``select`` (the event loop's).
    """
    import torch

    global _threads_set
    if _threads_set:
        return
    configured = os.environ.get("TROUPE_TORCH_THREADS", "").strip()
    torch.set_num_threads(int(configured) if configured else 1)
    _threads_set = True


async def load_player(
    engine_or_conn: AsyncEngine | AsyncConnection, agent_id: str
) -> Player | None:
    """The registered agent ``agent_id`` as a player, or None if no such agent is registered.

    Cached per process: only the first call per agent reads the database and the model file.
    Raises ``TrainingError`` when the agent is registered but its model cannot be used
    (missing or replaced file).
    """
    cached = cached_player(agent_id)
    if cached is not None:
        return cached
    query = select(agents.c.model_path, agents.c.model_sha256).where(agents.c.agent_id == agent_id)
    if isinstance(engine_or_conn, AsyncEngine):
        async with engine_or_conn.connect() as conn:
            row = (await conn.execute(query)).first()
    else:
        row = (await engine_or_conn.execute(query)).first()
    if row is None:
        return None
    await asyncio.to_thread(importlib.import_module, "torch")  # seconds, once: off the loop
    _serving_threads()
    player = await asyncio.to_thread(_load_file, agent_id, Path(row.model_path), row.model_sha256)
    with _lock:
        _players.setdefault(agent_id, (row.model_sha256, player))
        return _players[agent_id][1]


class ModelNotFound(TrainingError):
    """Raised when a registered agent's model file is not on this machine."""

    def __init__(self, agent_id: str, path: Path) -> None:
        super().__init__(
            f"agent {agent_id} is registered with model {path}, which does not exist here; "
            "mount the training directory where matches are played"
        )
        self.agent_id = agent_id
        self.path = path


async def preload(engine: AsyncEngine) -> list[str]:
    """Load every registered agent not loaded yet; return the ids loaded now.

    An agent whose model cannot be used is logged and skipped (matches then refuse it as
    unavailable), so one bad file never keeps the others out.
    """
    async with engine.connect() as conn:
        ids = [r.agent_id for r in await conn.execute(select(agents.c.agent_id))]
    loaded = []
    for agent_id in ids:
        if cached_player(agent_id) is not None:
            continue
        try:
            if await load_player(engine, agent_id) is not None:
                loaded.append(agent_id)
        except Exception as exc:
            log.error("trained agent %s cannot be loaded: %s", agent_id, exc)
    return loaded


@contextlib.asynccontextmanager
async def trained_agents(services: Services) -> AsyncIterator[AgentLookup]:
    """The match actor's hook: every registered agent, kept current while the context is open."""
    engine = services.read_engine
    await preload(engine)
    wake = asyncio.Event()

    async def on_registered(msg: object) -> None:
        wake.set()

    async def keep_current() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), REFRESH_SECONDS)
            wake.clear()
            try:
                for agent_id in await preload(engine):
                    log.info("trained agent %s is available to matches", agent_id)
            except Exception as exc:
                log.warning("refreshing trained agents failed: %s", exc)

    sub = await services.bus.nc.subscribe(
        subjects.event_filter("training", "agent_registered"), cb=on_registered
    )
    task = asyncio.create_task(keep_current())
    try:
        yield cached_player
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


__all__ = [
    "AgentLookup",
    "ModelNotFound",
    "cached_player",
    "forget",
    "load_player",
    "preload",
    "trained_agents",
]
