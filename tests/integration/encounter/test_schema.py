"""The encounter tables on PostgreSQL and SQLite: migration = metadata, invariants, the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.encounter import rules
from actors.encounter.actor import STUCK_AFTER, count_gauges
from actors.encounter.store import EncounterStore
from actors.encounter.tables import INITIATIVE_UNIQUE, combatants, encounters, initiative
from actors.kernel import migrate
from actors.kernel.actor import Change, StaleState
from actors.kernel.db import create_engine, metadata, transaction
from schemas.encounter import (
    AddCombatant,
    CreateEncounter,
    DefeatCombatant,
    NextTurn,
    RemoveCombatant,
    SetInitiative,
    SkipCombatant,
    StartEncounter,
)
from schemas.mastery import MasteryResolved
from tests.unit.encounter.support import apply

pytestmark = pytest.mark.asyncio

OURS = {"encounters", "combatants", "initiative"}


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(database_url)
    try:
        yield e
    finally:
        await e.dispose()


def _table_of(diff: Any) -> str | None:
    if isinstance(diff, list):
        return _table_of(diff[0]) if diff else None
    for part in diff[1:]:
        if isinstance(part, Table):
            return part.name
        table = getattr(part, "table", None)
        if isinstance(table, Table):
            return table.name
    if len(diff) > 2 and isinstance(diff[2], str):
        return diff[2]
    return None


async def test_migration_matches_the_table_metadata(engine: AsyncEngine) -> None:
    def compare(sync_conn: Any) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diffs = await conn.run_sync(compare)
    ours = [d for d in diffs if _table_of(d) in OURS]
    assert ours == []


def _state(*messages: Any) -> rules.EncounterState:
    state, _ = apply(rules.initial_state("e-1"), *messages)
    return state


SETUP = (
    CreateEncounter(seed=9, campaign_id="camp"),
    AddCombatant(combatant_id="a", name="A", dexterity_modifier=2, character_ref="sheet-a"),
    AddCombatant(combatant_id="b", name="B"),
    AddCombatant(combatant_id="c", name="C", initiative_bonus=-3),
    SetInitiative(combatant_id="a", value=18),
    SetInitiative(combatant_id="b", value=12),
    SetInitiative(combatant_id="c", value=-4),
)


async def _save(
    store: EncounterStore,
    engine: AsyncEngine,
    state: rules.EncounterState,
    version: int,
    previous: int,
) -> None:
    async with transaction(engine) as conn:
        await store.save(conn, "encounter", [Change(state.encounter_id, state, version, previous)])


async def _load(store: EncounterStore, engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (await store.load(conn, "encounter", ["e-1"]))["e-1"]


@pytest.mark.parametrize("remember", [True, False], ids=["diffed", "rewritten"])
async def test_store_round_trips_every_phase(engine: AsyncEngine, remember: bool) -> None:
    phases = [
        _state(*SETUP),
        _state(*SETUP, RemoveCombatant(combatant_id="b"), SkipCombatant(combatant_id="c")),
        _state(*SETUP, StartEncounter()),
        _state(*SETUP, StartEncounter(), NextTurn(expected_step=1)),
        _state(
            *SETUP,
            StartEncounter(),
            NextTurn(expected_step=1),
            DefeatCombatant(combatant_id="a"),
            MasteryResolved(step=1),
        ),
    ]
    shared = EncounterStore()
    for version, state in enumerate(phases, start=1):
        # A store that loaded the previous version writes only what changed; a fresh one
        # rewrites every row. Both must leave the same rows.
        store = shared if remember else EncounterStore()
        if version > 1 and remember:
            await _load(store, engine)  # what the runtime does before every save
        await _save(store, engine, state, version, version - 1)
        loaded = await _load(EncounterStore(), engine)
        assert loaded.version == version
        assert msgspec.to_builtins(loaded.state) == msgspec.to_builtins(state)


async def test_store_refuses_stale_versions(engine: AsyncEngine) -> None:
    store = EncounterStore()
    state = _state(*SETUP)
    await _save(store, engine, state, 1, 0)
    with pytest.raises(StaleState):
        await _save(store, engine, state, 1, 0)  # a second creation
    moved = _state(*SETUP, StartEncounter())
    await _save(store, engine, moved, 2, 1)
    with pytest.raises(StaleState):
        await _save(store, engine, moved, 2, 1)  # written by someone else meanwhile
    loaded = await _load(store, engine)
    assert loaded.version == 2
    assert loaded.state.status == "active"


async def test_a_second_initiative_row_is_refused(engine: AsyncEngine) -> None:
    await _save(EncounterStore(), engine, _state(*SETUP), 1, 0)
    with pytest.raises(IntegrityError) as caught:
        async with transaction(engine) as conn:
            await conn.execute(
                insert(initiative).values(encounter_id="e-1", combatant_id="a", value=3)
            )
    # PostgreSQL names the constraint; SQLite names its columns.
    assert INITIATIVE_UNIQUE in str(caught.value) or "initiative.encounter_id" in str(caught.value)


async def test_encounters_only_move_forward(engine: AsyncEngine) -> None:
    active = _state(*SETUP, StartEncounter(), NextTurn(expected_step=1), MasteryResolved(step=1))
    await _save(EncounterStore(), engine, active, 1, 0)
    for change in ({"step": 1}, {"round": 0}, {"status": "setup"}, {"version": 1}):
        values = {"version": 2, **change}
        with pytest.raises((IntegrityError, DBAPIError), match="forward"):
            async with transaction(engine) as conn:
                await conn.execute(
                    update(encounters).where(encounters.c.encounter_id == "e-1").values(**values)
                )
    async with transaction(engine) as conn:
        await conn.execute(update(encounters).values(version=2, step=3, round=2))


async def test_an_active_encounter_has_exactly_one_active_combatant(engine: AsyncEngine) -> None:
    await _save(EncounterStore(), engine, _state(*SETUP, StartEncounter()), 1, 0)
    with pytest.raises(IntegrityError, match="one_active_combatant"):
        async with transaction(engine) as conn:
            await conn.execute(update(encounters).values(version=2, active_combatant_id=None))
    with pytest.raises(IntegrityError, match="ending_only_when_active"):
        async with transaction(engine) as conn:
            await conn.execute(
                update(encounters).values(
                    version=2, status="ended", active_combatant_id=None, ending=True
                )
            )


async def test_removing_a_combatant_removes_its_initiative(engine: AsyncEngine) -> None:
    store = EncounterStore()
    await _save(store, engine, _state(*SETUP), 1, 0)
    await _load(store, engine)
    await _save(store, engine, _state(*SETUP, RemoveCombatant(combatant_id="b")), 2, 1)
    async with engine.connect() as conn:
        placed = (await conn.execute(select(initiative.c.combatant_id))).scalars().all()
        roster = (
            await conn.execute(
                select(combatants.c.combatant_id, combatants.c.position).order_by(
                    combatants.c.position
                )
            )
        ).all()
    assert sorted(placed) == ["a", "c"]
    assert [tuple(r) for r in roster] == [("a", 0), ("c", 1)]


async def test_gauges_count_active_and_stuck_encounters(engine: AsyncEngine) -> None:
    store = EncounterStore()
    ending = _state(*SETUP, StartEncounter(), NextTurn(expected_step=1))
    await _save(store, engine, ending, 1, 0)
    now = datetime.now(UTC)
    assert await count_gauges(engine, now) == (1, 0)
    assert await count_gauges(engine, now + STUCK_AFTER + timedelta(seconds=1)) == (1, 1)
    async with engine.connect() as conn:
        since = (await conn.execute(select(encounters.c.ending_since))).scalar_one()
    assert since is not None
    # Ending the step clears the mark.
    await _load(store, engine)
    await _save(store, engine, _state(*SETUP, StartEncounter()), 2, 1)
    async with engine.connect() as conn:
        assert (await conn.execute(select(encounters.c.ending_since))).scalar_one() is None
        assert (await conn.execute(text("SELECT count(*) FROM encounters"))).scalar_one() == 1


async def test_the_encounter_branch_downgrades_and_upgrades_again(database_url: str) -> None:
    await asyncio.to_thread(migrate.downgrade, database_url, "encounter@-1")
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not names & OURS
        assert "actor_state" in names  # the kernel's tables stay
    finally:
        await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, database_url, "heads")
    engine = create_engine(database_url)
    try:
        await _save(EncounterStore(), engine, _state(*SETUP, StartEncounter()), 1, 0)
        with pytest.raises((IntegrityError, DBAPIError), match="forward"):
            async with transaction(engine) as conn:
                await conn.execute(update(encounters).values(version=2, status="setup"))
    finally:
        await engine.dispose()
