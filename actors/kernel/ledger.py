"""The consumer ledger: which messages a consumer applied, claimed in the effect's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.tables import consumer_ledger


class Entry(msgspec.Struct, frozen=True):
    """One message to claim: its identity and where it sits in its stream."""

    message_id: str
    stream_seq: int


_PG_CLAIM = text(
    """
    INSERT INTO consumer_ledger (consumer, message_id, stream, stream_seq, applied_at)
    SELECT :consumer, t.message_id, :stream, t.stream_seq, :now
    FROM unnest(CAST(:ids AS text[]), CAST(:seqs AS bigint[])) AS t(message_id, stream_seq)
    ON CONFLICT DO NOTHING
    RETURNING message_id
    """
)


async def claim(
    conn: AsyncConnection,
    consumer: str,
    stream: str,
    entries: Sequence[Entry],
    now: datetime,
) -> set[str]:
    """Insert every entry; return the ids that were new (the rest were applied before).

    Runs inside the batch's transaction, so a claim and its effects commit or
    roll back together.
    """
    if not entries:
        return set()
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _PG_CLAIM,
            {
                "consumer": consumer,
                "stream": stream,
                "now": now,
                "ids": [e.message_id for e in entries],
                "seqs": [e.stream_seq for e in entries],
            },
        )
        return {row[0] for row in result}
    rows = [
        {
            "consumer": consumer,
            "message_id": e.message_id,
            "stream": stream,
            "stream_seq": e.stream_seq,
            "applied_at": now,
        }
        for e in entries
    ]
    insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    stmt = insert(consumer_ledger).on_conflict_do_nothing().returning(consumer_ledger.c.message_id)
    result = await conn.execute(stmt, rows)
    return {row[0] for row in result}


async def applied(conn: AsyncConnection, consumer: str, message_ids: Sequence[str]) -> set[str]:
    """Which of ``message_ids`` the consumer has applied."""
    if not message_ids:
        return set()
    result = await conn.execute(
        select(consumer_ledger.c.message_id).where(
            consumer_ledger.c.consumer == consumer,
            consumer_ledger.c.message_id.in_(list(message_ids)),
        )
    )
    return {row[0] for row in result}


async def count(conn: AsyncConnection, consumer: str) -> int:
    """How many messages the consumer has applied."""
    result = await conn.execute(
        text("SELECT count(*) FROM consumer_ledger WHERE consumer = :c"), {"c": consumer}
    )
    return int(result.scalar_one())
