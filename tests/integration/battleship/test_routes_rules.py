"""The pure parts behind the Battleship routes: move checks, shot targets, redaction, resume."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.battleship.errors import cell_name
from actors.match import rules
from actors.match.rules import MatchState
from gateway.battleship.frames import ChatFrame, FireFrame, PlaceFleetFrame, ResignFrame
from gateway.battleship.moves import BadTarget, check_move, target
from gateway.battleship.sockets import CloseSocket, parse_resume
from gateway.battleship.views import match_view, redact_outcome
from schemas.base import Context, Rejection
from schemas.battleship import CreateMatch, Fire, PlaceFleet, Player, Resign

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
AT = datetime(2026, 1, 1, tzinfo=UTC)


def ctx(n: int) -> Context:
    return Context(
        key="m", message_id=f"msg-{n}", subject="cmd.match.m.x", received_at=AT, correlation_id="c"
    )


def play(state: MatchState, command: Any, n: int, decide: Any = rules.decide) -> MatchState:
    events = decide(state, command, ctx(n))
    assert isinstance(events, list), events
    for event in events:
        state = rules.evolve(state, event)
    return state


def duel() -> MatchState:
    """alice (seat 0, fires first) against bob, both fleets placed."""
    state = rules.initial("m")
    state = play(state, CreateMatch(players=(ALICE, BOB), first=0, seed=3), 1)
    state = play(state, PlaceFleet(player="alice", seed=1), 2)
    return play(state, PlaceFleet(player="bob", seed=2), 3)


@given(st.integers(0, 25), st.integers(0, 25))
@settings(max_examples=60)
def test_a_cell_name_and_its_row_and_column_name_the_same_target(row: int, col: int) -> None:
    assert target(None, None, cell_name(row, col)) == (row, col)
    assert target(None, None, cell_name(row, col).lower()) == (row, col)
    assert target(row, col, None) == (row, col)


@pytest.mark.parametrize(
    ("row", "col", "cell", "field"),
    [
        (None, None, None, "row"),
        (1, None, None, "col"),
        (1, 2, "A1", "cell"),
        (0, None, "B2", "cell"),
    ],
)
def test_a_target_given_twice_or_half_is_refused(
    row: int | None, col: int | None, cell: str | None, field: str
) -> None:
    with pytest.raises(BadTarget) as refused:
        target(row, col, cell)
    assert refused.value.field == field


def code(refusal: Rejection | None) -> str | None:
    return None if refusal is None else refusal.code


def test_moves_are_checked_like_the_actor_checks_them() -> None:
    state = duel()
    assert code(check_move(rules.initial("m"), {0}, ChatFrame(text="hi"))) == "match_not_found"
    assert code(check_move(state, set(), ChatFrame(text="hi"))) == "not_a_player"
    assert code(check_move(state, {1}, FireFrame(cell="A1"))) == "not_your_turn"
    assert code(check_move(state, {0}, FireFrame(cell="K1"))) == "cell_out_of_bounds"
    assert code(check_move(state, {0}, PlaceFleetFrame())) == "fleet_already_placed"
    assert code(check_move(state, {0}, FireFrame(cell="A1"))) is None
    fired = play(state, Fire(player="alice", row=0, col=0), 4)
    fired = play(fired, Fire(player="bob", row=0, col=0), 5)
    assert code(check_move(fired, {0}, FireFrame(row=0, col=0))) == "cell_already_shot"
    assert code(check_move(fired, {1}, ResignFrame())) is None
    over = play(fired, Resign(player="bob"), 6)
    assert code(check_move(over, {0}, FireFrame(cell="C3"))) == "game_over"
    assert code(check_move(over, {0}, ChatFrame(text="gg"))) is None


def test_the_socket_checks_agree_with_the_actor_over_random_games() -> None:
    rng = random.Random(5)
    for game in range(3):
        state = duel()
        n = 10
        while state.status == "in_progress":
            seat = rng.randrange(2)
            row, col = rng.randrange(10), rng.randrange(10)
            frame = FireFrame(row=row, col=col)
            local = check_move(state, {seat}, frame)
            decided = rules.decide(
                state, Fire(player=(ALICE, BOB)[seat].id, row=row, col=col), ctx(n)
            )
            n += 1
            if local is None:
                assert isinstance(decided, list), (game, decided)
                for event in decided:
                    state = rules.evolve(state, event)
            else:
                assert isinstance(decided, Rejection), decided
                assert (local.code, local.kind) == (decided.code, decided.kind)


def test_outcomes_hide_the_agents_fleet_and_the_seed_but_not_your_own() -> None:
    agent = Player(kind="agent", id="random")
    created = rules.decide(rules.initial("m"), CreateMatch(players=(ALICE, agent), seed=9), ctx(1))
    assert isinstance(created, list)
    body = msgspec.json.encode(
        {
            "command_id": "c",
            "status": "applied",
            "events": [
                {"id": str(i), "subject": "s", "type": e.__struct_config__.tag, "data": e}
                for i, e in enumerate(created)
            ],
        }
    )
    shown = msgspec.json.decode(redact_outcome(body, "alice"))
    seed, fleet = shown["events"][0]["data"]["seed"], shown["events"][1]["data"]["ships"]
    assert (seed, fleet) == (0, [])
    assert shown["command_id"] == "c"
    own = play(rules.initial("m"), CreateMatch(players=(ALICE, agent), seed=9), 1)
    placed = rules.decide(own, PlaceFleet(player="alice", seed=4), ctx(2))
    assert isinstance(placed, list)
    body = msgspec.json.encode(
        {"events": [{"type": e.__struct_config__.tag, "data": e} for e in placed]}
    )
    assert redact_outcome(body, "alice") == body  # your own fleet, untouched
    assert msgspec.json.decode(redact_outcome(body, "carol"))["events"][0]["data"]["ships"] == []


def test_a_view_shows_the_viewers_fleet_and_hides_the_opponents_until_the_end() -> None:
    state = duel()
    mine = match_view(state, 3, "alice")
    assert (mine.you, mine.your_turn, mine.seed) == (0, True, None)
    assert mine.seats[0].fleet is not None
    assert mine.seats[1].fleet is None
    assert sum(row.count("S") for row in mine.seats[0].grid) == 17
    assert all(set(row) == {"."} for row in mine.seats[1].grid)
    spectator = match_view(state, 3, None)
    assert [s.fleet for s in spectator.seats] == [None, None]
    over = play(state, Resign(player="bob"), 9)
    ended = match_view(over, 4, None)
    assert ended.seed == 3
    assert all(s.fleet is not None for s in ended.seats)


@pytest.mark.parametrize(
    ("params", "first"),
    [({}, None), ({"last_seq": "0"}, 1), ({"last_seq": "41"}, 42), ({"from_seq": "7"}, 7)],
)
def test_a_resume_position_is_the_sequence_after_the_last_one_handled(
    params: dict[str, str], first: int | None
) -> None:
    assert parse_resume(params) == first


@pytest.mark.parametrize(
    "params",
    [
        {"last_seq": "x"},
        {"from_seq": "0"},
        {"last_seq": "1", "from_seq": "2"},
        {"last_seq": "-1"},
        {"last_seq": "²"},
        {"from_seq": "9" * 30},
    ],
)
def test_a_bad_resume_position_closes_the_socket(params: dict[str, str]) -> None:
    with pytest.raises(CloseSocket) as closed:
        parse_resume(params)
    assert (closed.value.code, closed.value.error.code) == (1008, "invalid_resume")
