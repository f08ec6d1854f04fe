"""The runtime against a real nats-server and real databases: apply, dedupe, reject, react."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest

from actors.kernel import ledger
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.envelope import Outcome
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, TALLY, Deposit, Open, Withdraw

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def host(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Host]:
    settings = Settings(database_url=database_url, nats_url=nats_server.url, batch_size=64)
    h = Host(settings, [ACCOUNTS, TALLY], nats_url=nats_server.url)
    await h.start()
    await h.wait_ready()
    try:
        yield h
    finally:
        await h.stop()


async def _publish(nc: nats.NATS, key: str, cmd: msgspec.Struct, msg_id: str) -> None:
    js = nc.jetstream()
    subject = subjects.command_subject_for(type(cmd), key)  # type: ignore[arg-type]
    await js.publish(
        subject,
        msgspec.json.encode(cmd),
        headers={Header.MSG_ID: msg_id, Header.WANT_OUTCOME: "1"},
    )


async def _outcome(nc: nats.NATS, domain: str, command_id: str) -> Outcome:
    js = nc.jetstream()
    subject = subjects.outcome_subject(domain, command_id)
    async with asyncio.timeout(10):
        while True:
            try:
                msg = await js.get_last_msg("OUTCOMES", subject)
                return msgspec.json.decode(msg.data, type=Outcome)
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.05)


async def test_commands_apply_once_and_emit_events(host: Host, nats_server: EmbeddedNats) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await _publish(nc, "a1", Open(owner="ada"), "c1")
        await _publish(nc, "a1", Deposit(amount=10), "c2")
        await _publish(nc, "a1", Deposit(amount=5), "c2")  # same id: JetStream drops it
        await _publish(nc, "a1", Withdraw(amount=100), "c3")
        rejected = await _outcome(nc, "acct", "c3")
        assert rejected.status == "rejected"
        assert rejected.rejection is not None
        assert rejected.rejection.code == "insufficient_funds"
        applied = await _outcome(nc, "acct", "c2")
        assert applied.status == "applied"
        assert [e.type for e in applied.events] == ["acct.deposited.v1", "auditlog.noted.v1"]
        assert applied.version == 2

        reply = await nc.request(subjects.query_subject("acct", "a1"), b"", timeout=5)
        state = msgspec.json.decode(reply.data)
        assert state["state"] == {"owner": "ada", "balance": 10, "n": 1}
        assert state["version"] == 2
    finally:
        await nc.close()
    assert host.engine is not None
    async with host.engine.connect() as conn:
        assert await ledger.count(conn, "accounts") == 3


async def test_reactions_fold_other_actors_events(host: Host, nats_server: EmbeddedNats) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        for i in range(1, 6):
            await _publish(nc, "t1", Deposit(amount=i), f"d{i}")
        async with asyncio.timeout(15):
            while True:
                reply = await nc.request(subjects.query_subject("tally", "t1"), b"", timeout=5)
                state = msgspec.json.decode(reply.data)["state"]
                if state["deposits"] == 5:
                    break
                await asyncio.sleep(0.05)
        assert state == {"deposits": 5, "total": 15}
    finally:
        await nc.close()
