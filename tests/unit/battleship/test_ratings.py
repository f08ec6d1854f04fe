"""Ratings rules: Elo updates from finished rated matches, ladder entries and streaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.ratings import rules
from schemas.base import Rejection
from schemas.battleship import Enroll, MatchFinished, MatchRated, Player, PlayerEnrolled
from tests.unit.battleship.support import T0, Driver, context

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
HUNTER = Player(kind="agent", id="hunt_target")


def ladder(key: str = "standard") -> Driver[rules.Ladder]:
    return Driver(rules.decide, rules.evolve, rules.initial(key), key, "ratings")


def finished(
    winner: Player, loser: Player, *, rated: bool = True, board: str = "standard"
) -> MatchFinished:
    return MatchFinished(
        winner=winner,
        loser=loser,
        winner_seat=0,
        reason="fleet_sunk",
        rated=rated,
        ladder=board,
        shots=(45, 44),
        at=T0,
    )


def rate(
    d: Driver[rules.Ladder], winner: Player, loser: Player, match_id: str = "m1"
) -> MatchRated:
    (event,) = d.ok(finished(winner, loser), subject=f"evt.match.{match_id}.finished")
    assert isinstance(event, MatchRated)
    return event


def test_documented_constants() -> None:
    assert rules.INITIAL_RATING == 1500.0
    assert rules.K_FACTOR == 32.0


def test_expected_score() -> None:
    assert rules.expected_score(1500, 1500) == 0.5
    assert rules.expected_score(1900, 1500) == pytest.approx(10 / 11)
    assert rules.expected_score(1600, 1400) + rules.expected_score(1400, 1600) == pytest.approx(1)


def test_first_match_between_newcomers() -> None:
    d = ladder()
    event = rate(d, ALICE, HUNTER, "m9")
    assert event.match_id == "m9"
    win, loss = event.changes
    assert (win.player, win.result, win.before, win.after) == (ALICE, "win", 1500.0, 1516.0)
    assert (loss.player, loss.result, loss.before, loss.after) == (HUNTER, "loss", 1500.0, 1484.0)
    assert (win.games, win.wins, win.losses, win.streak) == (1, 1, 0, 1)
    assert (loss.games, loss.wins, loss.losses, loss.streak) == (1, 0, 1, -1)
    entry = d.state.entries["agent:hunt_target"]
    assert (entry.rating, entry.peak, entry.last_played) == (1484.0, 1500.0, event.at)
    assert d.state.rated_matches == 1


def test_upsets_move_ratings_more_and_streaks_flip() -> None:
    d = ladder()
    rate(d, ALICE, BOB, "m1")
    rate(d, ALICE, BOB, "m2")
    favourite = d.state.entries["user:alice"].rating
    upset = rate(d, BOB, ALICE, "m3")
    gain = upset.changes[0].after - upset.changes[0].before
    assert gain > 16
    assert upset.changes[0].after == pytest.approx(upset.changes[0].before + gain)
    alice = d.state.entries["user:alice"]
    bob = d.state.entries["user:bob"]
    assert alice.rating < favourite
    assert (alice.streak, bob.streak) == (-1, 1)
    assert (alice.games, alice.wins, alice.losses) == (3, 2, 1)
    assert alice.peak == favourite


def test_unrated_and_other_ladders_are_ignored() -> None:
    d = ladder()
    assert d.ok(finished(ALICE, BOB, rated=False), subject="evt.match.m1.finished") == []
    assert d.ok(finished(ALICE, BOB, board="6x6_3-2"), subject="evt.match.m2.finished") == []
    assert d.state.entries == {}


def test_ladder_key_routes_by_setup() -> None:
    assert rules.ladder_key(finished(ALICE, BOB, board="6x6_3-2"), context("m1")) == "6x6_3-2"
    assert rules.ladder_key(Enroll(player=ALICE), context("standard")) == "standard"


def test_enroll() -> None:
    d = ladder()
    (event,) = d.ok(Enroll(player=HUNTER))
    assert isinstance(event, PlayerEnrolled)
    assert event.rating == 1500.0
    assert d.state.entries["agent:hunt_target"].games == 0
    refused = d.refused(Enroll(player=HUNTER))
    assert (refused.code, refused.kind) == ("already_enrolled", "conflict")
    d.ok(Enroll(player=Player(kind="user", id="hunt_target")))
    assert len(d.state.entries) == 2


def test_standings() -> None:
    d = ladder()
    d.ok(Enroll(player=Player(kind="user", id="zed")))
    rate(d, ALICE, BOB, "m1")
    rate(d, HUNTER, BOB, "m2")
    order = [e.player.id for e in rules.standings(d.state)]
    assert order[0] == "alice" or order[0] == "hunt_target"
    assert order[-1] == "bob"
    assert order.index("zed") == 2


def test_unsupported_message() -> None:
    decision = rules.decide(
        rules.initial("standard"),
        PlayerEnrolled(player=ALICE, rating=1.0, at=T0),
        context("standard"),
    )
    assert isinstance(decision, Rejection)
    assert decision.code == "unsupported_message"


players = st.sampled_from([ALICE, BOB, HUNTER, Player(kind="agent", id="probability")])


@settings(max_examples=40, deadline=None)
@given(games=st.lists(st.tuples(players, players).filter(lambda p: p[0] != p[1]), max_size=25))
def test_ladder_invariants(games: list[tuple[Player, Player]]) -> None:
    d = ladder()
    for n, (winner, loser) in enumerate(games):
        rate(d, winner, loser, f"m{n}")
    entries = d.state.entries.values()
    # Zero-sum up to the two-decimal rounding of each update.
    total = sum(e.rating for e in entries)
    assert total == pytest.approx(1500.0 * len(d.state.entries), abs=0.01 * len(games) + 1e-9)
    for e in entries:
        assert e.games == e.wins + e.losses
        assert 1 <= abs(e.streak) <= e.games
        assert e.peak >= e.rating
    assert d.state.rated_matches == len(games)
    state = rules.initial("standard")
    for event in d.log:
        state = rules.evolve(state, event)
    assert state == d.state
