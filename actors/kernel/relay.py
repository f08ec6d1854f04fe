"""The relay: publishes outbox rows their writer left unsent, and prunes old published rows.

A live actor publishes its own rows right after commit and republishes its
leftovers before anything new, so the relay only touches rows older than
``relay_grace_seconds``: those of an actor that crashed and has not come back,
or that could not reach NATS for a while. It reads unsent rows, never a
cursor, so a row committed late is found on a later pass; per producer it
publishes in id order, which is each key's order. A row published twice (by
the relay and its writer) is dropped by JetStream's duplicate window, and
past the window by every consumer's ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel import outbox
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.db import transaction
from actors.kernel.errors import is_transient

log = logging.getLogger("troupe.relay")


class Relay:
    """Publishes stale unsent outbox rows until stopped."""

    def __init__(
        self,
        *,
        bus: Bus,
        engine: AsyncEngine,
        settings: Settings,
        read_engine: AsyncEngine | None = None,
        grace_seconds: float | None = None,
    ) -> None:
        self.bus = bus
        self.engine = engine
        self.read_engine = read_engine or engine
        self.settings = settings
        self.grace = timedelta(
            seconds=settings.relay_grace_seconds if grace_seconds is None else grace_seconds
        )
        self.published = 0
        self._last_prune = datetime.min.replace(tzinfo=UTC)

    async def pass_once(self, now: datetime | None = None) -> int:
        """One pass over stale unsent rows; returns how many were published."""
        now = now or datetime.now(UTC)
        total = 0
        while True:
            async with self.read_engine.connect() as conn:
                stored = await outbox.unsent(conn, older_than=now - self.grace, limit=1000)
            if not stored:
                return total
            done, error = await self._publish_in_order(stored)
            total += done
            if error is not None:
                raise error
            if len(stored) < 1000:
                return total

    async def _publish_in_order(
        self, stored: Sequence[outbox.Stored]
    ) -> tuple[int, Exception | None]:
        # Per producer, stop at the first failure so no later row of a key overtakes it.
        by_producer: dict[str, list[outbox.Stored]] = {}
        for s in stored:
            by_producer.setdefault(s.producer, []).append(s)
        count = 0
        first_error: Exception | None = None
        for rows in by_producer.values():
            published, error = await self.bus.publish_rows([r.row for r in rows])
            if published:
                async with transaction(self.engine) as conn:
                    await outbox.mark_published(conn, published, datetime.now(UTC))
            count += len(published)
            first_error = first_error or error
        self.published += count
        if count:
            log.info("relay published %d stale outbox rows", count)
        return count, first_error

    async def prune(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        async with transaction(self.engine) as conn:
            removed = await outbox.prune(
                conn, now, timedelta(seconds=self.settings.outbox_retention_seconds)
            )
        self._last_prune = now
        return removed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.pass_once()
                if datetime.now(UTC) - self._last_prune > timedelta(hours=1):
                    await self.prune()
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("relay pass failed")
                else:
                    log.warning("relay pass deferred: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.relay_interval_seconds):
                    await stop.wait()
