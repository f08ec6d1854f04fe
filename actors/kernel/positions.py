"""Consumer positions and the single-writer lease that keeps per-key order.

Each consumer (an actor, or one partition of it) has one row per stream it
reads: the last stream sequence it handled, committed in the same transaction
as the effects, and an ``epoch``. A starting instance takes a lock (a
PostgreSQL advisory lock, or a file lock beside the SQLite database), bumps
the epoch and repositions its JetStream consumer just after ``last_seq``; every
batch commit is fenced on the epoch, so an instance that lost the lock can
never commit again.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actors.kernel.tables import consumer_position


class Fenced(Exception):
    """Raised when a newer instance of the same consumer took over; this one must stop."""

    def __init__(self, consumer: str, epoch: int) -> None:
        super().__init__(
            f"consumer {consumer!r} was taken over by a newer instance (this one held epoch "
            f"{epoch}); it stops without committing"
        )
        self.consumer = consumer
        self.epoch = epoch


def lock_id(consumer: str) -> int:
    """A stable signed 64-bit advisory-lock id for a consumer name."""
    return int.from_bytes(hashlib.sha256(consumer.encode()).digest()[:8], "big", signed=True)


class Lease:
    """Exclusive right to run one consumer, held until ``release`` or process death."""

    def __init__(self, engine: AsyncEngine, consumer: str, *, poll_seconds: float = 0.5) -> None:
        self.engine = engine
        self.consumer = consumer
        self.poll_seconds = poll_seconds
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None

    async def acquire(self) -> None:
        """Wait until no other live instance holds the consumer."""
        if self.engine.dialect.name == "postgresql":
            conn = await self.engine.connect()
            try:
                while True:
                    got = await conn.scalar(
                        text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id(self.consumer)}
                    )
                    await conn.commit()
                    if got:
                        self._conn = conn
                        return
                    await asyncio.sleep(self.poll_seconds)
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.invalidate()
                await conn.close()
                raise
        path = self._lock_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await asyncio.sleep(self.poll_seconds)
                    continue
                self._fd = fd
                return
        except BaseException:
            os.close(fd)
            raise

    async def alive(self) -> bool:
        """False once the lock connection died (the lock is then gone too)."""
        if self._conn is None:
            return self._fd is not None
        try:
            await self._conn.scalar(text("SELECT 1"))
            await self._conn.commit()
        except Exception:
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            # Closing the socket ends the session, which drops the lock even if the unlock
            # failed; the connection never goes back to the pool.
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _lock_path(self) -> Path:
        database = make_url(str(self.engine.url)).database or "memory"
        return Path(database).parent / "locks" / f"{self.consumer}.lock"

    async def __aenter__(self) -> Lease:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


async def take_over(
    conn: AsyncConnection, consumer: str, streams: Sequence[str], now: datetime
) -> tuple[int, dict[str, int]]:
    """Bump the consumer's epoch; return it and the last handled sequence per stream."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    await conn.execute(
        insert(consumer_position)
        .values(
            [
                {"consumer": consumer, "stream": s, "last_seq": 0, "epoch": 0, "updated_at": now}
                for s in streams
            ]
        )
        .on_conflict_do_nothing()
    )
    rows = (
        await conn.execute(
            select(
                consumer_position.c.stream, consumer_position.c.last_seq, consumer_position.c.epoch
            ).where(consumer_position.c.consumer == consumer)
        )
    ).all()
    epoch = max(r.epoch for r in rows) + 1
    await conn.execute(
        update(consumer_position)
        .where(consumer_position.c.consumer == consumer)
        .values(epoch=epoch, updated_at=now)
    )
    return epoch, {r.stream: int(r.last_seq) for r in rows}


async def advance(
    conn: AsyncConnection, consumer: str, stream: str, epoch: int, last_seq: int, now: datetime
) -> None:
    """Record the batch's last sequence, fenced on ``epoch``; raise ``Fenced`` if superseded."""
    result = await conn.execute(
        update(consumer_position)
        .where(
            consumer_position.c.consumer == consumer,
            consumer_position.c.stream == stream,
            consumer_position.c.epoch == epoch,
        )
        .values(last_seq=last_seq, updated_at=now)
    )
    if result.rowcount != 1:
        raise Fenced(consumer, epoch)


async def read(conn: AsyncConnection, consumer: str) -> dict[str, int]:
    """Last handled sequence per stream for a consumer."""
    rows = await conn.execute(
        select(consumer_position.c.stream, consumer_position.c.last_seq).where(
            consumer_position.c.consumer == consumer
        )
    )
    return {r.stream: int(r.last_seq) for r in rows}
