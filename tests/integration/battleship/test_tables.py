"""The Battleship tables on PostgreSQL and SQLite: schema, foreign keys, cascades, rollback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel import migrate
from actors.kernel.db import create_engine, metadata, transaction
from actors.lobby.tables import room_members, rooms
from actors.match.tables import match_ships, matches, moves
from actors.ratings.tables import ladders, ratings
from actors.registry import import_table_modules

pytestmark = pytest.mark.asyncio

OURS = ("rooms", "room_members", "matches", "match_ships", "moves", "ladders", "ratings")
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(database_url)
    try:
        yield e
    finally:
        await e.dispose()


def _room(room_id: str = "r1") -> dict[str, Any]:
    return {
        "room_id": room_id,
        "version": 1,
        "status": "open",
        "name": "duel",
        "host": "alice",
        "capacity": 2,
        "rated": True,
        "board": "{}",
        "ladder": "standard",
        "close_after_match": False,
        "match_id": None,
        "matches_played": 0,
        "created_at": T0,
        "updated_at": T0,
    }


def _match(match_id: str = "m1") -> dict[str, Any]:
    return {
        "match_id": match_id,
        "version": 1,
        "status": "in_progress",
        "seat0_kind": "user",
        "seat0_id": "alice",
        "seat1_kind": "agent",
        "seat1_id": "probability",
        "room_id": None,
        "rated": True,
        "board": "{}",
        "ladder": "standard",
        "seed": 2**63 - 1,
        "first_seat": 0,
        "turn": 0,
        "winner": None,
        "reason": None,
        "shots_fired": 1,
        "chat_messages": 0,
        "created_at": T0,
        "started_at": T0,
        "finished_at": None,
    }


def _move(match_id: str = "m1", number: int = 1) -> dict[str, Any]:
    return {
        "match_id": match_id,
        "number": number,
        "seat": 0,
        "row": 3,
        "col": 4,
        "result": "miss",
        "at": T0,
    }


def _ship(match_id: str = "m1", position: int = 0) -> dict[str, Any]:
    return {
        "match_id": match_id,
        "seat": 0,
        "position": position,
        "ship": "destroyer",
        "row": 0,
        "col": position * 2,
        "orientation": "horizontal",
    }


def _rating(ladder_id: str = "standard", player_id: str = "alice") -> dict[str, Any]:
    return {
        "ladder_id": ladder_id,
        "player_kind": "user",
        "player_id": player_id,
        "rating": 1516.0,
        "games": 1,
        "wins": 1,
        "losses": 0,
        "streak": 1,
        "peak": 1516.0,
        "last_played": T0,
    }


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_the_migration_creates_exactly_the_declared_tables(database_url: str) -> None:
    import_table_modules()
    ours = MetaData(naming_convention=metadata.naming_convention)
    for name in OURS:
        metadata.tables[name].to_metadata(ours)
    e = create_engine(database_url, write=False)
    try:
        async with e.connect() as conn:

            def compare(sync: Any) -> list[Any]:
                context = MigrationContext.configure(sync, opts={"compare_type": True})
                return [
                    d
                    for d in compare_metadata(context, ours)
                    # Tables of other areas show up as "remove_table" against our subset.
                    if not (d[0] == "remove_table" and d[1].name not in OURS)
                    and not (d[0] == "remove_index" and d[1].table.name not in OURS)
                ]

            differences = await conn.run_sync(compare)
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            fks = await conn.run_sync(
                lambda sync: {
                    t: [
                        (fk["name"], fk["options"].get("ondelete"))
                        for fk in inspect(sync).get_foreign_keys(t)
                    ]
                    for t in ("room_members", "match_ships", "moves", "ratings")
                }
            )
    finally:
        await e.dispose()
    assert differences == []
    assert set(OURS) <= names
    assert fks == {
        "room_members": [("fk_room_members_room_id_rooms", "CASCADE")],
        "match_ships": [("fk_match_ships_match_id_matches", "CASCADE")],
        "moves": [("fk_moves_match_id_matches", "CASCADE")],
        "ratings": [("fk_ratings_ladder_id_ladders", "CASCADE")],
    }


async def test_the_branch_downgrades_and_upgrades_again(database_url: str) -> None:
    await asyncio.to_thread(migrate.downgrade, database_url, "battleship@-1")
    e = create_engine(database_url, write=False)
    try:
        async with e.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert not set(OURS) & names
        assert "actor_state" in names  # the kernel's tables stay
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with e.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert set(OURS) <= names
    finally:
        await e.dispose()


@pytest.mark.parametrize(
    ("child", "row"),
    [
        (room_members, {"room_id": "nope", "position": 0, "user_id": "alice", "match_seat": None}),
        (moves, _move("nope")),
        (match_ships, _ship("nope")),
        (ratings, _rating("nope")),
    ],
    ids=["room_members", "moves", "match_ships", "ratings"],
)
async def test_children_need_their_parent(engine: AsyncEngine, child: Any, row: Any) -> None:
    with pytest.raises(IntegrityError):
        async with transaction(engine) as conn:
            await conn.execute(child.insert(), [row])
    assert await _count(engine, child) == 0


async def test_deleting_a_parent_cascades_to_its_children(engine: AsyncEngine) -> None:
    async with transaction(engine) as conn:
        await conn.execute(rooms.insert(), [_room("r1"), _room("r2")])
        await conn.execute(
            room_members.insert(),
            [
                {"room_id": "r1", "position": 0, "user_id": "alice", "match_seat": None},
                {"room_id": "r1", "position": 1, "user_id": "bob", "match_seat": None},
                {"room_id": "r2", "position": 0, "user_id": "carol", "match_seat": None},
            ],
        )
        await conn.execute(matches.insert(), [_match("m1"), _match("m2")])
        await conn.execute(moves.insert(), [_move("m1", 1), _move("m1", 2), _move("m2", 1)])
        await conn.execute(match_ships.insert(), [_ship("m1", 0), _ship("m1", 1), _ship("m2", 0)])
        await conn.execute(
            ladders.insert(),
            [{"ladder_id": "standard", "version": 1, "rated_matches": 1, "updated_at": T0}],
        )
        await conn.execute(ratings.insert(), [_rating(player_id="alice"), _rating(player_id="bob")])
    async with transaction(engine) as conn:
        await conn.execute(rooms.delete().where(rooms.c.room_id == "r1"))
        await conn.execute(matches.delete().where(matches.c.match_id == "m1"))
        await conn.execute(ladders.delete())
    async with engine.connect() as conn:
        members = (await conn.execute(select(room_members.c.user_id))).scalars().all()
        left_moves = (await conn.execute(select(moves.c.match_id))).scalars().all()
        ships = (await conn.execute(select(match_ships.c.match_id))).scalars().all()
    assert members == ["carol"]
    assert left_moves == ["m2"]
    assert ships == ["m2"]
    assert await _count(engine, ratings) == 0


async def test_constraints_refuse_impossible_rows(engine: AsyncEngine) -> None:
    bad = [
        (rooms, {**_room(), "status": "absent"}),
        (rooms, {**_room(), "capacity": 1}),
        (matches, {**_match(), "winner": 2}),
        (matches, {**_match(), "seat1_kind": "robot"}),
        (ladders, {"ladder_id": "x", "version": 1, "rated_matches": 0, "updated_at": None}),
    ]
    for table, row in bad:
        with pytest.raises(IntegrityError):
            await _write(engine, (table, [row]))
    await _write(engine, (matches, [_match()]))
    for table, row in [
        (moves, {**_move(), "result": "splash"}),
        (moves, {**_move(), "number": 0}),
        (match_ships, {**_ship(), "orientation": "diagonal"}),
    ]:
        with pytest.raises(IntegrityError):
            await _write(engine, (table, [row]))
    twice = [
        {"room_id": "r1", "position": 0, "user_id": "alice", "match_seat": None},
        {"room_id": "r1", "position": 1, "user_id": "alice", "match_seat": None},
    ]
    with pytest.raises(IntegrityError):
        await _write(engine, (rooms, [_room()]), (room_members, twice))
    assert await _count(engine, rooms) == 0


class Boom(Exception):
    """Raised by a test in the middle of a transaction."""


async def _write(
    engine: AsyncEngine, *writes: tuple[Any, list[dict[str, Any]]], fail: bool = False
) -> None:
    """Insert each (table, rows) in one transaction; ``fail`` raises ``Boom`` at the end."""
    async with transaction(engine) as conn:
        for table, rows in writes:
            await conn.execute(table.insert(), rows)
        if fail:
            raise Boom()


async def test_a_failing_transaction_leaves_nothing_behind(engine: AsyncEngine) -> None:
    with pytest.raises(Boom):
        await _write(
            engine, (matches, [_match()]), (moves, [_move(number=1), _move(number=2)]), fail=True
        )
    with pytest.raises(IntegrityError):
        await _write(engine, (matches, [_match()]), (moves, [_move(number=1), _move(number=1)]))
    assert await _count(engine, matches) == 0
    assert await _count(engine, moves) == 0


async def test_timestamps_come_back_as_utc_whatever_zone_went_in(engine: AsyncEngine) -> None:
    local = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    async with transaction(engine) as conn:
        await conn.execute(matches.insert(), [{**_match(), "created_at": local}])
    async with engine.connect() as conn:
        created = (await conn.execute(select(matches.c.created_at))).scalar_one()
    assert created == T0
    assert created.tzinfo == UTC
    naive = {**_match("m2"), "created_at": datetime(2025, 1, 1)}
    with pytest.raises(Exception, match="naive datetime"):
        await _write(engine, (matches, [naive]))
