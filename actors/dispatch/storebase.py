"""The state store the dispatch actors share: a versioned root row per entity plus child rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch.sql import Memory, Row, fence, insert_roots
from actors.kernel.actor import Change, Versioned
from actors.kernel.db import one_of

S = TypeVar("S")

Assemble = Callable[[AsyncConnection, Mapping[str, Any]], Awaitable[dict[str, Versioned[S]]]]
"""Builds the states of the given root rows (keyed by entity) from them and their children."""


async def read_rows(
    conn: AsyncConnection, key: Column[Any], keys: Sequence[str], assemble: Assemble[S]
) -> dict[str, Versioned[S]]:
    """States as stored, by key (keys without a root row are left out)."""
    heads = await _heads(conn, key, keys)
    return await assemble(conn, heads) if heads else {}


async def _heads(conn: AsyncConnection, key: Column[Any], keys: Sequence[str]) -> dict[str, Any]:
    found = await conn.execute(select(key.table).where(one_of(conn, key, keys)))
    return {getattr(r, key.name): r for r in found}


class RowStore(ABC, Generic[S]):
    """A ``StateStore`` keeping each entity as a root row, fenced on its version, plus children.

    ``load`` reads only the root rows and reuses states remembered in ``Memory`` while a row
    still carries the version and stamp they were remembered with; ``save`` fences, writes the
    root rows, then hands each change with its state before the batch to ``write_children``.
    """

    def __init__(self, key: Column[Any], memory: int) -> None:
        self._key = key
        self._memory: Memory[S] = Memory(memory)

    @abstractmethod
    def blank(self, key: str) -> S:
        """The state of an entity that has no rows yet."""

    @abstractmethod
    def root(self, state: S, version: int, now: datetime) -> Row:
        """The root row of a state (with ``version`` and ``updated_at``)."""

    @abstractmethod
    async def assemble(
        self, conn: AsyncConnection, heads: Mapping[str, Any]
    ) -> dict[str, Versioned[S]]:
        """The states of these root rows, read with their children."""

    @abstractmethod
    async def write_children(
        self, conn: AsyncConnection, changes: Sequence[Change[S]], befores: Mapping[str, S]
    ) -> None:
        """Write what each change added or changed below its root row since ``befores``."""

    async def refresh(self, conn: AsyncConnection) -> None:
        """Read, in the load's transaction, whatever else ``decide`` needs (nothing here)."""

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[S]]:
        await self.refresh(conn)
        if not keys:
            return {}
        heads = await _heads(conn, self._key, list(dict.fromkeys(keys)))
        out: dict[str, Versioned[S]] = {}
        unknown: dict[str, Any] = {}
        for key, h in heads.items():
            known = self._memory.recall(conn, key, int(h.version), h.updated_at)
            if known is not None:
                out[key] = Versioned(known, int(h.version))
            else:
                unknown[key] = h
        if unknown:
            for key, stored in (await self.assemble(conn, unknown)).items():
                self._memory.remember(
                    conn, key, stored.version, unknown[key].updated_at, stored.state
                )
                out[key] = stored
        return out

    async def save(self, conn: AsyncConnection, actor: str, changes: Sequence[Change[S]]) -> None:
        if not changes:
            return
        table, name = self._key.table, self._key.name
        stamps = await fence(conn, table, self._key, actor, changes)
        # Before any root row is rewritten: a state read back from the rows must be the one
        # at the fenced version, root columns included.
        befores = await self._befores(conn, changes, stamps)
        now = datetime.now(UTC)
        await insert_roots(
            conn,
            table,
            self._key,
            actor,
            [self.root(c.state, c.version, now) for c in changes if c.previous == 0],
        )
        updates = [
            {f"b_{k}": v for k, v in self.root(c.state, c.version, now).items()}
            for c in changes
            if c.previous > 0
        ]
        if updates:
            columns = [c.name for c in table.columns if c.name != name]
            await conn.execute(
                update(table)
                .where(self._key == bindparam(f"b_{name}"))
                .values({column: bindparam(f"b_{column}") for column in columns}),
                updates,
            )
        await self.write_children(conn, changes, befores)
        for c in changes:
            # Tentative until the transaction commits; the stamp keeps a rolled-back write
            # from ever being taken for the stored row (see Memory).
            self._memory.remember(conn, c.key, c.version, now, c.state)

    async def _befores(
        self, conn: AsyncConnection, changes: Sequence[Change[S]], stamps: Mapping[str, datetime]
    ) -> dict[str, S]:
        out: dict[str, S] = {}
        missing: list[str] = []
        for c in changes:
            if c.previous == 0:
                out[c.key] = self.blank(c.key)
                continue
            known = (
                c.before
                if c.before is not None
                else self._memory.recall(conn, c.key, c.previous, stamps.get(c.key))
            )
            if known is None:
                missing.append(c.key)
            else:
                out[c.key] = known
        if missing:
            # Not remembered (another process wrote it, or the memory rolled over): the rows
            # as stored are the state at the fenced version.
            for key, stored in (await read_rows(conn, self._key, missing, self.assemble)).items():
                out[key] = stored.state
        return out


__all__ = ["Assemble", "RowStore", "read_rows"]
