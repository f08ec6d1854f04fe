"""Scale-out by partition: a stream subject transform spreads keys, one consumer per partition."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msgspec
import nats
import pytest

from actors.kernel import history
from actors.kernel.bus import COMMANDS, EVENTS
from actors.kernel.config import Settings, StreamSettings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, TALLY, Deposit

pytestmark = pytest.mark.asyncio


async def test_two_partition_processes_share_the_keys_and_keep_per_key_order(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        batch_size=16,
        streams=StreamSettings(partitions=2),
    )
    # Two hosts stand for two `troupe actor NAME --partition K` processes.
    hosts = [
        Host(settings, [ACCOUNTS, TALLY], nats_url=nats_server.url, partition=k) for k in (0, 1)
    ]
    for h in hosts:
        await h.start()
    for h in hosts:
        await h.wait_ready()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    keys = [f"pk{i}" for i in range(12)]
    try:
        for n in range(1, 11):
            for key in keys:
                await js.publish(
                    subjects.command_subject("acct", key, "deposit"),
                    msgspec.json.encode(Deposit(amount=n)),
                    headers={Header.MSG_ID: f"{key}-{n}"},
                )
        async with asyncio.timeout(30):
            while True:
                counted = [r async for r in history.read(js, EVENTS, "evt.tally.>")]
                if len(counted) == len(keys) * 10:
                    break
                await asyncio.sleep(0.1)

        partition_of: dict[str, int] = {}
        async for record in history.read(js, COMMANDS, "cmd.acct.>"):
            parsed = subjects.parse(record.subject)
            assert parsed.partition is not None
            assert partition_of.setdefault(parsed.key, parsed.partition) == parsed.partition
        assert set(partition_of.values()) == {0, 1}

        deposits: dict[str, list[int]] = defaultdict(list)
        async for record in history.read(js, EVENTS, "evt.acct.*.deposited.*"):
            deposits[record.subject.split(".")[2]].append(msgspec.json.decode(record.data)["n"])
        assert all(deposits[k] == list(range(1, 11)) for k in keys)
    finally:
        await nc.close()
        for h in hosts:
            await h.stop()
    applied = {h.partition: sum(r.stats.applied for r in h.runners) for h in hosts}
    assert all(count > 0 for count in applied.values())
    assert sum(applied.values()) == len(keys) * 10 * 2  # deposits plus tallies
