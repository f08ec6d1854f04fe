"""Properties of the engine over generated fleets, shot orders and placements."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors.battleship.engine import (
    Board,
    Game,
    Mark,
    Orientation,
    Outcome,
    Phase,
    Placement,
    Rules,
    layout,
)
from actors.battleship.errors import (
    CellAlreadyShot,
    GameOver,
    NotYourTurn,
    ShipOutOfBounds,
    ShipsOverlap,
    ShipsTouch,
)

RULES = Rules()
seeds = st.integers(min_value=0, max_value=2**32 - 1)
orders = st.permutations(range(100))


@settings(max_examples=40, deadline=None)
@given(seed=seeds, order=orders)
def test_any_legal_shot_sequence_wins_within_100_shots(seed: int, order: list[int]) -> None:
    board = Board.random(RULES, random.Random(seed))
    fleet = {c for p in board.placements for c in board.cells_of(p.ship)}
    last_needed = max(order.index(c) for c in fleet) + 1
    for shots, cell in enumerate(order, start=1):
        shot = board.fire_at(cell)
        assert shot.defeated == (shots == last_needed)
        if shot.defeated:
            break
    assert board.defeated
    assert board.shots == last_needed <= 100


@settings(max_examples=40, deadline=None)
@given(seed=seeds, order=orders)
def test_sunk_ships_stay_sunk(seed: int, order: list[int]) -> None:
    board = Board.random(RULES, random.Random(seed))
    sunk: set[str] = set()
    sunk_cells: set[int] = set()
    for cell in order:
        shot = board.fire_at(cell)
        if shot.outcome is Outcome.SUNK:
            assert shot.ship is not None
            assert shot.ship not in sunk
            sunk.add(shot.ship)
            sunk_cells |= set(shot.sunk_cells)
        assert {s.name for s in board.sunk()} == sunk
        marks = board.marks
        assert all(marks[c] == Mark.SUNK for c in sunk_cells)
        assert sum(m == Mark.SUNK for m in marks) == len(sunk_cells)
        if board.defeated:
            break


placements = st.lists(
    st.tuples(
        st.integers(min_value=-1, max_value=10),
        st.integers(min_value=-1, max_value=10),
        st.sampled_from(list(Orientation)),
    ),
    min_size=5,
    max_size=5,
)


def _cells(spec_length: int, row: int, col: int, orientation: Orientation) -> list[tuple[int, int]]:
    if orientation is Orientation.HORIZONTAL:
        return [(row, col + k) for k in range(spec_length)]
    return [(row + k, col) for k in range(spec_length)]


def _check_layout(rules: Rules, spots: list[tuple[int, int, Orientation]]) -> str:
    """Lay out ``spots`` (one per fleet ship); assert the verdict is right and return it."""
    fleet = [Placement(s.name, *spot) for s, spot in zip(rules.fleet, spots, strict=True)]
    wanted = [_cells(s.length, *spot) for s, spot in zip(rules.fleet, spots, strict=True)]
    try:
        laid = layout(rules, fleet)
    except ShipOutOfBounds:
        assert any(not (0 <= r < 10 and 0 <= c < 10) for ship in wanted for r, c in ship)
        return "out_of_bounds"
    except ShipsOverlap:
        flat = [cell for ship in wanted for cell in ship]
        assert len(set(flat)) < len(flat)
        return "overlap"
    except ShipsTouch:
        assert rules.no_touch
        return "touch"
    cells = [c for ship in laid for c in ship]
    assert len(cells) == len(set(cells)) == rules.ship_cells
    assert sorted(divmod(c, 10) for c in cells) == sorted(c for ship in wanted for c in ship)
    if rules.no_touch:
        owner = {c: i for i, ship in enumerate(laid) for c in ship}
        for c, i in owner.items():
            r, col = divmod(c, 10)
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if 0 <= r + dr < 10 and 0 <= col + dc < 10:
                        assert owner.get((r + dr) * 10 + col + dc, i) == i
    return "accepted"


@settings(max_examples=200, deadline=None)
@given(spots=placements, no_touch=st.booleans())
def test_no_overlapping_or_off_board_placement_is_ever_accepted(
    spots: list[tuple[int, int, Orientation]], no_touch: bool
) -> None:
    _check_layout(Rules(no_touch=no_touch), spots)


@settings(max_examples=200, deadline=None)
@given(
    seed=seeds,
    ship=st.integers(min_value=0, max_value=4),
    spot=st.tuples(
        st.integers(min_value=0, max_value=9),
        st.integers(min_value=0, max_value=9),
        st.sampled_from(list(Orientation)),
    ),
    no_touch=st.booleans(),
)
def test_moving_one_ship_of_a_legal_fleet_is_judged_correctly(
    seed: int, ship: int, spot: tuple[int, int, Orientation], no_touch: bool
) -> None:
    # Starting from a legal fleet makes accepted layouts and near misses common.
    rules = Rules(no_touch=no_touch)
    fleet = Board.random(rules, random.Random(seed)).placements
    spots = [(p.row, p.col, p.orientation) for p in fleet]
    spots[ship] = spot
    _check_layout(rules, spots)


class TwoPlayerGame(RuleBasedStateMachine):
    """Players fire legal and illegal shots at random; the rules must hold at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.game = Game(Rules.of(6, 6, (3, 2)))
        self.game.place_random(0, random.Random(0))
        self.game.place_random(1, random.Random(1))
        self.fired: list[set[int]] = [set(), set()]

    @precondition(lambda self: self.game.phase is Phase.BATTLE)
    @rule(cell=st.integers(min_value=0, max_value=35), in_turn=st.booleans())
    def fire(self, cell: int, in_turn: bool) -> None:
        turn = self.game.turn
        assert turn is not None
        seat = turn if in_turn else 1 - turn
        try:
            self.game.fire(seat, *divmod(cell, 6))
        except NotYourTurn:
            assert not in_turn
            assert self.game.turn == turn
        except CellAlreadyShot:
            assert cell in self.fired[seat]
            assert self.game.turn == turn
        else:
            assert in_turn
            assert cell not in self.fired[seat]
            self.fired[seat].add(cell)
            assert self.game.phase is Phase.FINISHED or self.game.turn == 1 - seat

    @precondition(lambda self: self.game.phase is Phase.FINISHED)
    @rule(seat=st.sampled_from([0, 1]))
    def nothing_after_the_end(self, seat: int) -> None:
        with pytest.raises(GameOver):
            self.game.fire(seat, 0, 0)

    @invariant()
    def shots_alternate_and_winner_sank_everything(self) -> None:
        seats = [s for s, _ in self.game.history]
        assert all(a != b for a, b in itertools.pairwise(seats))
        if self.game.winner is not None:
            loser = self.game.board(1 - self.game.winner)
            assert loser is not None
            assert loser.defeated


TestTwoPlayerGame = TwoPlayerGame.TestCase
TestTwoPlayerGame.settings = settings(max_examples=30, stateful_step_count=60, deadline=None)
