"""Bad input never crashes an actor and is never lost: it is dead-lettered with its reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import nats
import pytest

from actors.kernel import deadletters, history
from actors.kernel.bus import EVENTS
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.envelope import Outcome
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, Deposit, Explode, Open

pytestmark = pytest.mark.asyncio

# (subject, body, expected dead-letter kind, a phrase the reason must contain)
POISON = [
    ("cmd.acct.p1.deposit", b"{not json", "decode", "not valid JSON"),
    ("cmd.acct.p1.deposit", b'{"amount": "ten"}', "schema", "$.amount"),
    ("cmd.acct.p1.deposit", b'{"amount": -5}', "schema", ">= 1"),
    ("cmd.acct.p1.deposit", b'{"amount": 5, "extra": 1}', "schema", "unknown field `extra`"),
    ("cmd.acct.p1.deposit", b'{"type": "acct.withdraw.v1", "amount": 5}', "schema", "$.type"),
    ("cmd.acct.p1.teleport", b"{}", "unknown_type", "no command 'teleport'"),
    ("cmd.acct.p1.deposit", b"[1, 2, 3]", "schema", "Expected `object`"),
    ("cmd.acct.p1.explode", b"{}", "handler", "this handler always fails"),
]


@pytest.fixture
async def host(nats_server: EmbeddedNats, database_url: str) -> AsyncIterator[Host]:
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        batch_size=16,
        handler_attempts=2,
        retry_backoff_seconds=0.01,
    )
    h = Host(settings, [ACCOUNTS], nats_url=nats_server.url)
    await h.start()
    await h.wait_ready()
    try:
        yield h
    finally:
        await h.stop()


async def test_every_kind_of_poison_is_dead_lettered_while_good_messages_apply(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        good = 0
        for i, (subject, body, _, _) in enumerate(POISON):
            await js.publish(subject, body, headers={Header.MSG_ID: f"bad-{i}"})
            await js.publish(
                subjects.command_subject("acct", "p1", "deposit"),
                msgspec.json.encode(Deposit(amount=i + 1)),
                headers={Header.MSG_ID: f"good-{i}"},
            )
            good += i + 1
        async with asyncio.timeout(30):
            while True:
                letters = await deadletters.list_dead_letters(js, "accounts")
                reply = await nc.request(subjects.query_subject("acct", "p1"), b"", timeout=5)
                balance = msgspec.json.decode(reply.data)["state"]["balance"]
                if len(letters) == len(POISON) and balance == good:
                    break
                await asyncio.sleep(0.1)
        for letter, (subject, body, kind, phrase) in zip(letters, POISON, strict=True):
            assert letter.kind == kind
            assert phrase in letter.reason, letter.reason
            assert letter.subject == subject
            assert letter.data.encode() == body or kind == "decode"
            assert letter.stream == "COMMANDS"
            assert letter.stream_seq > 0
        deposits = [r async for r in history.read(js, EVENTS, "evt.acct.p1.deposited")]
        assert [msgspec.json.decode(r.data)["n"] for r in deposits] == list(
            range(1, len(POISON) + 1)
        )
        handler = next(x for x in letters if x.kind == "handler")
        assert handler.attempts == 2
    finally:
        await nc.close()
    runner = host.runners[0]
    assert runner.stats.dead_lettered == len(POISON)


async def test_bad_subject_and_header_are_dead_lettered(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        await js.publish(
            "cmd.acct.p2.deposit",
            msgspec.json.encode(Deposit(amount=1)),
            headers={Header.EXPECTED_VERSION: "seven"},
        )
        async with asyncio.timeout(20):
            while True:
                letters = await deadletters.list_dead_letters(js, "accounts")
                if letters:
                    break
                await asyncio.sleep(0.05)
        assert letters[0].kind == "schema"
        assert Header.EXPECTED_VERSION in letters[0].reason
    finally:
        await nc.close()


async def test_dead_lettered_command_reports_its_outcome_and_redrive_applies_once(
    host: Host, nats_server: EmbeddedNats
) -> None:
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    try:
        outcome_subject = subjects.outcome_subject("acct", "boom-1")
        sub = await nc.subscribe(outcome_subject)
        await js.publish(
            subjects.command_subject("acct", "p3", "explode"),
            msgspec.json.encode(Explode()),
            headers={Header.MSG_ID: "boom-1", Header.WANT_OUTCOME: "1"},
        )
        msg = await sub.next_msg(timeout=20)
        outcome = msgspec.json.decode(msg.data, type=Outcome)
        assert outcome.status == "dead_lettered"
        assert outcome.rejection is not None
        assert outcome.rejection.code == "handler"

        # A deposit dead-lettered (by hand, as a stand-in for a fixed bug) is redriven once.
        letters = await deadletters.list_dead_letters(js, "accounts")
        assert len(letters) == 1
        fixed = msgspec.structs.replace(
            letters[0],
            subject=subjects.command_subject("acct", "p3", "deposit"),
            data=msgspec.json.encode(Deposit(amount=7)).decode(),
        )
        await deadletters.redrive(js, [fixed])
        await deadletters.redrive(js, [fixed])  # twice: the ledger keeps it to one effect
        # Per-key order: once this later command is applied, both redrives were handled.
        await js.publish(
            subjects.command_subject("acct", "p3", "open"),
            msgspec.json.encode(Open(owner="zed")),
            headers={Header.MSG_ID: "sentinel-p3"},
        )
        async with asyncio.timeout(20):
            while True:
                reply = await nc.request(subjects.query_subject("acct", "p3"), b"", timeout=5)
                state = msgspec.json.decode(reply.data)["state"]
                if state["owner"] == "zed":
                    break
                await asyncio.sleep(0.05)
        assert state == {"owner": "zed", "balance": 7, "n": 1}
        assert await deadletters.list_dead_letters(js, "accounts") == []
    finally:
        await nc.close()
