"""The relational stores: exact round trips, batched keys, stale versions, minimal child writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.actor import Change, StaleState
from actors.kernel.db import create_engine, transaction
from actors.lobby import rules as lobby
from actors.lobby.store import LobbyStore
from actors.match import rules as match
from actors.match.store import MatchStore
from actors.match.tables import moves
from actors.ratings import rules as ratings
from actors.ratings.store import RatingsStore
from actors.ratings.tables import ratings as rating_rows
from schemas.base import Event
from schemas.battleship import (
    BoardSpec,
    Chat,
    CreateMatch,
    CreateRoom,
    Enroll,
    Fire,
    JoinRoom,
    MatchFinished,
    PlaceFleet,
    Player,
    ShipSpec,
)
from schemas.subjects import event_subject_for
from tests.unit.battleship.support import Driver

pytestmark = pytest.mark.asyncio

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
SMALL = BoardSpec(
    height=6,
    width=6,
    fleet=(ShipSpec(name="cruiser", length=3), ShipSpec(name="destroyer", length=2)),
)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    e = create_engine(database_url)
    try:
        yield e
    finally:
        await e.dispose()


def _match(key: str, *, shots: int, board: BoardSpec = SMALL) -> Driver[match.MatchState]:
    """A match between alice and bob after ``shots`` shots (random fleets, seeded)."""
    m = Driver(match.decide, match.evolve, match.initial(key), key, "match")
    m.ok(CreateMatch(players=(ALICE, BOB), seed=11, first=0, board=board, room_id="r9"))
    m.ok(PlaceFleet(player="alice", seed=1))
    m.ok(PlaceFleet(player="bob", seed=2))
    m.ok(Chat(player="bob", text="hello"))
    cells = [(r, c) for r in range(board.height) for c in range(board.width)]
    for i in range(shots):
        player = ("alice", "bob")[i % 2]
        row, col = cells[i // 2]
        if m.state.status == "finished":
            break
        m.ok(Fire(player=player, row=row, col=col))
    return m


async def _save(
    engine: AsyncEngine, store: Any, actor: str, changes: Sequence[Change[Any]]
) -> None:
    async with transaction(engine) as conn:
        await store.save(conn, actor, changes)


async def _load(engine: AsyncEngine, store: Any, actor: str, keys: Sequence[str]) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict(await store.load(conn, actor, keys))


async def test_matches_round_trip_exactly_in_one_batch(engine: AsyncEngine) -> None:
    store = MatchStore()
    states = {
        "placing": Driver(match.decide, match.evolve, match.initial("placing"), "placing", "match"),
        "started": _match("started", shots=0),
        "midway": _match("midway", shots=9),
        "over": _match("over", shots=72),
    }
    states["placing"].ok(CreateMatch(players=(ALICE, Player(kind="agent", id="random")), seed=3))
    assert states["over"].state.status == "finished"
    await _save(engine, store, "match", [Change(k, d.state, 1, 0) for k, d in states.items()])
    loaded = await _load(engine, store, "match", [*states, "missing"])
    assert set(loaded) == set(states)
    for key, driver in states.items():
        assert loaded[key].state == driver.state, key
        assert loaded[key].version == 1
    # Unsaved keys are new entities: absent, not errors.
    assert await _load(engine, store, "match", []) == {}


async def test_a_match_grows_move_by_move_with_and_without_a_snapshot(engine: AsyncEngine) -> None:
    store = MatchStore()
    m = _match("m1", shots=0)
    await _save(engine, store, "match", [Change("m1", m.state, 1, 0)])
    version = 1
    for step in range(12):
        before = m.state
        m.ok(Fire(player=("alice", "bob")[step % 2], row=step // 2, col=3))
        async with transaction(engine) as conn:
            if step % 2 == 0:  # with a snapshot from the same transaction
                loaded = await store.load(conn, "match", ["m1"])
                assert loaded["m1"].state == before
            await store.save(conn, "match", [Change("m1", m.state, version + 1, version)])
        version += 1
    loaded = await _load(engine, store, "match", ["m1"])
    assert loaded["m1"].state == m.state
    assert loaded["m1"].version == 13
    async with engine.connect() as conn:
        numbers = (await conn.execute(select(moves.c.number).order_by(moves.c.number))).scalars()
        assert list(numbers) == list(range(1, 13))


async def test_a_moved_version_is_stale_and_writes_nothing(engine: AsyncEngine) -> None:
    store = MatchStore()
    a, b = _match("a", shots=2), _match("b", shots=2)
    await _save(engine, store, "match", [Change("a", a.state, 1, 0), Change("b", b.state, 1, 0)])
    a.ok(Fire(player="alice", row=5, col=5))
    b.ok(Fire(player="alice", row=5, col=5))
    with pytest.raises(StaleState) as caught:
        await _save(
            engine, store, "match", [Change("a", a.state, 2, 1), Change("b", b.state, 3, 2)]
        )
    assert caught.value.keys == ["b"]
    with pytest.raises(StaleState) as caught:
        await _save(engine, store, "match", [Change("a", a.state, 1, 0)])  # already exists
    assert caught.value.keys == ["a"]
    loaded = await _load(engine, store, "match", ["a", "b"])
    assert {k: (v.version, len(v.state.shots)) for k, v in loaded.items()} == {
        "a": (1, 2),
        "b": (1, 2),
    }


async def test_rooms_round_trip_with_members_and_players(engine: AsyncEngine) -> None:
    store = LobbyStore()
    room = Driver(lobby.decide, lobby.evolve, lobby.initial("r1"), "r1", "lobby")
    room.ok(CreateRoom(name="four", host="alice", capacity=4, board=SMALL, rated=False))
    for user in ("bob", "carol", "dave"):
        room.ok(JoinRoom(user=user))
    created = match.initial("m1")
    started = Driver(match.decide, match.evolve, created, "m1", "match")
    for event in started.ok(
        CreateMatch(players=(Player(kind="user", id="dave"), BOB), room_id="r1", board=SMALL)
    ):
        room.send(event, subject=event_subject_for(type(event), "m1"))
    assert room.state.match_players == ("dave", "bob")
    await _save(engine, store, "lobby", [Change("r1", room.state, 5, 0)])
    loaded = await _load(engine, store, "lobby", ["r1"])
    assert loaded["r1"].state == room.state
    finished = MatchFinished(
        winner=BOB,
        loser=Player(kind="user", id="dave"),
        winner_seat=1,
        reason="resigned",
        rated=False,
        ladder="6x6_3-2",
        shots=(0, 0),
        at=room.state.updated_at,  # type: ignore[arg-type]
        room_id="r1",
    )
    room.ok(finished, subject=event_subject_for(MatchFinished, "m1"))
    await _save(engine, store, "lobby", [Change("r1", room.state, 6, 5)])
    loaded = await _load(engine, store, "lobby", ["r1"])
    assert loaded["r1"].state == room.state
    assert loaded["r1"].state.match_players == ()


async def test_a_ladder_writes_only_the_entries_a_match_changed(engine: AsyncEngine) -> None:
    store = RatingsStore()
    ladder = Driver(
        ratings.decide, ratings.evolve, ratings.initial("standard"), "standard", "ratings"
    )
    players = [Player(kind="user", id=f"u{i}") for i in range(30)]
    for player in players:
        ladder.ok(Enroll(player=player))
    enrolled = ladder.state
    await _save(engine, store, "ratings", [Change("standard", enrolled, 30, 0)])

    def finished(winner: Player, loser: Player) -> Event:
        return MatchFinished(
            winner=winner,
            loser=loser,
            winner_seat=0,
            reason="fleet_sunk",
            rated=True,
            ladder="standard",
            shots=(17, 16),
            at=ladder.state.updated_at,  # type: ignore[arg-type]
        )

    ladder.ok(finished(players[0], players[1]), subject="evt.match.m1.finished")
    async with transaction(engine) as conn:
        loaded = await store.load(conn, "ratings", ["standard"])
        assert loaded["standard"].state == enrolled
        # A row the change does not touch is left alone: proven by a marker nobody overwrites.
        await conn.execute(
            update(rating_rows).where(rating_rows.c.player_id == "u29").values(peak=1600.0)
        )
        await store.save(conn, "ratings", [Change("standard", ladder.state, 31, 30)])
    stored = (await _load(engine, store, "ratings", ["standard"]))["standard"]
    assert stored.version == 31
    assert stored.state.entries["user:u0"] == ladder.state.entries["user:u0"]
    assert stored.state.entries["user:u1"].streak == -1
    assert stored.state.entries["user:u29"].peak == 1600.0
    assert stored.state.rated_matches == 1

    # Without a snapshot the store reads the stored entries to find what changed.
    ladder.ok(finished(players[1], players[2]), subject="evt.match.m2.finished")
    await _save(engine, store, "ratings", [Change("standard", ladder.state, 32, 31)])
    stored = (await _load(engine, store, "ratings", ["standard"]))["standard"]
    expected = dict(ladder.state.entries)
    expected["user:u29"] = stored.state.entries["user:u29"]
    assert stored.state.entries == expected
