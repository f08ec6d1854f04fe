"""Pure Battleship rules: board, fleet, placement, shots, turn rotation and victory."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, TypeAlias

from actors.battleship.errors import (
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

if TYPE_CHECKING:
    import numpy as np

    RandomSource: TypeAlias = random.Random | np.random.Generator
    """Either kind of seeded generator; the engine never touches a global RNG."""

MAX_SIDE = 26
"""Rows are named by letters A-Z, so a board has at most 26 rows (and, for symmetry, columns)."""


class Mark(IntEnum):
    """What a shooter knows about a cell; the values index the observation planes."""

    UNKNOWN = 0
    MISS = 1
    HIT = 2
    """A hit on a ship that is still afloat."""
    SUNK = 3
    """A cell of a sunk ship: once a ship sinks every one of its cells is revealed."""


class Outcome(StrEnum):
    """The result of one shot."""

    MISS = "miss"
    HIT = "hit"
    SUNK = "sunk"


class Orientation(StrEnum):
    """Which way a ship extends from its first (top-left) cell."""

    HORIZONTAL = "horizontal"
    VERTICAL = "vertical"


class Phase(StrEnum):
    """Where a two-player game is: placing fleets, exchanging fire, or over."""

    PLACEMENT = "placement"
    BATTLE = "battle"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class ShipSpec:
    """A ship type of the fleet: its name (the ship type announced when sunk) and length."""

    name: str
    length: int


STANDARD_FLEET: tuple[ShipSpec, ...] = (
    ShipSpec("carrier", 5),
    ShipSpec("battleship", 4),
    ShipSpec("cruiser", 3),
    ShipSpec("submarine", 3),
    ShipSpec("destroyer", 2),
)

_STANDARD_NAMES: dict[int, tuple[str, ...]] = {
    5: ("carrier",),
    4: ("battleship",),
    3: ("cruiser", "submarine"),
    2: ("destroyer",),
}


def fleet_of(lengths: Iterable[int]) -> tuple[ShipSpec, ...]:
    """A fleet from ship lengths, named after the standard ship types where a length has one.

    ``fleet_of([5, 4, 3, 3, 2])`` is the standard fleet; ``fleet_of([3, 2])`` is a cruiser and a
    destroyer; a second ship of a length whose names are used up gets a numbered suffix
    (``destroyer_2``), and lengths without a standard type are called ``ship<length>``.
    """
    used: dict[int, int] = {}
    fleet: list[ShipSpec] = []
    for length in lengths:
        n = used.get(length, 0)
        used[length] = n + 1
        names = _STANDARD_NAMES.get(length, ())
        if n < len(names):
            name = names[n]
        elif names:
            name = f"{names[-1]}_{n - len(names) + 2}"
        else:
            name = f"ship{length}" if n == 0 else f"ship{length}_{n + 1}"
        fleet.append(ShipSpec(name, length))
    return tuple(fleet)


@dataclass(frozen=True, slots=True)
class Rules:
    """The setup of a game: board size, fleet, and whether ships may touch.

    Validated on construction, so a ``Rules`` value always makes a playable game.
    """

    height: int = 10
    width: int = 10
    fleet: tuple[ShipSpec, ...] = STANDARD_FLEET
    no_touch: bool = False
    """When on, ships may not touch each other, not even diagonally."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fleet", tuple(self.fleet))
        for side, what in ((self.height, "height"), (self.width, "width")):
            if not 1 <= side <= MAX_SIDE:
                raise InvalidRules(f"board {what} must be between 1 and {MAX_SIDE}, not {side}")
        if not self.fleet:
            raise InvalidRules("a fleet needs at least one ship")
        names = [s.name for s in self.fleet]
        if len(set(names)) != len(names):
            raise InvalidRules(f"ship names must be unique, got {', '.join(names)}")
        longest = max(self.height, self.width)
        for ship in self.fleet:
            if not ship.name:
                raise InvalidRules("every ship needs a name")
            if not 1 <= ship.length <= longest:
                raise InvalidRules(
                    f"the {ship.name} has length {ship.length}; on a {self.height}x{self.width} "
                    f"board a ship is 1 to {longest} cells long"
                )
        if self.ship_cells > self.cells:
            raise InvalidRules(
                f"the fleet covers {self.ship_cells} cells but the board has only {self.cells}"
            )

    @classmethod
    def of(
        cls,
        height: int = 10,
        width: int = 10,
        ships: Iterable[int] = (5, 4, 3, 3, 2),
        *,
        no_touch: bool = False,
    ) -> Rules:
        """Rules from a board size and ship lengths (named by ``fleet_of``)."""
        return cls(height, width, fleet_of(ships), no_touch)

    @property
    def cells(self) -> int:
        """Number of cells on the board (the size of the action space)."""
        return self.height * self.width

    @property
    def ship_cells(self) -> int:
        """Number of cells the whole fleet covers: the hits needed to win."""
        return sum(s.length for s in self.fleet)

    @property
    def lengths(self) -> tuple[int, ...]:
        """Ship lengths in fleet order."""
        return tuple(s.length for s in self.fleet)

    def index(self, row: int, col: int) -> int:
        """The flat (row-major) index of a cell, after checking it is on the board."""
        if not (0 <= row < self.height and 0 <= col < self.width):
            raise CellOutOfBounds(row, col, self.height, self.width)
        return row * self.width + col

    def cell(self, index: int) -> tuple[int, int]:
        """The (row, col) of a flat index, after checking it is on the board."""
        if not 0 <= index < self.cells:
            raise CellOutOfBounds(index // self.width, index % self.width, self.height, self.width)
        return divmod(index, self.width)


STANDARD_RULES = Rules()


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one ship lies: its first (top or left) cell and its orientation."""

    ship: str
    row: int
    col: int
    orientation: Orientation = Orientation.HORIZONTAL

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "orientation", Orientation(self.orientation))
        except ValueError:
            raise PlacementError(
                f"orientation of the {self.ship} must be 'horizontal' or 'vertical', "
                f"not {self.orientation!r}"
            ) from None


@dataclass(frozen=True, slots=True)
class Shot:
    """The resolution of one shot, as the shooter learns it.

    ``ship`` is named only when the shot sinks it (a plain hit does not say which ship was
    hit), and then ``sunk_cells`` lists every flat index of that ship.
    """

    row: int
    col: int
    outcome: Outcome
    ship: str | None = None
    sunk_cells: tuple[int, ...] = ()
    defeated: bool = False
    """True when this shot sank the last ship afloat: the shooter has won."""


@dataclass(frozen=True, slots=True)
class BoardView:
    """What a shooter sees of the opponent's board: the input every player decides from."""

    height: int
    width: int
    marks: bytes
    """One ``Mark`` value per cell, row-major."""
    remaining: tuple[int, ...]
    """Lengths of the ships still afloat (ship types are announced when sunk)."""
    no_touch: bool = False

    def unknown(self) -> list[int]:
        """Flat indices of the cells not fired at yet: the legal shots."""
        return [i for i, m in enumerate(self.marks) if m == Mark.UNKNOWN]


def _neighbours(index: int, height: int, width: int) -> Iterable[int]:
    row, col = divmod(index, width)
    for r in range(max(row - 1, 0), min(row + 2, height)):
        for c in range(max(col - 1, 0), min(col + 2, width)):
            if r != row or c != col:
                yield r * width + c


def layout(rules: Rules, placements: Iterable[Placement]) -> tuple[tuple[int, ...], ...]:
    """Validate a full fleet placement; return each ship's flat cells, in fleet order.

    Raises ``UnknownShip``, ``DuplicateShip``, ``ShipOutOfBounds``, ``ShipsOverlap``,
    ``ShipsTouch`` (no-touch rule only) or ``MissingShips``.
    """
    height, width, fleet = rules.height, rules.width, rules.fleet
    by_name = {s.name: i for i, s in enumerate(fleet)}
    owner = [-1] * rules.cells
    cells_of: list[tuple[int, ...] | None] = [None] * len(fleet)
    for p in placements:
        i = by_name.get(p.ship)
        if i is None:
            raise UnknownShip(p.ship, list(by_name))
        if cells_of[i] is not None:
            raise DuplicateShip(p.ship)
        length = fleet[i].length
        step = 1 if p.orientation is Orientation.HORIZONTAL else width
        last_row = p.row + (length - 1 if p.orientation is Orientation.VERTICAL else 0)
        last_col = p.col + (length - 1 if p.orientation is Orientation.HORIZONTAL else 0)
        if p.row < 0 or p.col < 0 or last_row >= height or last_col >= width:
            raise ShipOutOfBounds(p.ship, length, p.row, p.col, p.orientation, height, width)
        start = p.row * width + p.col
        cells = tuple(start + k * step for k in range(length))
        for c in cells:
            if owner[c] != -1:
                raise ShipsOverlap(p.ship, fleet[owner[c]].name, *divmod(c, width))
        if rules.no_touch:
            for c in cells:
                for n in _neighbours(c, height, width):
                    if owner[n] != -1:
                        raise ShipsTouch(p.ship, fleet[owner[n]].name, *divmod(n, width))
        for c in cells:
            owner[c] = i
        cells_of[i] = cells
    missing = [fleet[i].name for i, c in enumerate(cells_of) if c is None]
    if missing:
        raise MissingShips(missing)
    return tuple(c for c in cells_of if c is not None)


def _drawer(rng: RandomSource) -> Callable[[int], int]:
    """A ``below(n)`` draw from either generator kind, without importing numpy here."""
    if isinstance(rng, random.Random):
        return rng.randrange
    integers = rng.integers
    return lambda n: int(integers(n))


_TRIES_PER_SHIP = 200
_RESTARTS = 200


def random_placements(rules: Rules, rng: RandomSource) -> tuple[Placement, ...]:
    """A random legal placement of the fleet, reproducible from the generator's seed.

    Ships are placed longest first by rejection sampling; if a ship finds no room the whole
    fleet starts over. Raises ``FleetDoesNotFit`` when no arrangement turns up.
    """
    below = _drawer(rng)
    height, width, fleet = rules.height, rules.width, rules.fleet
    order = sorted(range(len(fleet)), key=lambda i: -fleet[i].length)
    for _ in range(_RESTARTS):
        # 0 = free, 1 = ship, 2 = the halo around a ship (blocked only under no-touch).
        taken = bytearray(rules.cells)
        chosen: list[Placement | None] = [None] * len(fleet)
        for i in order:
            length = fleet[i].length
            options = [
                o
                for o, fits in (
                    (Orientation.HORIZONTAL, length <= width),
                    (Orientation.VERTICAL, length <= height),
                )
                if fits
            ]
            for _ in range(_TRIES_PER_SHIP):
                orientation = options[below(2)] if len(options) == 2 else options[0]
                horizontal = orientation is Orientation.HORIZONTAL
                row = below(height if horizontal else height - length + 1)
                col = below(width - length + 1 if horizontal else width)
                start, step = row * width + col, 1 if horizontal else width
                cells = range(start, start + length * step, step)
                if any(taken[c] for c in cells):
                    continue
                for c in cells:
                    taken[c] = 1
                if rules.no_touch:
                    for c in cells:
                        for n in _neighbours(c, height, width):
                            if not taken[n]:
                                taken[n] = 2
                chosen[i] = Placement(fleet[i].name, row, col, orientation)
                break
            else:
                break
        else:
            return tuple(p for p in chosen if p is not None)
    raise FleetDoesNotFit(_RESTARTS * _TRIES_PER_SHIP)


class Board:
    """One player's ocean: the fleet placed on it and every shot fired at it."""

    __slots__ = (
        "_afloat",
        "_marks",
        "_owner",
        "_ship_cells",
        "_ships_afloat",
        "_shots",
        "placements",
        "rules",
    )

    def __init__(self, rules: Rules, placements: Iterable[Placement]) -> None:
        placements = tuple(placements)
        ship_cells = layout(rules, placements)
        self.rules = rules
        order = {s.name: i for i, s in enumerate(rules.fleet)}
        self.placements: tuple[Placement, ...] = tuple(
            sorted(placements, key=lambda p: order[p.ship])
        )
        self._ship_cells = ship_cells
        self._owner = [-1] * rules.cells
        for i, cells in enumerate(ship_cells):
            for c in cells:
                self._owner[c] = i
        self._afloat = [len(c) for c in ship_cells]
        self._ships_afloat = len(ship_cells)
        self._marks = bytearray(rules.cells)
        self._shots = 0

    @classmethod
    def random(cls, rules: Rules, rng: RandomSource) -> Board:
        """A board with the fleet placed by ``random_placements``."""
        return cls(rules, random_placements(rules, rng))

    def fire(self, row: int, col: int) -> Shot:
        """Resolve a shot at (row, col)."""
        return self._fire(self.rules.index(row, col))

    def fire_at(self, index: int) -> Shot:
        """Resolve a shot at a flat, row-major cell index (the environment's action)."""
        self.rules.cell(index)
        return self._fire(index)

    def _fire(self, index: int) -> Shot:
        row, col = divmod(index, self.rules.width)
        if not self._ships_afloat:
            raise GameOver(None)
        mark = self._marks[index]
        if mark:
            raise CellAlreadyShot(row, col, Mark(mark).name.lower())
        self._shots += 1
        ship = self._owner[index]
        if ship < 0:
            self._marks[index] = Mark.MISS
            return Shot(row, col, Outcome.MISS)
        self._afloat[ship] -= 1
        if self._afloat[ship]:
            self._marks[index] = Mark.HIT
            return Shot(row, col, Outcome.HIT)
        cells = self._ship_cells[ship]
        for c in cells:
            self._marks[c] = Mark.SUNK
        self._ships_afloat -= 1
        return Shot(
            row,
            col,
            Outcome.SUNK,
            self.rules.fleet[ship].name,
            cells,
            defeated=not self._ships_afloat,
        )

    @property
    def defeated(self) -> bool:
        """True once every ship on this board is sunk."""
        return not self._ships_afloat

    @property
    def shots(self) -> int:
        """Number of shots fired at this board."""
        return self._shots

    @property
    def marks(self) -> bytes:
        """The shooter's view of every cell (``Mark`` values), row-major."""
        return bytes(self._marks)

    def mark(self, row: int, col: int) -> Mark:
        """The shooter's view of one cell."""
        return Mark(self._marks[self.rules.index(row, col)])

    def ship_at(self, row: int, col: int) -> str | None:
        """The ship covering a cell (the owner's knowledge), or None for open water."""
        i = self._owner[self.rules.index(row, col)]
        return None if i < 0 else self.rules.fleet[i].name

    def cells_of(self, ship: str) -> tuple[int, ...]:
        """The flat cells a ship covers."""
        for i, spec in enumerate(self.rules.fleet):
            if spec.name == ship:
                return self._ship_cells[i]
        raise UnknownShip(ship, [s.name for s in self.rules.fleet])

    def afloat(self) -> tuple[ShipSpec, ...]:
        """The ships not yet sunk, in fleet order."""
        return tuple(s for s, left in zip(self.rules.fleet, self._afloat, strict=True) if left)

    def sunk(self) -> tuple[ShipSpec, ...]:
        """The ships sunk so far, in fleet order."""
        return tuple(s for s, left in zip(self.rules.fleet, self._afloat, strict=True) if not left)

    def view(self) -> BoardView:
        """What the shooter knows: marks plus the lengths of the ships still afloat."""
        return BoardView(
            self.rules.height,
            self.rules.width,
            bytes(self._marks),
            tuple(s.length for s in self.afloat()),
            self.rules.no_touch,
        )

    def render(self, *, reveal: bool = False) -> str:
        """A text grid: ``.`` unknown, ``o`` miss, ``X`` hit, ``#`` sunk; ``reveal`` shows ``S``."""
        return render_marks(
            self.rules.height,
            self.rules.width,
            self._marks,
            self._owner if reveal else None,
        )


_GLYPHS = {Mark.UNKNOWN: ".", Mark.MISS: "o", Mark.HIT: "X", Mark.SUNK: "#"}


def render_marks(
    height: int, width: int, marks: Sequence[int], owner: Sequence[int] | None = None
) -> str:
    """Draw marks as text with row letters and column numbers."""
    lines = ["   " + " ".join(f"{c + 1:>2}" for c in range(width))]
    for r in range(height):
        row = []
        for c in range(width):
            i = r * width + c
            glyph = _GLYPHS[Mark(marks[i])]
            if owner is not None and glyph == "." and owner[i] >= 0:
                glyph = "S"
            row.append(f"{glyph:>2}")
        lines.append(f"{chr(ord('A') + r):>2} " + " ".join(row))
    return "\n".join(lines)


class Game:
    """A two-player game: both place a fleet, then they fire in turn until one fleet is sunk.

    Seats are 0 and 1. ``first`` fires first; the turn passes to the other seat after every
    shot, hit or miss. A player may resign at any time before the game ends.
    """

    __slots__ = ("_boards", "_history", "_resigned", "_turn", "_winner", "first", "rules")

    def __init__(self, rules: Rules = STANDARD_RULES, first: int = 0) -> None:
        _check_seat(first)
        self.rules = rules
        self.first = first
        self._boards: list[Board | None] = [None, None]
        self._turn = first
        self._winner: int | None = None
        self._resigned: int | None = None
        self._history: list[tuple[int, Shot]] = []

    @property
    def phase(self) -> Phase:
        """Placement until both fleets are down, then battle, then finished."""
        if self._winner is not None:
            return Phase.FINISHED
        if self._boards[0] is None or self._boards[1] is None:
            return Phase.PLACEMENT
        return Phase.BATTLE

    @property
    def turn(self) -> int | None:
        """The seat to fire next, or None outside the battle phase."""
        return self._turn if self.phase is Phase.BATTLE else None

    @property
    def winner(self) -> int | None:
        """The winning seat once the game is over."""
        return self._winner

    @property
    def resigned(self) -> int | None:
        """The seat that resigned, if the game ended that way."""
        return self._resigned

    @property
    def history(self) -> tuple[tuple[int, Shot], ...]:
        """Every shot in order, with the seat that fired it."""
        return tuple(self._history)

    def board(self, seat: int) -> Board | None:
        """The board holding ``seat``'s own fleet (the one the opponent fires at)."""
        _check_seat(seat)
        return self._boards[seat]

    def place_fleet(self, seat: int, placements: Iterable[Placement]) -> Board:
        """Put ``seat``'s fleet on its board after validating it."""
        _check_seat(seat)
        if self._winner is not None:
            raise GameOver(self._winner)
        if self._boards[seat] is not None:
            raise FleetAlreadyPlaced(seat)
        board = Board(self.rules, placements)
        self._boards[seat] = board
        return board

    def place_random(self, seat: int, rng: RandomSource) -> Board:
        """Place ``seat``'s fleet at random from a seeded generator."""
        _check_seat(seat)
        if self._boards[seat] is not None:
            raise FleetAlreadyPlaced(seat)
        return self.place_fleet(seat, random_placements(self.rules, rng))

    def fire(self, seat: int, row: int, col: int) -> Shot:
        """``seat`` fires at (row, col) on the opponent's board; the turn then passes."""
        target = self._target(seat)
        shot = target.fire(row, col)
        self._history.append((seat, shot))
        if shot.defeated:
            self._winner = seat
        else:
            self._turn = 1 - seat
        return shot

    def resign(self, seat: int) -> None:
        """``seat`` concedes; the other seat wins."""
        _check_seat(seat)
        if self._winner is not None:
            raise GameOver(self._winner)
        self._resigned = seat
        self._winner = 1 - seat

    def view_for(self, seat: int) -> BoardView:
        """What ``seat`` knows of the opponent's board."""
        _check_seat(seat)
        board = self._boards[1 - seat]
        if board is None:
            raise FleetsNotPlaced([1 - seat])
        return board.view()

    def _target(self, seat: int) -> Board:
        _check_seat(seat)
        if self._winner is not None:
            raise GameOver(self._winner)
        mine, theirs = self._boards[seat], self._boards[1 - seat]
        if mine is None or theirs is None:
            raise FleetsNotPlaced([s for s in (0, 1) if self._boards[s] is None])
        if seat != self._turn:
            raise NotYourTurn(seat, self._turn)
        return theirs


def _check_seat(seat: int) -> None:
    if seat not in (0, 1):
        raise InvalidSeat(seat)


__all__ = [
    "MAX_SIDE",
    "STANDARD_FLEET",
    "STANDARD_RULES",
    "Board",
    "BoardView",
    "Game",
    "Mark",
    "Orientation",
    "Outcome",
    "Phase",
    "Placement",
    "Rules",
    "ShipSpec",
    "Shot",
    "cell_name",
    "fleet_of",
    "layout",
    "random_placements",
    "render_marks",
]
