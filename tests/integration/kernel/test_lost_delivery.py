"""A batch delivered while the link to NATS was down is fetched again, not acknowledged unseen.

JetStream counts a message as delivered once it leaves the server. If the link
drops with that delivery still in flight, the consumer waits ``ack_wait``
before redelivering it, and meanwhile hands out newer messages; with AckAll,
acknowledging one of those would acknowledge the lost one too. The runner
therefore recreates its consumer at the committed position after every lost
link. This test freezes a proxy between the actor and nats-server, lets the
server deliver into the frozen link, cuts it, and checks nothing went missing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import msgspec
import nats
import pytest

from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.envelope import StateReply
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, Deposit
from tests.support.tcp_proxy import FaultyProxy

pytestmark = pytest.mark.asyncio

ROUNDS = 5


async def _until(check: Callable[[int], Awaitable[bool]], arg: int, within: float) -> None:
    async with asyncio.timeout(within):
        while not await check(arg):  # noqa: ASYNC110 (polling state another process owns)
            await asyncio.sleep(0.05)


async def _version(nc: nats.NATS, key: str) -> int:
    with contextlib.suppress(Exception):
        reply = await nc.request(subjects.query_subject("acct", key), b"", timeout=2)
        return msgspec.json.decode(reply.data, type=StateReply).version
    return -1


async def test_deliveries_lost_with_the_link_are_fetched_again(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    proxy = FaultyProxy("127.0.0.1", nats_server.port)
    await proxy.start()
    via_proxy = f"nats://127.0.0.1:{proxy.port}"
    # ack_wait far beyond the test: only repositioning can bring a lost delivery back.
    settings = Settings(
        database_url=database_url, nats_url=via_proxy, batch_size=8, ack_wait_seconds=600
    )
    host = Host(settings, [ACCOUNTS], nats_url=via_proxy)
    await host.start()
    await host.wait_ready()
    assert host.bus is not None
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()

    async def deposit(n: int) -> None:
        await js.publish(
            subjects.command_subject_for(Deposit, "lossy"),
            msgspec.json.encode(Deposit(amount=n)),
            headers={Header.MSG_ID: f"lossy-{n}"},
        )

    async def _applied(n: int) -> bool:
        return await _version(nc, "lossy") >= n

    async def _reconnected(disconnects: int) -> bool:
        assert host.bus is not None
        return host.bus.disconnects > disconnects and host.bus.nc.is_connected

    try:
        n = 0
        for _ in range(ROUNDS):
            n += 1
            await deposit(n)
            await _until(_applied, n, 20)
            # The runner is now waiting on a pull request; freeze the link under it and
            # publish straight to the server, which delivers into the frozen link.
            disconnects = host.bus.disconnects
            proxy.freeze()
            await asyncio.sleep(0.05)
            n += 1
            await deposit(n)
            await asyncio.sleep(0.3)
            proxy.cut()
            proxy.thaw()
            await _until(_reconnected, disconnects, 20)
        n += 1
        await deposit(n)  # a later message whose AckAll would cover any lost one
        await _until(_applied, n, 30)
        reply = await nc.request(subjects.query_subject("acct", "lossy"), b"", timeout=5)
        state = msgspec.json.decode(msgspec.json.decode(reply.data, type=StateReply).state)
        assert state["n"] == n
        assert state["balance"] == n * (n + 1) // 2
    finally:
        await nc.close()
        await host.stop()
        await proxy.close()
