"""A batch whose commit succeeded but whose acknowledgement was lost still publishes in order.

The database link can drop between COMMIT and its reply. The runtime then sees
an error, retries, and finds every message already in the ledger, so the retry
queues nothing: the committed events are in the outbox only. They must leave
before any later event of the same key, without waiting for a restart or the
relay (the host runs no relay, and its grace is ten seconds anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import nats
import pytest

from actors.kernel import history, outbox, runtime
from actors.kernel.bus import EVENTS
from actors.kernel.config import Settings
from actors.kernel.db import transaction
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from actors.kernel.runtime import Runner
from schemas import subjects
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, Deposit

pytestmark = pytest.mark.asyncio

KEY = "lost-ack"


def _deposit_numbers(rows: Sequence[outbox.Row]) -> list[int]:
    numbers = []
    for row in rows:
        body = msgspec.json.decode(row.payload)
        if row.entity_key == KEY and body.get("type") == "acct.deposited.v1":
            numbers.append(int(body["n"]))
    return numbers


async def test_a_batch_committed_without_acknowledgement_publishes_before_later_ones(
    nats_server: EmbeddedNats, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost: list[int] = []
    armed: list[bool] = []
    real_decide = Runner._decide

    async def decide_and_arm(self: Runner[Any], conn: Any, items: Sequence[Any]) -> Any:
        rows, counts = await real_decide(self, conn, items)
        if not lost and 2 in _deposit_numbers(rows):
            lost.extend(_deposit_numbers(rows))
            armed.append(True)
        return rows, counts

    @contextlib.asynccontextmanager
    async def commit_then_lose_the_reply(engine: Any) -> AsyncIterator[Any]:
        async with transaction(engine) as conn:
            yield conn
        if armed:
            armed.clear()
            raise ConnectionResetError("connection lost after COMMIT was sent")

    monkeypatch.setattr(Runner, "_decide", decide_and_arm)
    monkeypatch.setattr(runtime, "transaction", commit_then_lose_the_reply)
    settings = Settings(database_url=database_url, nats_url=nats_server.url, batch_size=1)
    host = Host(settings, [ACCOUNTS], nats_url=nats_server.url)
    await host.start()
    await host.wait_ready()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        for n in range(1, 7):
            await js.publish(
                subjects.command_subject_for(Deposit, KEY),
                msgspec.json.encode(Deposit(amount=n)),
                headers={Header.MSG_ID: f"{KEY}-{n}"},
            )
        numbers: list[int] = []
        async with asyncio.timeout(20):
            while len(numbers) < 6:
                numbers = [
                    msgspec.json.decode(record.data)["n"]
                    async for record in history.read(js, EVENTS, f"evt.acct.{KEY}.deposited")
                ]
                await asyncio.sleep(0.1)
        assert lost == [2]
        assert numbers == [1, 2, 3, 4, 5, 6]
        assert host.runners[0].stats.retries >= 1
    finally:
        await nc.close()
        await host.stop()
