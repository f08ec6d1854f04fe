"""The order contract read back from JetStream: it holds under load, and a breach is caught."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import Host
from schemas import subjects
from schemas.base import Event
from schemas.effects import ApplyEffect, EffectExpired, Expiration, ExpirationsResolved
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    NextTurn,
    SetInitiative,
    StartEncounter,
    TurnEnded,
    TurnEnding,
    TurnStarted,
)
from schemas.headers import Header
from schemas.mastery import (
    RAPID_RESPONSE,
    MasteryProc,
    MasteryResolved,
    ProcRequestRejected,
    RequestProc,
)
from tests.integration.encounter.support import Client, assert_turn_order, of_type

pytestmark = pytest.mark.asyncio

ENCOUNTERS = 4
STEPS = 5
PEOPLE = ("a", "b", "c")


async def drive(client: Client, key: str) -> None:
    """One encounter: each step a BUFF by the active combatant and a proc request for it.

    Odd steps ask for the right number of procs, even steps for one too many.
    """
    setup: list[tuple[str, object]] = [("create", CreateEncounter(seed=1, campaign_id="c"))]
    for n, cid in enumerate(PEOPLE):
        setup.append((f"add-{cid}", AddCombatant(combatant_id=cid, name=cid)))
        setup.append((f"init-{cid}", SetInitiative(combatant_id=cid, value=10 - n)))
    setup.append(("start", StartEncounter()))
    for label, command in setup:
        assert (await client.send(key, command, f"{key}-{label}")).status == "applied"  # type: ignore[arg-type]
    for step in range(1, STEPS + 1):
        state = await client.settled(key)
        active = state["active_id"]
        buff = ApplyEffect(
            instance_id=f"buff-{step}",
            owner=PEOPLE[step % len(PEOPLE)],
            placed_by=active,
            kind="BUFF",
            name="Inspire",
            duration=1,
        )
        request = RequestProc(
            holder=active, mastery=RAPID_RESPONSE, count=1 if step % 2 else 2, step=step
        )
        outcomes = await asyncio.gather(
            client.send(key, buff, f"{key}-buff-{step}"),
            client.send(key, request, f"{key}-proc-{step}"),
        )
        assert [o.status for o in outcomes] == ["applied", "applied"]
        assert (
            await client.send(key, NextTurn(expected_step=step), f"{key}-next-{step}")
        ).status == "applied"
    await client.settled(key)


async def test_concurrent_encounters_keep_the_turn_order(pg_host: Host, client: Client) -> None:
    keys = [f"load-{n}" for n in range(ENCOUNTERS)]
    await asyncio.gather(*(drive(client, key) for key in keys))
    for key in keys:
        logged = await assert_turn_order(client, key)
        assert [e.step for e in of_type(logged, TurnEnding)] == list(range(1, STEPS + 1))
        procs = of_type(logged, MasteryProc)
        rejected = of_type(logged, ProcRequestRejected)
        assert [p.step for p in procs] == [s for s in range(1, STEPS + 1) if s % 2]
        assert [(r.step, r.code) for r in rejected] == [
            (s, "count_mismatch") for s in range(1, STEPS + 1) if not s % 2
        ]


def one_step(step: int) -> list[Event]:
    """A correct step: ending, one expiration, its proc, resolutions, the next turn."""
    expiration = Expiration(instance_id="bless", owner="b", placed_by="a", kind="BUFF", name="B")
    return [
        TurnStarted(step=step, round=1, combatant_id="a"),
        TurnEnding(step=step, round=1, combatant_id="a"),
        EffectExpired(
            instance_id="bless",
            owner="b",
            placed_by="a",
            kind="BUFF",
            name="B",
            step=step,
            applied_step=step,
            duration=1,
        ),
        ExpirationsResolved(step=step, count=1, expirations=(expiration,)),
        MasteryProc(
            request_id="r1",
            holder="a",
            mastery=RAPID_RESPONSE,
            step=step,
            instance_id="bless",
            owner="b",
            effect_name="B",
            ordinal=1,
            count=1,
        ),
        MasteryResolved(step=step, procs=1),
        TurnEnded(step=step, round=1, combatant_id="a"),
        TurnStarted(step=step + 1, round=2, combatant_id="b"),
    ]


@pytest.fixture
async def bare_bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """The streams and nothing consuming them: what is published stays as published."""
    bus = await Bus.connect(nats_server.url, Settings(nats_url=nats_server.url))
    await bus.ensure_streams()
    try:
        yield bus
    finally:
        await bus.close()


async def publish(bus: Bus, key: str, events: Sequence[Event]) -> None:
    for n, event in enumerate(events):
        await bus.publish(
            subjects.event_subject_for(type(event), key),
            msgspec.json.encode(event),
            {Header.MSG_ID.value: f"{key}-{n}"},
        )


async def test_a_misordered_stream_fails_the_order_assertion(bare_bus: Bus, client: Client) -> None:
    good = one_step(1)
    await publish(bare_bus, "ordered-1", good)
    await assert_turn_order(client, "ordered-1")

    # The proc published before the expiration it claims.
    swapped = [good[0], good[1], good[4], good[2], good[3], good[5], good[6], good[7]]
    await publish(bare_bus, "misordered-1", swapped)
    with pytest.raises(AssertionError, match="proc_without_expiration"):
        await assert_turn_order(client, "misordered-1")

    # The next turn started before the step ended.
    early = [*good[:6], good[7], good[6]]
    await publish(bare_bus, "misordered-2", early)
    with pytest.raises(AssertionError, match="turn_started_before_turn_ended"):
        await assert_turn_order(client, "misordered-2")

    # The same events, stored twice: a step ending twice is a breach too.
    await publish(bare_bus, "misordered-3", [*good[:2], good[1], *good[2:]])
    with pytest.raises(AssertionError, match="duplicate_turn_ending"):
        await assert_turn_order(client, "misordered-3")
