"""A state store keeping each entity as one JSON row, for actors with no tables of their own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Generic, TypeVar

import msgspec
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Change, StaleState, Versioned
from actors.kernel.db import one_of, values_update
from actors.kernel.tables import actor_state

S = TypeVar("S")

_PG_UPDATE = text(
    """
    UPDATE actor_state AS a
    SET state = t.state, version = t.version, updated_at = :now
    FROM unnest(
        CAST(:keys AS text[]), CAST(:states AS text[]),
        CAST(:versions AS bigint[]), CAST(:previous AS bigint[])
    ) AS t(key, state, version, previous)
    WHERE a.actor = :actor AND a.key = t.key AND a.version = t.previous
    RETURNING a.key
    """
)

_UPDATE_COLUMNS = ("key", "state", "version", "previous")
_SQLITE_UPDATE = """
    {values}
    UPDATE actor_state SET state = v.state, version = v.version, updated_at = :now
    FROM v
    WHERE actor_state.actor = :actor AND actor_state.key = v.key
      AND actor_state.version = v.previous
    RETURNING actor_state.key
"""

_PG_INSERT = text(
    """
    INSERT INTO actor_state (actor, key, version, state, updated_at)
    SELECT :actor, t.key, t.version, t.state, :now
    FROM unnest(CAST(:keys AS text[]), CAST(:states AS text[]), CAST(:versions AS bigint[]))
        AS t(key, state, version)
    ON CONFLICT DO NOTHING
    RETURNING key
    """
)


class JsonStateStore(Generic[S]):
    """Stores ``S`` as msgspec JSON in ``actor_state``, with a version per entity."""

    def __init__(self, state_type: type[S]) -> None:
        self.state_type = state_type
        self._decoder = msgspec.json.Decoder(state_type)
        self._encoder = msgspec.json.Encoder()

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[S]]:
        if not keys:
            return {}
        rows = await conn.execute(
            select(actor_state.c.key, actor_state.c.version, actor_state.c.state).where(
                actor_state.c.actor == actor, one_of(conn, actor_state.c.key, keys)
            )
        )
        return {r.key: Versioned(self._decoder.decode(r.state), int(r.version)) for r in rows}

    async def save(self, conn: AsyncConnection, actor: str, changes: Sequence[Change[S]]) -> None:
        if not changes:
            return
        now = datetime.now(UTC)
        updates = [c for c in changes if c.previous > 0]
        inserts = [c for c in changes if c.previous == 0]
        if conn.dialect.name == "postgresql":
            await self._save_postgres(conn, actor, updates, inserts, now)
        else:
            await self._save_generic(conn, actor, updates, inserts, now)

    async def _save_postgres(
        self,
        conn: AsyncConnection,
        actor: str,
        updates: Sequence[Change[S]],
        inserts: Sequence[Change[S]],
        now: datetime,
    ) -> None:
        stale: list[str] = []
        if updates:
            done = await conn.execute(
                _PG_UPDATE,
                {
                    "actor": actor,
                    "now": now,
                    "keys": [c.key for c in updates],
                    "states": [self._encoder.encode(c.state).decode() for c in updates],
                    "versions": [c.version for c in updates],
                    "previous": [c.previous for c in updates],
                },
            )
            written = {r[0] for r in done}
            stale += [c.key for c in updates if c.key not in written]
        if inserts:
            done = await conn.execute(
                _PG_INSERT,
                {
                    "actor": actor,
                    "now": now,
                    "keys": [c.key for c in inserts],
                    "states": [self._encoder.encode(c.state).decode() for c in inserts],
                    "versions": [c.version for c in inserts],
                },
            )
            written = {r[0] for r in done}
            stale += [c.key for c in inserts if c.key not in written]
        if stale:
            raise StaleState(actor, stale)

    async def _save_generic(
        self,
        conn: AsyncConnection,
        actor: str,
        updates: Sequence[Change[S]],
        inserts: Sequence[Change[S]],
        now: datetime,
    ) -> None:
        stale: list[str] = []
        if updates:
            written: set[str] = set()
            rows = [
                (c.key, self._encoder.encode(c.state).decode(), c.version, c.previous)
                for c in updates
            ]
            for stmt, params in values_update(_SQLITE_UPDATE, _UPDATE_COLUMNS, rows):
                result = await conn.execute(stmt, {**params, "actor": actor, "now": now})
                written |= {r[0] for r in result}
            stale += [c.key for c in updates if c.key not in written]
        if inserts:
            dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
            done = await conn.execute(
                dialect_insert(actor_state).on_conflict_do_nothing().returning(actor_state.c.key),
                [
                    {
                        "actor": actor,
                        "key": c.key,
                        "version": c.version,
                        "state": self._encoder.encode(c.state).decode(),
                        "updated_at": now,
                    }
                    for c in inserts
                ],
            )
            written = {r[0] for r in done}
            stale += [c.key for c in inserts if c.key not in written]
        if stale:
            raise StaleState(actor, stale)

    async def delete_all(self, conn: AsyncConnection, actor: str) -> None:
        """Remove every entity of ``actor`` (used when an actor's state is rebuilt)."""
        await conn.execute(actor_state.delete().where(actor_state.c.actor == actor))
