"""Errors raised by the Battleship engine, one class per rule a move or setup can break."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

ErrorKind = Literal["invalid", "conflict"]


def cell_name(row: int, col: int) -> str:
    """The name a player calls a cell: row letter then 1-based column (row 1, col 6 is "B7")."""
    if 0 <= row < 26:
        return f"{chr(ord('A') + row)}{col + 1}"
    return f"(row {row}, column {col})"


class BattleshipError(Exception):
    """Raised when a Battleship rule is broken; the base of every engine error.

    ``code`` is a stable machine-readable reason and ``kind`` says whether the
    request itself is malformed (``invalid``) or clashes with the game's current
    state (``conflict``), so callers can map errors to rejections.
    """

    code: ClassVar[str] = "battleship_error"
    kind: ClassVar[ErrorKind] = "invalid"


class InvalidRules(BattleshipError):
    """Raised when a board size or fleet cannot make a playable game."""

    code = "invalid_rules"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PlacementError(BattleshipError):
    """Raised when a fleet placement breaks a setup rule (the base of the placement errors)."""

    code = "invalid_placement"


class UnknownShip(PlacementError):
    """Raised when a placement names a ship that is not in the fleet."""

    code = "unknown_ship"

    def __init__(self, ship: str, fleet: Sequence[str]) -> None:
        super().__init__(f"there is no ship called {ship!r} in this fleet ({', '.join(fleet)})")
        self.ship = ship
        self.fleet = tuple(fleet)


class DuplicateShip(PlacementError):
    """Raised when a placement positions the same ship twice."""

    code = "duplicate_ship"

    def __init__(self, ship: str) -> None:
        super().__init__(f"the {ship} is placed twice; place each ship exactly once")
        self.ship = ship


class MissingShips(PlacementError):
    """Raised when a placement leaves ships of the fleet out."""

    code = "missing_ships"

    def __init__(self, ships: Sequence[str]) -> None:
        super().__init__(f"every ship must be placed; missing: {', '.join(ships)}")
        self.ships = tuple(ships)


class ShipOutOfBounds(PlacementError):
    """Raised when a ship would stick out of the board."""

    code = "ship_out_of_bounds"

    def __init__(
        self, ship: str, length: int, row: int, col: int, orientation: str, height: int, width: int
    ) -> None:
        super().__init__(
            f"the {ship} ({length} cells) placed {orientation} from row {row}, column {col} "
            f"does not fit on the {height}x{width} board"
        )
        self.ship = ship
        self.row = row
        self.col = col
        self.orientation = orientation


class ShipsOverlap(PlacementError):
    """Raised when two ships would occupy the same cell."""

    code = "ships_overlap"

    def __init__(self, ship: str, other: str, row: int, col: int) -> None:
        super().__init__(f"the {ship} and the {other} both cover {cell_name(row, col)}")
        self.ship = ship
        self.other = other
        self.row = row
        self.col = col


class ShipsTouch(PlacementError):
    """Raised when two ships would touch (side or corner) while the no-touch rule is on."""

    code = "ships_touch"

    def __init__(self, ship: str, other: str, row: int, col: int) -> None:
        super().__init__(
            f"the {ship} touches the {other} at {cell_name(row, col)}; "
            "this game does not allow ships to touch, even diagonally"
        )
        self.ship = ship
        self.other = other
        self.row = row
        self.col = col


class FleetDoesNotFit(PlacementError):
    """Raised when random placement finds no legal arrangement of the fleet."""

    code = "fleet_does_not_fit"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"no legal arrangement of the fleet was found in {attempts} attempts; "
            "use a larger board, fewer ships or turn the no-touch rule off"
        )
        self.attempts = attempts


class FleetAlreadyPlaced(PlacementError):
    """Raised when a player places a fleet a second time."""

    code = "fleet_already_placed"
    kind = "conflict"

    def __init__(self, seat: int) -> None:
        super().__init__(f"player {seat + 1} has already placed a fleet; it cannot be moved")
        self.seat = seat


class MoveError(BattleshipError):
    """Raised when a shot or other move is not allowed (the base of the move errors)."""

    code = "invalid_move"


class CellOutOfBounds(MoveError):
    """Raised when a shot targets a cell that is not on the board."""

    code = "cell_out_of_bounds"

    def __init__(self, row: int, col: int, height: int, width: int) -> None:
        super().__init__(
            f"row {row}, column {col} is off the {height}x{width} board "
            f"(rows 0-{height - 1}, columns 0-{width - 1})"
        )
        self.row = row
        self.col = col


class CellAlreadyShot(MoveError):
    """Raised when a shot targets a cell that was already fired at."""

    code = "cell_already_shot"

    def __init__(self, row: int, col: int, mark: str) -> None:
        super().__init__(
            f"{cell_name(row, col)} was already fired at ({mark}); choose a cell not yet shot"
        )
        self.row = row
        self.col = col
        self.mark = mark


class NotYourTurn(MoveError):
    """Raised when a player acts while it is the other player's turn."""

    code = "not_your_turn"
    kind = "conflict"

    def __init__(self, seat: int, turn: int) -> None:
        super().__init__(f"it is player {turn + 1}'s turn, not player {seat + 1}'s")
        self.seat = seat
        self.turn = turn


class FleetsNotPlaced(MoveError):
    """Raised when a shot is fired before both fleets are on the board."""

    code = "fleets_not_placed"
    kind = "conflict"

    def __init__(self, seats: Sequence[int]) -> None:
        waiting = " and ".join(f"player {s + 1}" for s in seats)
        super().__init__(f"the battle has not started: waiting for {waiting} to place a fleet")
        self.seats = tuple(seats)


class GameOver(MoveError):
    """Raised when anyone acts after the game has ended."""

    code = "game_over"
    kind = "conflict"

    def __init__(self, winner: int | None) -> None:
        who = "" if winner is None else f"; player {winner + 1} won"
        super().__init__(f"the game is over{who}; no more moves are accepted")
        self.winner = winner


class InvalidSeat(MoveError):
    """Raised when a move names a seat other than 0 or 1."""

    code = "invalid_seat"

    def __init__(self, seat: int) -> None:
        super().__init__(f"seat {seat} does not exist; a game has seats 0 and 1")
        self.seat = seat


class NoShotLeft(MoveError):
    """Raised when a player is asked to choose a shot but every cell has been fired at."""

    code = "no_shot_left"
    kind = "conflict"

    def __init__(self) -> None:
        super().__init__("every cell has already been fired at; there is no shot left to choose")
