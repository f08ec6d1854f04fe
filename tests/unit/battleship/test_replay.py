"""Replay redaction: hidden fleets and seed until the match ends, then everything."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.match import rules
from actors.match.replay import HIDDEN_SEED, ReplayEvent, redact, redact_all, seats_of
from schemas.base import Event
from schemas.battleship import (
    CreateMatch,
    Fire,
    FleetPlaced,
    MatchCreated,
    PlaceFleet,
    Player,
    Resign,
)
from tests.unit.battleship.support import Driver

ALICE, BOB = Player(kind="user", id="alice"), Player(kind="user", id="bob")
AT = datetime(2025, 6, 1, tzinfo=UTC)


def _recorded(events: list[Event]) -> list[ReplayEvent]:
    return [ReplayEvent(seq=i + 1, time=AT, id=f"e{i}", event=e) for i, e in enumerate(events)]


def _started() -> Driver[rules.MatchState]:
    m = Driver(rules.decide, rules.evolve, rules.initial("m1"), "m1", "match")
    m.ok(CreateMatch(players=(ALICE, BOB), seed=77, first=0))
    m.ok(PlaceFleet(player="alice", seed=1))
    m.ok(PlaceFleet(player="bob", seed=2))
    m.ok(Fire(player="alice", row=0, col=0))
    return m


def _fleets(events: list[ReplayEvent]) -> dict[int, int]:
    return {e.event.seat: len(e.event.ships) for e in events if isinstance(e.event, FleetPlaced)}


def test_a_player_sees_their_own_fleet_only_and_never_the_seed() -> None:
    m = _started()
    shown, finished = redact_all(_recorded(m.log), "alice")
    assert not finished
    assert _fleets(shown) == {0: 5, 1: 0}
    created = [e.event for e in shown if isinstance(e.event, MatchCreated)]
    assert [c.seed for c in created] == [HIDDEN_SEED]
    state = rules.replay([e.event for e in shown], "m1")
    assert state.fleets[0] == m.state.fleets[0]
    assert state.fleets[1] == ()
    # Everything public is untouched: the shots, the turn, the players.
    assert state.shots == m.state.shots
    assert state.turn == m.state.turn
    assert state.players == m.state.players


def test_a_spectator_sees_no_fleet_and_the_other_player_only_theirs() -> None:
    m = _started()
    assert _fleets(redact_all(_recorded(m.log), None)[0]) == {0: 0, 1: 0}
    assert _fleets(redact_all(_recorded(m.log), "mallory")[0]) == {0: 0, 1: 0}
    assert _fleets(redact_all(_recorded(m.log), "bob")[0]) == {0: 0, 1: 5}


def test_nothing_is_hidden_once_the_match_is_over() -> None:
    m = _started()
    m.ok(Resign(player="bob"))
    shown, finished = redact_all(_recorded(m.log), None)
    assert finished
    assert [e.event for e in shown] == m.log
    assert rules.replay([e.event for e in shown], "m1") == m.state


def test_seats_of_and_single_events() -> None:
    m = _started()
    assert seats_of(m.log, "bob") == {1}
    assert seats_of(m.log, "carol") == set()
    placed = next(e for e in m.log if isinstance(e, FleetPlaced) and e.seat == 1)
    assert redact(placed, {1}, finished=False) is placed
    assert redact(placed, {0}, finished=False).ships == ()  # type: ignore[attr-defined]
    assert redact(placed, set(), finished=True) is placed
