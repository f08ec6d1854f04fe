"""The transactional outbox: rows written with the state change, published after commit.

No reader keeps a cursor over ``id``: every reader selects rows whose
``published_at`` is null, so a row whose transaction commits after a later id
was already published is still found on the next pass (see ADR 0002).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.db import values_update
from actors.kernel.tables import outbox


class Row(msgspec.Struct, frozen=True):
    """One message to publish: subject, body and headers, identified by ``event_id``."""

    event_id: str
    subject: str
    entity_key: str
    payload: bytes
    headers: dict[str, str]
    type: str = ""
    """The message tag, known when the row is made (not stored: the payload carries it)."""


class Stored(msgspec.Struct, frozen=True):
    """An unsent row read back from the table."""

    id: int
    producer: str
    row: Row
    created_at: datetime


class Published(msgspec.Struct, frozen=True):
    """A row JetStream acknowledged, with the stream sequence it got."""

    event_id: str
    stream: str
    stream_seq: int


_headers_encoder = msgspec.json.Encoder()
_headers_decoder = msgspec.json.Decoder(dict[str, str])

_PG_INSERT = text(
    """
    INSERT INTO outbox (event_id, producer, subject, entity_key, payload, headers, created_at)
    SELECT t.event_id, :producer, t.subject, t.entity_key, t.payload, t.headers, :now
    FROM unnest(
        CAST(:event_ids AS text[]), CAST(:subjects AS text[]), CAST(:keys AS text[]),
        CAST(:payloads AS bytea[]), CAST(:headers AS text[])
    ) WITH ORDINALITY AS t(event_id, subject, entity_key, payload, headers, n)
    ORDER BY t.n
    """
)

_SQLITE_MARK = """
    {values}
    UPDATE outbox SET published_at = :now, stream = v.stream, stream_seq = v.seq
    FROM v WHERE outbox.event_id = v.event_id AND outbox.published_at IS NULL
"""

_PG_MARK = text(
    """
    UPDATE outbox AS o SET published_at = :now, stream = v.stream, stream_seq = v.seq
    FROM unnest(
        CAST(:event_ids AS text[]), CAST(:streams AS text[]), CAST(:seqs AS bigint[])
    ) AS v(event_id, stream, seq)
    WHERE o.event_id = v.event_id AND o.published_at IS NULL
    """
)


async def add(conn: AsyncConnection, producer: str, rows: Sequence[Row], now: datetime) -> None:
    """Insert rows in order; ids grow in the order given, which is publish order."""
    if not rows:
        return
    headers = [_headers_encoder.encode(r.headers).decode() for r in rows]
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _PG_INSERT,
            {
                "producer": producer,
                "now": now,
                "event_ids": [r.event_id for r in rows],
                "subjects": [r.subject for r in rows],
                "keys": [r.entity_key for r in rows],
                "payloads": [r.payload for r in rows],
                "headers": headers,
            },
        )
        return
    await conn.execute(
        insert(outbox),
        [
            {
                "event_id": r.event_id,
                "producer": producer,
                "subject": r.subject,
                "entity_key": r.entity_key,
                "payload": r.payload,
                "headers": h,
                "created_at": now,
            }
            for r, h in zip(rows, headers, strict=True)
        ],
    )


async def mark_published(
    conn: AsyncConnection, published: Sequence[Published], now: datetime
) -> None:
    """Record that JetStream stored these rows, with their stream sequences."""
    if not published:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _PG_MARK,
            {
                "now": now,
                "event_ids": [p.event_id for p in published],
                "streams": [p.stream for p in published],
                "seqs": [p.stream_seq for p in published],
            },
        )
        return
    for stmt, params in values_update(
        _SQLITE_MARK,
        ("event_id", "stream", "seq"),
        [(p.event_id, p.stream, p.stream_seq) for p in published],
    ):
        await conn.execute(stmt, {**params, "now": now})


async def unsent(
    conn: AsyncConnection,
    *,
    producer: str | None = None,
    older_than: datetime | None = None,
    limit: int = 1000,
) -> list[Stored]:
    """Unsent rows in publish order (per producer, by id)."""
    query = select(outbox).where(outbox.c.published_at.is_(None))
    if producer is not None:
        query = query.where(outbox.c.producer == producer)
    if older_than is not None:
        query = query.where(outbox.c.created_at < older_than)
    query = query.order_by(outbox.c.producer, outbox.c.id).limit(limit)
    result = await conn.execute(query)
    return [
        Stored(
            id=r.id,
            producer=r.producer,
            row=Row(
                event_id=r.event_id,
                subject=r.subject,
                entity_key=r.entity_key,
                payload=bytes(r.payload),
                headers=_headers_decoder.decode(r.headers),
            ),
            created_at=r.created_at,
        )
        for r in result
    ]


class Lag(msgspec.Struct, frozen=True):
    """How far the outbox is behind: unsent rows and the age of the oldest."""

    unsent: int
    oldest: datetime | None


async def lag(conn: AsyncConnection, producer: str | None = None) -> Lag:
    """Unsent row count and oldest creation time (for metrics and /status)."""
    query = select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
    if producer is not None:
        query = query.where(outbox.c.producer == producer)
    count, oldest = (await conn.execute(query)).one()
    return Lag(unsent=int(count), oldest=oldest)


async def highest_published_seq(conn: AsyncConnection, stream: str) -> int:
    """The highest sequence JetStream acknowledged to this outbox for ``stream`` (0 if none)."""
    result = await conn.execute(
        select(func.max(outbox.c.stream_seq)).where(outbox.c.stream == stream)
    )
    return int(result.scalar_one() or 0)


async def prune(conn: AsyncConnection, now: datetime, retention: timedelta) -> int:
    """Delete rows published longer ago than ``retention``; returns how many.

    The newest row of each stream stays, so /status keeps its high-water mark.
    """
    newest = select(func.max(outbox.c.id)).where(outbox.c.stream.is_not(None))
    newest = newest.group_by(outbox.c.stream)
    result = await conn.execute(
        delete(outbox).where(
            outbox.c.published_at.is_not(None),
            outbox.c.published_at < now - retention,
            outbox.c.id.not_in(newest),
        )
    )
    return int(result.rowcount or 0)
