"""next_turn on real NATS and databases: 20 racing commands advance once, ids apply once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from actors.kernel.host import Host
from actors.kernel.tables import consumer_ledger
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    NextTurn,
    SetInitiative,
    StartEncounter,
    TurnEnding,
    TurnStarted,
)
from tests.integration.encounter.support import Client, assert_turn_order, of_type

pytestmark = pytest.mark.asyncio

RACERS = 20


async def start_encounter(client: Client, key: str, people: int = 3) -> None:
    """An active encounter at step 1 with ``people`` combatants placed by hand."""
    steps: list[tuple[str, object]] = [
        (f"{key}-create", CreateEncounter(seed=11, campaign_id="camp-race")),
    ]
    for i in range(people):
        cid = f"c{i}"
        steps.append((f"{key}-add-{cid}", AddCombatant(combatant_id=cid, name=cid.upper())))
        steps.append((f"{key}-init-{cid}", SetInitiative(combatant_id=cid, value=20 - i)))
    steps.append((f"{key}-start", StartEncounter()))
    for command_id, command in steps:
        outcome = await client.send(key, command, command_id)  # type: ignore[arg-type]
        assert outcome.status == "applied", outcome


async def race(client: Client, key: str, step: int, tag: str) -> None:
    """Publish RACERS next_turn(step) with distinct ids at once; exactly one may advance."""
    ids = [f"{key}-{tag}-{i}" for i in range(RACERS)]
    await asyncio.gather(*(client.publish(key, NextTurn(expected_step=step), i) for i in ids))
    outcomes = [await client.outcome("encounter", i) for i in ids]
    applied = [o for o in outcomes if o.status == "applied"]
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert len(applied) == 1, [o.status for o in outcomes]
    assert [e.type for e in applied[0].events] == ["encounter.turn_ending.v1"]
    assert len(rejected) == RACERS - 1
    for o in rejected:
        assert o.rejection is not None
        assert o.rejection.kind == "conflict"
        assert o.rejection.code in ("turn_ending", "stale_step"), o.rejection
        # Either way the refusal names the step the encounter is at.
        current = o.rejection.details["step"]
        assert current == (step if o.rejection.code == "turn_ending" else step + 1)
        assert f"step {current}" in o.rejection.reason


async def test_twenty_concurrent_next_turns_advance_once(any_host: Host, client: Client) -> None:
    key = "race-1"
    await start_encounter(client, key)
    for step in (1, 2, 3):
        await race(client, key, step, f"s{step}")
        state = await client.settled(key)
        assert state["step"] == step + 1
    logged = await assert_turn_order(client, key)
    endings = [e.step for e in of_type(logged, TurnEnding)]
    starts = [e.step for e in of_type(logged, TurnStarted)]
    assert endings == [1, 2, 3]
    assert starts == [1, 2, 3, 4]


async def test_repeated_command_ids_apply_once(any_host: Host, client: Client) -> None:
    key = "repeat-1"
    await start_encounter(client, key)
    # The same Nats-Msg-Id five times: JetStream keeps one.
    for _ in range(5):
        await client.publish(key, NextTurn(expected_step=1), "same-id")
    first = await client.outcome("encounter", "same-id")
    assert first.status == "applied"
    await client.settled(key)
    # The same command id under new Nats-Msg-Ids: stored again, dropped by the ledger.
    for n in range(4):
        await client.publish(key, NextTurn(expected_step=1), "same-id", msg_id=f"retry-{n}")
    # Commands of one encounter are handled in order, so once this one has an outcome the
    # retries before it were handled too.
    marker = await client.send(key, NextTurn(expected_step=2), "after-retries")
    assert marker.status == "applied"
    state = await client.settled(key)
    assert state["step"] == 3
    logged = await assert_turn_order(client, key)
    assert [e.step for e in of_type(logged, TurnEnding)] == [1, 2]
    assert any_host.engine is not None
    async with any_host.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(consumer_ledger.c.message_id).where(
                    consumer_ledger.c.consumer == "encounter",
                    consumer_ledger.c.message_id == "same-id",
                )
            )
        ).all()
        assert len(rows) == 1
