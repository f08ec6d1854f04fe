"""Lobby, match and ratings on a real nats-server and database: rooms, matches, replay, ladder."""

from __future__ import annotations

import msgspec
import pytest

from actors.kernel import history
from actors.kernel.host import Host
from actors.lobby.actor import ACTOR as LOBBY
from actors.lobby.rules import Room
from actors.lobby.store import list_rooms
from actors.match import replay as replays
from actors.match.actor import ACTOR as MATCH
from actors.match.rules import MatchState
from actors.match.store import matches_of
from actors.ratings.actor import ACTOR as RATINGS
from actors.ratings.rules import Ladder
from actors.ratings.store import ladder, list_ladders, standing
from schemas.battleship import (
    Chat,
    CloseRoom,
    CreateMatch,
    CreateRoom,
    Fire,
    FleetPlaced,
    JoinRoom,
    LeaveRoom,
    MatchCreated,
    MatchFinished,
    PlaceFleet,
    Player,
    Resign,
    ShipPlacement,
    ShotFired,
)
from tests.integration.battleship.conftest import Bus

pytestmark = pytest.mark.asyncio

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
PROBABILITY = Player(kind="agent", id="probability")
FLEET = (
    ShipPlacement(ship="carrier", row=0, col=0),
    ShipPlacement(ship="battleship", row=2, col=0, orientation="vertical"),
    ShipPlacement(ship="cruiser", row=3, col=3),
    ShipPlacement(ship="submarine", row=5, col=8, orientation="vertical"),
    ShipPlacement(ship="destroyer", row=9, col=4),
)


def _events(outcome: object) -> list[str]:
    return [e.type for e in outcome.events]  # type: ignore[attr-defined]


async def test_a_full_human_vs_ai_match(bus: Bus, host: Host) -> None:
    created = await bus.ok("m1", CreateMatch(players=(ALICE, PROBABILITY), seed=7, first=0))
    assert _events(created) == ["match.created.v1", "match.fleet_placed.v1"]
    await bus.refused("m1", Fire(player="alice", row=0, col=0), "fleets_not_placed")
    placed = await bus.ok("m1", PlaceFleet(player="alice", ships=FLEET))
    assert _events(placed) == ["match.fleet_placed.v1", "match.started.v1"]

    # Mid-match the replay hides the agent's fleet and the seed from alice.
    mid = await replays.replay(bus.js, "m1", viewer="alice")
    assert mid.redacted
    assert not mid.finished
    fleets = [e.event for e in mid.events if isinstance(e.event, FleetPlaced)]
    assert {f.seat: bool(f.ships) for f in fleets} == {0: True, 1: False}
    assert next(e.event for e in mid.events if isinstance(e.event, MatchCreated)).seed == 0

    await bus.refused("m1", Fire(player="alice", row=0, col=0), "wrong_principal", principal="bob")
    cells = [(r, c) for r in range(10) for c in range(10)]
    finished = None
    for number, (row, col) in enumerate(cells, start=1):
        outcome = await bus.ok("m1", Fire(player="alice", row=row, col=col))
        types = _events(outcome)
        assert types[0] == "match.shot_fired.v1"
        if "match.finished.v1" in types:
            finished = msgspec.json.decode(outcome.events[-1].data, type=MatchFinished)
            break
        # Every shot of alice's is answered by one of the agent's, in the same decision.
        assert types == ["match.shot_fired.v1", "match.shot_fired.v1"], (number, types)
        await bus.refused("m1", Fire(player="alice", row=row, col=col), "cell_already_shot")
    assert finished is not None
    assert finished.rated
    assert finished.ladder == "standard"
    assert finished.created_at is not None
    assert finished.started_at is not None
    await bus.refused("m1", Fire(player="alice", row=9, col=9), "game_over")

    state = await bus.state("match", "m1", MatchState)
    assert state.status == "finished"
    assert state.winner == finished.winner_seat
    assert len(state.shots) == sum(finished.shots)

    # The replay from the event stream rebuilds exactly the stored state, now unredacted.
    full = await replays.replay(bus.js, "m1", viewer="alice")
    assert full.finished
    assert not full.redacted
    assert full.state == state
    shots = [e.event for e in full.events if isinstance(e.event, ShotFired)]
    assert [s.number for s in shots] == list(range(1, len(shots) + 1))
    assert sum(s.by_agent for s in shots) == finished.shots[1]

    assert host.engine is not None
    report = await history.audit(bus.js, host.engine, MATCH, "m1")
    assert report.ok, report.differences

    # Both players are on the ladder, the winner 16 points up.
    loaded = await bus.until(
        lambda: bus.state("ratings", "standard", Ladder), lambda s: s.rated_matches == 1
    )
    winner = "user:alice" if finished.winner == ALICE else "agent:probability"
    assert loaded.entries[winner].rating == 1516.0
    async with host.engine.connect() as conn:
        top = await ladder(conn, "standard")
        agents = await ladder(conn, "standard", kind="agent")
        mine = await standing(conn, "standard", ALICE)
        listed = await list_ladders(conn)
        played = await matches_of(conn, "alice")
    assert [s.rank for s in top] == [1, 2]
    assert top[0].player == finished.winner
    assert top[0].streak == 1
    assert top[0].wins == 1
    assert [s.player for s in agents] == [PROBABILITY]
    assert mine is not None
    assert mine.games == 1
    assert mine.rank == (1 if finished.winner == ALICE else 2)
    assert [(i.ladder_id, i.players, i.rated_matches) for i in listed] == [("standard", 2, 1)]
    assert [(m.match_id, m.status, m.shots_fired) for m in played] == [
        ("m1", "finished", sum(finished.shots))
    ]
    report = await history.audit(bus.js, host.engine, RATINGS, "standard")
    assert report.ok, report.differences


async def test_a_room_hosts_a_match_between_two_users(bus: Bus, host: Host) -> None:
    await bus.ok("r1", CreateRoom(name="duel", host="alice"))
    await bus.refused("r1", CreateRoom(name="again", host="alice"), "room_exists")
    await bus.ok("r1", JoinRoom(user="bob"))
    await bus.refused("r1", JoinRoom(user="carol"), "room_full")
    assert host.engine is not None
    async with host.engine.connect() as conn:
        rooms = await list_rooms(conn)
        bobs = await list_rooms(conn, member="bob")
    assert [(r.room_id, r.status, r.members) for r in rooms] == [("r1", "full", ("alice", "bob"))]
    assert [r.room_id for r in bobs] == ["r1"]

    await bus.ok("m2", CreateMatch(players=(ALICE, BOB), room_id="r1", seed=1, first=0))
    room = await bus.until(lambda: bus.state("lobby", "r1", Room), lambda r: r.status == "in_match")
    assert room.match_id == "m2"
    assert room.match_players == ("alice", "bob")
    await bus.refused("r1", LeaveRoom(user="bob"), "playing_match")
    await bus.refused("r1", CloseRoom(user="alice"), "room_in_match")

    await bus.ok("m2", PlaceFleet(player="alice", ships=FLEET))
    await bus.ok("m2", PlaceFleet(player="bob"))
    await bus.refused("m2", Fire(player="bob", row=0, col=0), "not_your_turn")
    await bus.ok("m2", Fire(player="alice", row=0, col=0))
    await bus.refused("m2", Fire(player="alice", row=0, col=1), "not_your_turn")
    await bus.ok("m2", Fire(player="bob", row=0, col=0))
    await bus.ok("m2", Chat(player="bob", text="good game"))
    await bus.refused("m2", Chat(player="carol", text="hi"), "not_a_player")
    done = await bus.ok("m2", Resign(player="bob"))
    assert _events(done) == ["match.finished.v1"]

    room = await bus.until(lambda: bus.state("lobby", "r1", Room), lambda r: r.status == "full")
    assert room.matches_played == 1
    assert room.match_id is None
    await bus.ok("r1", LeaveRoom(user="alice"))
    room = await bus.state("lobby", "r1", Room)
    assert (room.status, room.host, room.members) == ("open", "bob", ("bob",))
    await bus.ok("r1", LeaveRoom(user="bob"))
    await bus.refused("r1", JoinRoom(user="carol"), "room_closed")
    async with host.engine.connect() as conn:
        assert await list_rooms(conn) == []
        closed = await list_rooms(conn, status=("closed",))
    assert [(r.room_id, r.members, r.matches_played) for r in closed] == [("r1", (), 1)]

    for actor, key in ((LOBBY, "r1"), (MATCH, "m2")):
        report = await history.audit(bus.js, host.engine, actor, key)
        assert report.ok, (key, report.differences)
    ratings = await bus.until(
        lambda: bus.state("ratings", "standard", Ladder), lambda s: s.rated_matches == 1
    )
    assert ratings.entries["user:alice"].streak == 1
    assert ratings.entries["user:bob"].streak == -1


async def test_two_agents_play_a_whole_match_in_one_decision(bus: Bus) -> None:
    hunter, random_ = Player(kind="agent", id="hunt_target"), Player(kind="agent", id="random")
    created = await bus.ok("m3", CreateMatch(players=(hunter, random_), seed=5, rated=False))
    assert _events(created)[-1] == "match.finished.v1"
    state = await bus.state("match", "m3", MatchState)
    assert state.status == "finished"
    assert state.reason == "fleet_sunk"
    await bus.refused(
        "m4", CreateMatch(players=(ALICE, Player(kind="agent", id="nobody"))), "unknown_agent"
    )
    # The spectator's replay of a finished match hides nothing.
    shown = await replays.replay(bus.js, "m3")
    assert shown.finished
    assert shown.state == state
