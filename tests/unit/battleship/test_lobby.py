"""Lobby rules: room lifecycle open -> full -> in_match -> closed, and reactions to matches."""

from __future__ import annotations

from actors.lobby import rules
from schemas.base import Rejection
from schemas.battleship import (
    BoardSpec,
    CloseRoom,
    CreateRoom,
    Enroll,
    JoinRoom,
    LeaveRoom,
    MatchCreated,
    MatchFinished,
    Player,
    RoomClosed,
    RoomCreated,
    RoomUpdated,
    ShipSpec,
)
from tests.unit.battleship.support import T0, Driver, context

ALICE, BOB, CARO = "alice", "bob", "caro"


def room(key: str = "r1", **create: object) -> Driver[rules.Room]:
    driver = Driver(rules.decide, rules.evolve, rules.initial(key), key, "lobby")
    driver.ok(CreateRoom(name="Friday", host=ALICE, **create))  # type: ignore[arg-type]
    return driver


def users(*ids: str) -> tuple[Player, Player]:
    a, b = (Player(kind="user", id=i) for i in ids)
    return a, b


def created(match_players: tuple[Player, Player], room_id: str | None = "r1") -> MatchCreated:
    return MatchCreated(
        players=match_players,
        rated=True,
        board=BoardSpec(),
        seed=1,
        first=0,
        at=T0,
        room_id=room_id,
    )


def finished(match_players: tuple[Player, Player], room_id: str | None = "r1") -> MatchFinished:
    return MatchFinished(
        winner=match_players[0],
        loser=match_players[1],
        winner_seat=0,
        reason="fleet_sunk",
        rated=True,
        ladder="standard",
        shots=(40, 39),
        at=T0,
        room_id=room_id,
    )


def match_subject(match_id: str, name: str) -> str:
    return f"evt.match.{match_id}.{name}"


def test_create() -> None:
    r = room(capacity=3, rated=False)
    (event,) = r.log
    assert isinstance(event, RoomCreated)
    assert event.members == (ALICE,)
    assert r.state.status == "open"
    assert (r.state.room_id, r.state.host, r.state.capacity, r.state.rated) == (
        "r1",
        ALICE,
        3,
        False,
    )
    assert r.state.created_at == event.at
    refused = r.refused(CreateRoom(name="again", host=BOB))
    assert (refused.code, refused.kind) == ("room_exists", "conflict")


def test_create_refuses_an_unplayable_board() -> None:
    r = Driver(rules.decide, rules.evolve, rules.initial("r2"), "r2", "lobby")
    bad = BoardSpec(height=2, width=2, fleet=(ShipSpec(name="carrier", length=5),))
    refused = r.refused(CreateRoom(name="tiny", host=ALICE, board=bad))
    assert refused.code == "invalid_rules"
    assert "1 to 2 cells long" in refused.reason


def test_join_until_full() -> None:
    r = room()
    (event,) = r.ok(JoinRoom(user=BOB))
    assert isinstance(event, RoomUpdated)
    assert (event.change, event.user, event.status) == ("joined", BOB, "full")
    assert r.state.members == (ALICE, BOB)
    refused = r.refused(JoinRoom(user=CARO))
    assert (refused.code, refused.kind) == ("room_full", "conflict")
    assert "2/2" in refused.reason
    assert r.refused(JoinRoom(user=BOB)).code == "already_member"


def test_unknown_room() -> None:
    r = Driver(rules.decide, rules.evolve, rules.initial("nope"), "nope", "lobby")
    refused = r.refused(JoinRoom(user=BOB))
    assert (refused.code, refused.kind) == ("room_not_found", "not_found")
    assert r.refused(LeaveRoom(user=BOB)).kind == "not_found"
    assert r.refused(CloseRoom(user=BOB)).kind == "not_found"


def test_nobody_acts_for_someone_else() -> None:
    r = room()
    refused = r.refused(JoinRoom(user=BOB), principal=CARO)
    assert (refused.code, refused.kind) == ("wrong_principal", "forbidden")
    r.ok(JoinRoom(user=BOB), principal=BOB)


def test_leave_hands_over_the_host_and_reopens() -> None:
    r = room()
    r.ok(JoinRoom(user=BOB))
    (event,) = r.ok(LeaveRoom(user=ALICE))
    assert isinstance(event, RoomUpdated)
    assert (event.host, event.members, event.status) == (BOB, (BOB,), "open")
    assert r.refused(LeaveRoom(user=ALICE)).code == "not_a_member"
    (closing,) = r.ok(LeaveRoom(user=BOB))
    assert isinstance(closing, RoomClosed)
    assert closing.reason == "empty"
    assert r.state.status == "closed"
    assert r.refused(JoinRoom(user=CARO)).code == "room_closed"


def test_only_the_host_closes() -> None:
    r = room()
    r.ok(JoinRoom(user=BOB))
    refused = r.refused(CloseRoom(user=BOB))
    assert (refused.code, refused.kind) == ("not_host", "forbidden")
    (event,) = r.ok(CloseRoom(user=ALICE))
    assert isinstance(event, RoomClosed)
    assert event.reason == "host_closed"
    assert r.refused(CloseRoom(user=ALICE)).code == "room_closed"


def test_match_lifecycle_in_a_room() -> None:
    r = room(capacity=3)
    r.ok(JoinRoom(user=BOB))
    r.ok(JoinRoom(user=CARO))
    assert r.state.status == "full"
    (started,) = r.ok(created(users(ALICE, BOB)), subject=match_subject("m7", "created"))
    assert isinstance(started, RoomUpdated)
    assert (started.change, started.match_id, started.players) == (
        "match_started",
        "m7",
        (ALICE, BOB),
    )
    assert r.state.status == "in_match"
    assert r.refused(LeaveRoom(user=ALICE)).code == "playing_match"
    assert r.refused(CloseRoom(user=ALICE)).code == "room_in_match"
    r.ok(LeaveRoom(user=CARO))  # a spectator may go
    assert r.state.status == "in_match"
    assert r.refused(JoinRoom(user=CARO)).code == "room_in_match"
    assert r.ok(finished(users(ALICE, BOB)), subject=match_subject("other", "finished")) == []
    (ended,) = r.ok(finished(users(ALICE, BOB)), subject=match_subject("m7", "finished"))
    assert isinstance(ended, RoomUpdated)
    assert (ended.change, ended.status) == ("match_ended", "open")
    assert r.state.match_id is None
    assert r.state.matches_played == 1
    r.ok(JoinRoom(user=CARO))
    assert r.state.status == "full"


def test_room_can_close_when_its_match_ends() -> None:
    r = room(close_after_match=True)
    r.ok(JoinRoom(user=BOB))
    r.ok(created(users(BOB, ALICE)), subject=match_subject("m1", "created"))
    (event,) = r.ok(finished(users(BOB, ALICE)), subject=match_subject("m1", "finished"))
    assert isinstance(event, RoomClosed)
    assert (event.reason, event.match_id) == ("match_ended", "m1")
    assert r.state.status == "closed"
    assert r.state.matches_played == 1
    # The match is over, so the closed room no longer names it or its players.
    assert (r.state.match_id, r.state.match_players) == (None, ())
    assert r.state.members == (ALICE, BOB)


def test_the_last_one_out_closes_an_empty_room() -> None:
    r = room()
    r.ok(JoinRoom(user=BOB))
    r.ok(LeaveRoom(user=ALICE))
    (event,) = r.ok(LeaveRoom(user=BOB))
    assert isinstance(event, RoomClosed)
    assert (event.reason, event.user) == ("empty", BOB)
    assert (r.state.status, r.state.members) == ("closed", ())


def test_matches_that_do_not_fit_the_room_are_ignored() -> None:
    r = room()
    assert r.ok(created(users(ALICE, BOB)), subject=match_subject("m1", "created")) == []
    r.ok(JoinRoom(user=BOB))
    strangers = users(ALICE, CARO)
    assert r.ok(created(strangers), subject=match_subject("m1", "created")) == []
    assert r.state.status == "full"
    agent_match = (Player(kind="user", id=ALICE), Player(kind="agent", id="hunt_target"))
    r.ok(created(agent_match), subject=match_subject("m2", "created"))
    assert r.state.status == "in_match"


def test_room_of_routes_match_events() -> None:
    ctx = context("m1", domain="match")
    assert rules.room_of(created(users(ALICE, BOB), room_id="r9"), ctx) == "r9"
    assert rules.room_of(finished(users(ALICE, BOB), room_id=None), ctx) == rules.NO_ROOM
    assert rules.room_of(JoinRoom(user=ALICE), context("r3")) == "r3"
    orphan = rules.decide(
        rules.initial(rules.NO_ROOM),
        created(users(ALICE, BOB), room_id=None),
        context(rules.NO_ROOM, subject=match_subject("m1", "created")),
    )
    assert orphan == []


def test_unsupported_message() -> None:
    r = room()
    refused = rules.decide(r.state, Enroll(player=Player(kind="user", id=ALICE)), context("r1"))
    assert isinstance(refused, Rejection)
    assert refused.code == "unsupported_message"


def test_folding_the_log_rebuilds_the_state() -> None:
    r = room(capacity=3)
    r.ok(JoinRoom(user=BOB))
    r.ok(JoinRoom(user=CARO))
    r.ok(created(users(ALICE, BOB)), subject=match_subject("m1", "created"))
    r.ok(LeaveRoom(user=CARO))
    r.ok(finished(users(ALICE, BOB)), subject=match_subject("m1", "finished"))
    r.ok(LeaveRoom(user=ALICE))
    state = rules.initial("r1")
    for event in r.log:
        state = rules.evolve(state, event)
    assert state == r.state
    assert (state.host, state.members, state.status) == (BOB, (BOB,), "open")
