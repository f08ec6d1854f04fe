"""The relay never skips a late-committing row, republishes a dead producer's rows in order,
and /status notices a stream that lost acknowledged messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import text

from actors.kernel import history, outbox, status
from actors.kernel.bus import EVENTS, Bus
from actors.kernel.config import Settings
from actors.kernel.db import create_engine
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.relay import Relay

pytestmark = pytest.mark.asyncio


def _row(n: int, key: str = "r1") -> outbox.Row:
    return outbox.Row(
        event_id=f"ev-{n}",
        subject=f"evt.acct.{key}.deposited",
        entity_key=key,
        payload=msgspec.json.encode({"type": "acct.deposited.v1", "amount": n, "n": n}),
        headers={"Nats-Msg-Id": f"ev-{n}"},
    )


async def _bus(nats_server: EmbeddedNats, database_url: str) -> Bus:
    settings = Settings(nats_url=nats_server.url, database_url=database_url)
    bus = await Bus.connect(nats_server.url, settings)
    await bus.ensure_streams()
    return bus


async def test_a_row_committed_after_a_later_id_was_published_is_still_published(
    nats_server: EmbeddedNats, postgres_url: str
) -> None:
    bus = await _bus(nats_server, postgres_url)
    engine = create_engine(postgres_url)
    relay = Relay(bus=bus, engine=engine, settings=bus.settings, grace_seconds=0)
    try:
        slow = await engine.connect()
        fast = await engine.connect()
        await slow.begin()
        await outbox.add(slow, "writer-a", [_row(1)], datetime.now(UTC))  # gets the lower id
        await fast.begin()
        await outbox.add(fast, "writer-b", [_row(2, "r2")], datetime.now(UTC))
        await fast.commit()  # the higher id commits first

        assert await relay.pass_once() == 1  # only ev-2 is visible yet
        await slow.commit()
        assert await relay.pass_once() == 1  # ev-1 is found: no cursor skipped past it
        await slow.close()
        await fast.close()

        ids = [r.id async for r in history.read(bus.js, EVENTS, "evt.>")]
        assert ids == ["ev-2", "ev-1"]
        async with engine.connect() as conn:
            assert (await outbox.lag(conn)).unsent == 0
            ids_by_row = (await conn.execute(text("SELECT event_id FROM outbox ORDER BY id"))).all()
        assert [r[0] for r in ids_by_row] == ["ev-1", "ev-2"]
    finally:
        await bus.close()
        await engine.dispose()


async def test_relay_publishes_a_dead_producers_rows_in_order_and_only_once(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    bus = await _bus(nats_server, database_url)
    engine = create_engine(database_url)
    relay = Relay(bus=bus, engine=engine, settings=bus.settings)  # default grace: 10 s
    try:
        async with engine.begin() as conn:
            await outbox.add(
                conn,
                "ghost",
                [_row(n) for n in range(1, 6)],
                datetime.now(UTC) - timedelta(hours=1),
            )
            await outbox.add(conn, "alive", [_row(99, "r9")], datetime.now(UTC))
        assert await relay.pass_once() == 5  # the fresh row stays with its live writer
        assert await relay.pass_once() == 0
        # A republish (a writer that comes back) is dropped by JetStream's duplicate window.
        published, error = await bus.publish_rows([_row(3)])
        assert error is None
        assert published[0].stream_seq == 3
        amounts = [
            msgspec.json.decode(r.data)["amount"]
            async for r in history.read(bus.js, EVENTS, "evt.acct.r1.>")
        ]
        assert amounts == [1, 2, 3, 4, 5]
    finally:
        await bus.close()
        await engine.dispose()


async def test_prune_keeps_each_streams_high_water_mark(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    bus = await _bus(nats_server, database_url)
    engine = create_engine(database_url)
    relay = Relay(bus=bus, engine=engine, settings=bus.settings, grace_seconds=0)
    try:
        long_ago = datetime.now(UTC) - timedelta(days=30)
        async with engine.begin() as conn:
            await outbox.add(conn, "w", [_row(n) for n in range(1, 4)], long_ago)
        await relay.pass_once()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE outbox SET published_at = :t"), {"t": long_ago})
        removed = await relay.prune()
        assert removed == 2
        async with engine.connect() as conn:
            assert await outbox.highest_published_seq(conn, EVENTS) == 3
    finally:
        await bus.close()
        await engine.dispose()


async def test_status_fails_when_a_stream_is_behind_what_the_outbox_recorded(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    bus = await _bus(nats_server, database_url)
    engine = create_engine(database_url)
    try:
        healthy = await status.gather(bus, engine)
        assert healthy.ok, healthy.checks
        async with engine.begin() as conn:
            await outbox.add(conn, "w", [_row(1)], datetime.now(UTC))
            await outbox.mark_published(
                conn, [outbox.Published("ev-1", EVENTS, 41)], datetime.now(UTC)
            )
        lost = await status.gather(bus, engine)
        assert not lost.ok
        events = next(c for c in lost.checks if c.name == "stream:EVENTS")
        assert not events.ok
        assert "behind 41" in events.detail
        assert events.data == {"last_seq": 0, "outbox_seq": 41}
    finally:
        await bus.close()
        await engine.dispose()


async def test_status_reports_an_unreachable_nats(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    bus = await _bus(nats_server, database_url)
    engine = create_engine(database_url)
    try:
        nats_server.kill()
        async with asyncio.timeout(10):
            while True:
                if not bus.nc.is_connected:
                    break
                await asyncio.sleep(0.05)
        result = await status.gather(bus, engine)
        assert not result.ok
        assert next(c for c in result.checks if c.name == "nats").detail == "not connected"
    finally:
        nats_server.start()
        await bus.close()
        await engine.dispose()
