"""What the dispatch stores share: UTC timestamps, JSON columns, version fencing, state memory."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import Column, DateTime, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator

from actors.kernel.actor import Change, StaleState
from actors.kernel.db import one_of

S = TypeVar("S")
T = TypeVar("T")
Row = dict[str, Any]

_ENCODER = msgspec.json.Encoder()


class UtcTimestamp(TypeDecorator[datetime]):
    """A timezone-aware UTC instant on both backends.

    PostgreSQL keeps the zone (``timestamptz``); SQLite stores text without one, so values
    are converted to UTC on the way in and marked UTC on the way out: a state read back
    equals the state folded from events (which keeps instants in UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_json(value: Any) -> str:
    """msgspec JSON text for a Text column (structs keep their tags, bytes become base64)."""
    return _ENCODER.encode(value).decode()


def from_json(text: str | None, kind: type[T]) -> T:
    """The typed value of a JSON column written by :func:`to_json`."""
    if text is None:
        raise ValueError(f"expected JSON for a {kind}, found NULL")
    return msgspec.json.decode(text, type=kind)


def insert_for(conn: AsyncConnection) -> Any:
    """The dialect's INSERT (both have ``on_conflict_do_nothing``)."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def database_of(conn: AsyncConnection) -> str:
    """Which database a connection reaches (its URL without the password)."""
    return conn.engine.url.render_as_string(hide_password=True)


class Memory(Generic[S]):
    """States a store loaded or saved, so loads skip unchanged rows and saves write only what
    changed.

    An entry is keyed by (database, key, version) and stamped with the root row's
    ``updated_at`` as written: it is used only while the stored row still carries that same
    version *and* stamp, so a state remembered from a save that was rolled back (and whose
    version another writer then committed differently) is never mistaken for the stored one.
    """

    def __init__(self, size: int = 4096) -> None:
        self._states: OrderedDict[tuple[str, str, int], tuple[datetime, S]] = OrderedDict()
        self._size = size

    def remember(
        self, conn: AsyncConnection, key: str, version: int, stamp: datetime, state: S
    ) -> None:
        slot = (database_of(conn), key, version)
        self._states[slot] = (stamp, state)
        self._states.move_to_end(slot)
        while len(self._states) > self._size:
            self._states.popitem(last=False)

    def recall(
        self, conn: AsyncConnection, key: str, version: int, stamp: datetime | None
    ) -> S | None:
        found = self._states.get((database_of(conn), key, version))
        if found is None or stamp is None or found[0] != stamp:
            return None
        return found[1]


async def fence(
    conn: AsyncConnection,
    table: Table,
    key: Column[Any],
    actor: str,
    changes: Sequence[Change[Any]],
) -> dict[str, datetime]:
    """Raise ``StaleState`` unless every entity is still at the version it was loaded at;
    return the stored ``updated_at`` of each existing one (the stamp ``Memory`` checks).

    Existing rows are locked (``FOR UPDATE`` on PostgreSQL; SQLite writers are serialised by
    ``BEGIN IMMEDIATE``), so the updates that follow cannot race another writer. New entities
    are fenced by their insert (``ON CONFLICT DO NOTHING``), see :func:`insert_roots`.
    """
    existing = [c.key for c in changes if c.previous > 0]
    if not existing:
        return {}
    query = select(key, table.c.version, table.c.updated_at).where(one_of(conn, key, existing))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    stored = {r[0]: (int(r[1]), r[2]) for r in await conn.execute(query)}
    stale = [
        c.key
        for c in changes
        if c.previous > 0 and (c.key not in stored or stored[c.key][0] != c.previous)
    ]
    if stale:
        raise StaleState(actor, stale)
    return {k: stamp for k, (_, stamp) in stored.items()}


async def insert_roots(
    conn: AsyncConnection, table: Table, key: Column[Any], actor: str, rows: Sequence[Row]
) -> None:
    """Insert new entities' root rows; one that already exists was created underneath us."""
    if not rows:
        return
    done = await conn.execute(
        insert_for(conn)(table).on_conflict_do_nothing().returning(key), list(rows)
    )
    written = {r[0] for r in done}
    stale = [r[key.name] for r in rows if r[key.name] not in written]
    if stale:
        raise StaleState(actor, stale)


def appended(before: Sequence[T], after: Sequence[T]) -> Sequence[T]:
    """Items added at the end of an append-only collection."""
    return after[len(before) :]


def changed(
    before: Sequence[T], after: Sequence[T], ident: Callable[[T], str]
) -> tuple[list[tuple[int, T]], list[tuple[int, T]]]:
    """(new items with their position, existing items whose value changed with theirs)."""
    known: Mapping[str, T] = {ident(item): item for item in before}
    new: list[tuple[int, T]] = []
    moved: list[tuple[int, T]] = []
    for index, item in enumerate(after):
        old = known.get(ident(item))
        if old is None:
            new.append((index, item))
        elif old != item:
            moved.append((index, item))
    return new, moved


__all__ = [
    "Memory",
    "Row",
    "UtcTimestamp",
    "appended",
    "changed",
    "database_of",
    "fence",
    "from_json",
    "insert_for",
    "insert_roots",
    "to_json",
]
