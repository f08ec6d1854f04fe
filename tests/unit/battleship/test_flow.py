"""Lobby, match and ratings together, each reacting to the others' events as routed at runtime."""

from __future__ import annotations

from actors.lobby import rules as lobby
from actors.match import rules as match
from actors.ratings import rules as ratings
from schemas.base import Event
from schemas.battleship import CreateMatch, CreateRoom, Fire, JoinRoom, PlaceFleet, Player, Resign
from schemas.subjects import event_subject_for
from tests.unit.battleship.support import Driver, context


def test_room_to_match_to_ladder() -> None:
    room = Driver(lobby.decide, lobby.evolve, lobby.initial("r1"), "r1", "lobby")
    game = Driver(match.decide, match.evolve, match.initial("m1"), "m1", "match")
    ladders: dict[str, Driver[ratings.Ladder]] = {}

    def publish(events: list[Event] | tuple[Event, ...]) -> None:
        """Route match events to the lobby and the ratings, keyed like the runtime would."""
        for event in events:
            subject = event_subject_for(type(event), "m1")
            if isinstance(event, lobby.REACTIONS):
                assert lobby.room_of(event, context("m1")) == "r1"
                room.ok(event, subject=subject)
            if isinstance(event, ratings.REACTIONS):
                key = ratings.ladder_key(event, context("m1"))
                driver = ladders.setdefault(
                    key,
                    Driver(ratings.decide, ratings.evolve, ratings.initial(key), key, "ratings"),
                )
                driver.ok(event, subject=subject)

    room.ok(CreateRoom(name="duel", host="alice"))
    room.ok(JoinRoom(user="bob"))
    assert room.state.status == "full"

    players = (Player(kind="user", id="alice"), Player(kind="user", id="bob"))
    publish(game.ok(CreateMatch(players=players, room_id="r1", seed=3, first=0)))
    assert room.state.status == "in_match"
    assert room.state.match_id == "m1"
    publish(game.ok(PlaceFleet(player="alice")))
    publish(game.ok(PlaceFleet(player="bob")))
    publish(game.ok(Fire(player="alice", row=0, col=0)))
    publish(game.ok(Resign(player="bob")))

    assert game.state.status == "finished"
    assert room.state.status == "full"
    assert room.state.matches_played == 1
    standard = ladders["standard"].state
    assert standard.entries["user:alice"].rating == 1516.0
    assert standard.entries["user:bob"].streak == -1
