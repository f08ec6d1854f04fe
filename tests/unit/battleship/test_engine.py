"""Engine rules: setup validation, shots, sinking, turn rotation, victory and error messages."""

from __future__ import annotations

import random

import numpy as np
import pytest

from actors.battleship.engine import (
    STANDARD_FLEET,
    Board,
    Game,
    Mark,
    Orientation,
    Outcome,
    Phase,
    Placement,
    Rules,
    ShipSpec,
    fleet_of,
    layout,
    random_placements,
)
from actors.battleship.errors import (
    BattleshipError,
    CellAlreadyShot,
    CellOutOfBounds,
    DuplicateShip,
    FleetAlreadyPlaced,
    FleetDoesNotFit,
    FleetsNotPlaced,
    GameOver,
    InvalidRules,
    InvalidSeat,
    MissingShips,
    NotYourTurn,
    PlacementError,
    ShipOutOfBounds,
    ShipsOverlap,
    ShipsTouch,
    UnknownShip,
    cell_name,
)
from tests.unit.battleship.support import FLEET, FLEET_CELLS

H, V = Orientation.HORIZONTAL, Orientation.VERTICAL


def replace_ship(ship: str, row: int, col: int, orientation: Orientation) -> list[Placement]:
    return [p if p.ship != ship else Placement(ship, row, col, orientation) for p in FLEET]


class TestRules:
    def test_defaults_are_the_classic_game(self) -> None:
        rules = Rules()
        assert (rules.height, rules.width, rules.cells) == (10, 10, 100)
        assert rules.fleet == STANDARD_FLEET
        assert rules.lengths == (5, 4, 3, 3, 2)
        assert rules.ship_cells == 17
        assert [s.name for s in rules.fleet] == [
            "carrier",
            "battleship",
            "cruiser",
            "submarine",
            "destroyer",
        ]

    def test_fleet_of_names_ships_by_length(self) -> None:
        assert fleet_of([5, 4, 3, 3, 2]) == STANDARD_FLEET
        assert [s.name for s in fleet_of([3, 2])] == ["cruiser", "destroyer"]
        assert [s.name for s in fleet_of([2, 2, 3, 3, 3])] == [
            "destroyer",
            "destroyer_2",
            "cruiser",
            "submarine",
            "submarine_2",
        ]
        assert [s.name for s in fleet_of([6, 1, 1])] == ["ship6", "ship1", "ship1_2"]

    def test_small_board_from_lengths(self) -> None:
        rules = Rules.of(6, 6, (3, 2), no_touch=True)
        assert rules.cells == 36
        assert rules.no_touch
        assert rules.ship_cells == 5

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"height": 0}, "height must be between 1 and 26"),
            ({"width": 27}, "width must be between 1 and 26"),
            ({"fleet": ()}, "at least one ship"),
            ({"fleet": (ShipSpec("a", 2), ShipSpec("a", 3))}, "unique"),
            ({"fleet": (ShipSpec("a", 11),)}, "1 to 10 cells long"),
            ({"fleet": (ShipSpec("a", 0),)}, "1 to 10 cells long"),
            ({"fleet": (ShipSpec("", 2),)}, "needs a name"),
            ({"height": 2, "width": 2, "fleet": fleet_of([2, 2, 1])}, "covers 5 cells"),
        ],
    )
    def test_unplayable_rules_are_refused(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(InvalidRules, match=message):
            Rules(**kwargs)  # type: ignore[arg-type]

    def test_index_and_cell_check_bounds(self) -> None:
        rules = Rules.of(6, 8, (2,))
        assert rules.index(2, 3) == 19
        assert rules.cell(19) == (2, 3)
        with pytest.raises(CellOutOfBounds, match="off the 6x8 board"):
            rules.index(6, 0)
        with pytest.raises(CellOutOfBounds):
            rules.cell(48)
        with pytest.raises(CellOutOfBounds):
            rules.cell(-1)


class TestPlacement:
    def test_valid_fleet_lays_out_every_cell(self) -> None:
        cells = layout(Rules(), FLEET)
        assert [len(c) for c in cells] == [5, 4, 3, 3, 2]
        flat = {divmod(c, 10) for ship in cells for c in ship}
        assert flat == FLEET_CELLS

    def test_orientation_accepts_strings_and_rejects_nonsense(self) -> None:
        assert Placement("carrier", 0, 0, "vertical").orientation is V  # type: ignore[arg-type]
        with pytest.raises(PlacementError, match="'horizontal' or 'vertical'"):
            Placement("carrier", 0, 0, "diagonal")  # type: ignore[arg-type]

    def test_unknown_ship(self) -> None:
        with pytest.raises(UnknownShip, match="no ship called 'dinghy'") as info:
            layout(Rules(), [*FLEET, Placement("dinghy", 8, 0)])
        assert info.value.code == "unknown_ship"

    def test_duplicate_ship(self) -> None:
        with pytest.raises(DuplicateShip, match="destroyer is placed twice"):
            layout(Rules(), [*FLEET, Placement("destroyer", 7, 0)])

    def test_missing_ships(self) -> None:
        with pytest.raises(MissingShips, match="missing: cruiser, destroyer") as info:
            layout(Rules(), [p for p in FLEET if p.ship not in ("cruiser", "destroyer")])
        assert info.value.ships == ("cruiser", "destroyer")

    @pytest.mark.parametrize(
        ("row", "col", "orientation"),
        [(0, 6, H), (7, 0, V), (-1, 0, H), (0, -1, V), (10, 0, H)],
    )
    def test_ship_out_of_bounds(self, row: int, col: int, orientation: Orientation) -> None:
        with pytest.raises(ShipOutOfBounds, match="does not fit on the 10x10 board"):
            layout(Rules(), replace_ship("carrier", row, col, orientation))

    def test_overlap_names_both_ships_and_the_cell(self) -> None:
        with pytest.raises(ShipsOverlap, match="destroyer and the cruiser both cover D5") as info:
            layout(Rules(), replace_ship("destroyer", 2, 4, V))
        assert (info.value.row, info.value.col) == (3, 4)

    def test_touching_is_fine_unless_no_touch(self) -> None:
        touching = replace_ship("destroyer", 4, 4, H)  # diagonal to nothing, below the cruiser
        layout(Rules(), touching)
        with pytest.raises(ShipsTouch, match="touches the cruiser"):
            layout(Rules(no_touch=True), touching)
        diagonal = replace_ship("destroyer", 4, 6, H)  # corner to corner with the cruiser
        with pytest.raises(ShipsTouch, match="even diagonally"):
            layout(Rules(no_touch=True), diagonal)
        layout(Rules(no_touch=True), FLEET)

    def test_placement_errors_share_a_base(self) -> None:
        for error in (UnknownShip, DuplicateShip, MissingShips, ShipsOverlap, ShipsTouch):
            assert issubclass(error, PlacementError)
            assert issubclass(error, BattleshipError)

    def test_board_keeps_placements_in_fleet_order(self) -> None:
        board = Board(Rules(), reversed(FLEET))
        assert board.placements == FLEET


class TestRandomPlacement:
    def test_same_seed_same_fleet(self) -> None:
        rules = Rules()
        assert random_placements(rules, random.Random(5)) == random_placements(
            rules, random.Random(5)
        )
        assert random_placements(rules, np.random.default_rng(5)) == random_placements(
            rules, np.random.default_rng(5)
        )

    def test_different_seeds_differ(self) -> None:
        fleets = {random_placements(Rules(), random.Random(s)) for s in range(20)}
        assert len(fleets) == 20

    @pytest.mark.parametrize("no_touch", [False, True])
    def test_random_fleets_are_legal(self, no_touch: bool) -> None:
        rules = Rules(no_touch=no_touch)
        for seed in range(50):
            layout(rules, random_placements(rules, random.Random(seed)))

    def test_tight_board_still_places(self) -> None:
        rules = Rules.of(2, 2, (2, 2))
        for seed in range(10):
            layout(rules, random_placements(rules, random.Random(seed)))

    def test_impossible_fleet_raises(self) -> None:
        rules = Rules.of(3, 3, (3, 3, 3), no_touch=True)
        with pytest.raises(FleetDoesNotFit, match="no legal arrangement"):
            random_placements(rules, random.Random(0))


class TestBoard:
    def test_miss_hit_sunk(self) -> None:
        board = Board(Rules(), FLEET)
        assert board.fire(1, 1) == type(board.fire(9, 9))(1, 1, Outcome.MISS)
        hit = board.fire(9, 4)
        assert hit.outcome is Outcome.HIT
        assert hit.ship is None  # a plain hit does not reveal the ship type
        assert board.mark(9, 4) is Mark.HIT
        sunk = board.fire(9, 5)
        assert sunk.outcome is Outcome.SUNK
        assert sunk.ship == "destroyer"
        assert sunk.sunk_cells == (94, 95)
        assert not sunk.defeated
        assert board.mark(9, 4) is Mark.SUNK
        assert board.mark(9, 5) is Mark.SUNK
        assert [s.name for s in board.sunk()] == ["destroyer"]
        assert board.shots == 4

    def test_repeated_shot_explains_itself(self) -> None:
        board = Board(Rules(), FLEET)
        board.fire(1, 6)
        with pytest.raises(CellAlreadyShot, match=r"B7 was already fired at \(miss\)"):
            board.fire(1, 6)
        board.fire_at(94)
        board.fire_at(95)
        with pytest.raises(CellAlreadyShot, match=r"J5 was already fired at \(sunk\)"):
            board.fire(9, 4)
        assert board.shots == 3

    def test_out_of_bounds_shot(self) -> None:
        board = Board(Rules(), FLEET)
        with pytest.raises(CellOutOfBounds, match="row 10, column 3 is off the 10x10 board"):
            board.fire(10, 3)
        with pytest.raises(CellOutOfBounds):
            board.fire_at(100)
        assert board.shots == 0

    def test_sinking_everything_defeats_the_board(self) -> None:
        board = Board(Rules(), FLEET)
        shots = [board.fire(r, c) for r, c in sorted(FLEET_CELLS)]
        assert sum(s.outcome is Outcome.SUNK for s in shots) == 5
        assert shots[-1].defeated
        assert board.defeated
        assert board.afloat() == ()
        with pytest.raises(GameOver):
            board.fire(9, 9)

    def test_view_reports_marks_and_ships_afloat(self) -> None:
        board = Board(Rules(), FLEET)
        board.fire(9, 4)
        board.fire(9, 5)
        board.fire(0, 9)
        view = board.view()
        assert view.remaining == (5, 4, 3, 3)
        assert view.marks[94] == Mark.SUNK
        assert view.marks[9] == Mark.MISS
        assert len(view.unknown()) == 97

    def test_owner_knowledge(self) -> None:
        board = Board(Rules(), FLEET)
        assert board.ship_at(3, 4) == "cruiser"
        assert board.ship_at(1, 1) is None
        assert board.cells_of("submarine") == (58, 68, 78)
        with pytest.raises(UnknownShip):
            board.cells_of("dinghy")

    def test_render(self) -> None:
        board = Board(Rules(), FLEET)
        board.fire(0, 0)
        board.fire(1, 0)
        text = board.render()
        assert text.splitlines()[1].split()[:3] == ["A", "X", "."]
        assert text.splitlines()[2].split()[:2] == ["B", "o"]
        revealed = board.render(reveal=True)
        assert revealed.splitlines()[1].split()[:3] == ["A", "X", "S"]


def placed_game(first: int = 0) -> Game:
    game = Game(Rules(), first=first)
    game.place_fleet(0, FLEET)
    game.place_random(1, random.Random(1))
    return game


class TestGame:
    def test_phases(self) -> None:
        game = Game()
        assert game.phase is Phase.PLACEMENT
        assert game.turn is None
        game.place_fleet(0, FLEET)
        assert game.phase is Phase.PLACEMENT
        game.place_random(1, random.Random(3))
        assert game.phase is Phase.BATTLE
        assert game.turn == 0

    def test_firing_before_both_fleets_are_placed(self) -> None:
        game = Game()
        game.place_fleet(1, FLEET)
        with pytest.raises(FleetsNotPlaced, match="waiting for player 1 to place"):
            game.fire(1, 0, 0)

    def test_fleet_cannot_be_placed_twice(self) -> None:
        game = Game()
        game.place_fleet(0, FLEET)
        with pytest.raises(FleetAlreadyPlaced, match="player 1 has already placed"):
            game.place_random(0, random.Random(0))

    def test_turn_passes_after_every_shot_hit_or_miss(self) -> None:
        game = placed_game()
        turns = []
        for i in range(6):
            seat = game.turn
            assert seat is not None
            turns.append(seat)
            game.fire(seat, i, 9)
        assert turns == [0, 1, 0, 1, 0, 1]

    def test_shooting_out_of_turn(self) -> None:
        game = placed_game(first=1)
        assert game.turn == 1
        with pytest.raises(NotYourTurn, match="it is player 2's turn, not player 1's") as info:
            game.fire(0, 0, 0)
        assert info.value.kind == "conflict"
        assert game.turn == 1

    def test_invalid_shot_keeps_the_turn(self) -> None:
        game = placed_game()
        with pytest.raises(CellOutOfBounds):
            game.fire(0, 11, 0)
        assert game.turn == 0
        game.fire(0, 0, 0)
        game.fire(1, 0, 0)
        with pytest.raises(CellAlreadyShot):
            game.fire(0, 0, 0)
        assert game.turn == 0

    def test_win_and_acting_after_the_end(self) -> None:
        game = Game(Rules(), first=1)
        game.place_fleet(0, FLEET)
        game.place_fleet(1, FLEET)
        opponent_misses = iter(
            (r, c) for r in range(10) for c in range(10) if (r, c) not in FLEET_CELLS
        )
        for r, c in sorted(FLEET_CELLS):
            game.fire(1, *next(opponent_misses))
            shot = game.fire(0, r, c)
        assert shot.defeated
        assert game.phase is Phase.FINISHED
        assert game.winner == 0
        assert game.turn is None
        assert len(game.history) == 34
        with pytest.raises(GameOver, match="player 1 won"):
            game.fire(1, 9, 9)
        with pytest.raises(GameOver):
            game.resign(1)
        with pytest.raises(GameOver):
            game.place_fleet(0, FLEET)

    def test_resign(self) -> None:
        game = placed_game()
        game.resign(0)
        assert game.winner == 1
        assert game.resigned == 0
        assert game.phase is Phase.FINISHED

    def test_views_hide_the_fleet(self) -> None:
        game = placed_game()
        game.fire(0, 0, 0)
        view = game.view_for(1)
        assert set(view.marks) == {Mark.UNKNOWN}
        assert game.view_for(0).marks.count(Mark.UNKNOWN) == 99

    def test_seats_are_checked(self) -> None:
        with pytest.raises(InvalidSeat, match="seat 2 does not exist"):
            Game(first=2)
        with pytest.raises(InvalidSeat):
            placed_game().fire(-1, 0, 0)

    def test_same_seed_same_game(self) -> None:
        def play(seed: int) -> list[tuple[int, int, int, str]]:
            rng = random.Random(seed)
            game = Game(Rules.of(6, 6, (3, 2)))
            game.place_random(0, rng)
            game.place_random(1, rng)
            while game.phase is Phase.BATTLE:
                seat = game.turn
                assert seat is not None
                cells = game.view_for(seat).unknown()
                game.fire(seat, *divmod(cells[rng.randrange(len(cells))], 6))
            return [(s, sh.row, sh.col, sh.outcome.value) for s, sh in game.history]

        assert play(11) == play(11)
        assert play(11) != play(12)


def test_cell_names() -> None:
    assert cell_name(0, 0) == "A1"
    assert cell_name(1, 6) == "B7"
    assert cell_name(9, 9) == "J10"
    assert cell_name(30, 2) == "(row 30, column 2)"


def test_every_error_has_a_code_and_a_kind() -> None:
    def subclasses(cls: type[BattleshipError]) -> set[type[BattleshipError]]:
        out = set()
        for sub in cls.__subclasses__():
            out |= {sub} | subclasses(sub)
        return out

    codes = [cls.code for cls in subclasses(BattleshipError)]
    assert len(codes) == len(set(codes))
    assert all(cls.kind in ("invalid", "conflict") for cls in subclasses(BattleshipError))
    assert all((cls.__doc__ or "").startswith("Raised when") for cls in subclasses(BattleshipError))
