"""Baseline players: random, hunt/target and probability density, each choosing from a BoardView."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from actors.battleship.engine import BoardView, Mark
from actors.battleship.errors import NoShotLeft

Grid = NDArray[np.uint8]
Mask = NDArray[np.bool_]


@runtime_checkable
class Player(Protocol):
    """Anything that picks the next shot: a baseline here or a trained policy elsewhere.

    ``select`` returns a flat cell index (``row * width + col``) of a cell not yet fired at.
    All randomness comes from ``rng``, so a seeded generator makes the choice reproducible.
    """

    name: str

    def select(self, view: BoardView, rng: random.Random) -> int:
        """The cell to fire at next."""
        ...


def grid_of(view: BoardView) -> Grid:
    """The view's marks as a ``(height, width)`` array of ``Mark`` values."""
    return np.frombuffer(view.marks, np.uint8).reshape(view.height, view.width)


def view_from_observation(
    observation: NDArray[np.floating] | NDArray[np.integer],
    remaining: Iterable[int],
    *,
    no_touch: bool = False,
) -> BoardView:
    """A ``BoardView`` from a ``(4, height, width)`` one-hot observation of the environment."""
    obs = np.asarray(observation)
    if obs.ndim != 3 or obs.shape[0] != 4:
        raise ValueError(f"expected a (4, height, width) observation, got shape {obs.shape}")
    marks = obs.argmax(axis=0).astype(np.uint8)
    return BoardView(obs.shape[1], obs.shape[2], marks.tobytes(), tuple(remaining), no_touch)


def _shift(a: Mask, dr: int, dc: int) -> Mask:
    """``out[r, c] = a[r - dr, c - dc]``, False where that falls off the board."""
    h, w = a.shape
    out = np.zeros_like(a)
    out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = a[
        max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)
    ]
    return out


_ORTHOGONAL = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _halo(a: Mask) -> Mask:
    """Cells touching (8-neighbourhood) a True cell, excluding the True cells themselves."""
    out = np.zeros_like(a)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                out |= _shift(a, dr, dc)
    return out & ~a


def _open_cells(view: BoardView, grid: Grid) -> Mask:
    """Cells worth firing at: not fired at, and under no-touch not next to a sunk ship."""
    open_: Mask = grid == Mark.UNKNOWN
    if view.no_touch:
        open_ &= ~_halo(grid == Mark.SUNK)
    if not open_.any():
        # The no-touch exclusion is an inference; never let it leave a player without a move.
        open_ = grid == Mark.UNKNOWN
    return open_


def _parity(view: BoardView) -> Mask:
    """The lattice every remaining ship must cross: cells with (row + col) % shortest == 0."""
    step = min(view.remaining) if view.remaining else 1
    rows, cols = np.indices((view.height, view.width))
    mask: Mask = (rows + cols) % step == 0
    return mask


def _pick(candidates: Mask, rng: random.Random) -> int:
    cells = np.flatnonzero(candidates)
    if not cells.size:
        raise NoShotLeft()
    return int(cells[rng.randrange(cells.size)])


class RandomPlayer:
    """Fires at a uniformly random cell among those not yet shot."""

    name = "random"

    def select(self, view: BoardView, rng: random.Random) -> int:
        """A random unshot cell."""
        unknown = view.unknown()
        if not unknown:
            raise NoShotLeft()
        return unknown[rng.randrange(len(unknown))]


class HuntTargetPlayer:
    """Hunts at random until it hits, then targets the neighbours of unresolved hits.

    Targeting prefers cells that extend a line of two or more hits, then any cell next to a
    hit. With ``parity`` the hunt only fires on the lattice the shortest ship afloat must
    cross (a checkerboard while the destroyer floats).
    """

    def __init__(self, *, parity: bool = False) -> None:
        self.parity = parity
        self.name = "hunt_target_parity" if parity else "hunt_target"

    def select(self, view: BoardView, rng: random.Random) -> int:
        """The next shot: a target cell if any hit is unresolved, else a hunt cell."""
        grid = grid_of(view)
        open_ = _open_cells(view, grid)
        hits = grid == Mark.HIT
        if hits.any():
            score = np.zeros(grid.shape, np.int8)
            for dr, dc in _ORTHOGONAL:
                next_to_hit = _shift(hits, dr, dc)
                in_line = next_to_hit & _shift(hits, 2 * dr, 2 * dc)
                score = np.maximum(score, next_to_hit.astype(np.int8) + in_line)
            score[~open_] = 0
            best = score.max()
            if best > 0:
                return _pick(score == best, rng)
        if self.parity:
            on_lattice = open_ & _parity(view)
            if on_lattice.any():
                return _pick(on_lattice, rng)
        return _pick(open_, rng)


class ProbabilityPlayer:
    """Fires where the most remaining-ship placements agree with everything seen so far.

    For every ship afloat, every horizontal and vertical placement that covers no miss and no
    sunk cell is counted on the cells it covers; placements through unresolved hits weigh
    ``hit_weight`` times more per hit, which turns hunting into targeting. With ``parity``,
    hunting (no unresolved hit) is restricted to the lattice the shortest ship afloat must
    cross. Ties are broken by ``rng``.
    """

    def __init__(self, *, parity: bool = True, hit_weight: float = 50.0) -> None:
        self.parity = parity
        self.hit_weight = hit_weight
        self.name = "probability" if parity else "probability_no_parity"

    def density(self, view: BoardView) -> NDArray[np.float64]:
        """Weighted placement count per cell (zero on cells not worth firing at)."""
        grid = grid_of(view)
        blocked = (grid == Mark.MISS) | (grid == Mark.SUNK)
        if view.no_touch:
            blocked |= _halo(grid == Mark.SUNK)
        hits = (grid == Mark.HIT).astype(np.int64)
        h, w = grid.shape
        density = np.zeros((h, w), np.float64)
        counts: dict[int, int] = {}
        for length in view.remaining:
            counts[length] = counts.get(length, 0) + 1
        for length, count in counts.items():
            # Both orientations of a one-cell ship are the same placement.
            for axis in (1,) if length == 1 else (1, 0):
                if length > grid.shape[axis]:
                    continue
                covered = sliding_window_view(blocked, length, axis=axis).any(axis=-1)
                hit_count = sliding_window_view(hits, length, axis=axis).sum(axis=-1)
                weight = np.where(covered, 0.0, self.hit_weight**hit_count) * count
                for k in range(length):
                    if axis == 1:
                        density[:, k : k + w - length + 1] += weight
                    else:
                        density[k : k + h - length + 1, :] += weight
        density[~_open_cells(view, grid)] = 0.0
        return density

    def select(self, view: BoardView, rng: random.Random) -> int:
        """The open cell with the highest density (on the parity lattice while hunting)."""
        density = self.density(view)
        grid = grid_of(view)
        if self.parity and not (grid == Mark.HIT).any():
            on_lattice = density * _parity(view)
            if on_lattice.max() > 0:
                density = on_lattice
        best = density.max()
        if best <= 0:
            return _pick(_open_cells(view, grid), rng)
        return _pick(density == best, rng)


BASELINES: Mapping[str, Player] = {
    p.name: p
    for p in (
        RandomPlayer(),
        HuntTargetPlayer(),
        HuntTargetPlayer(parity=True),
        ProbabilityPlayer(),
        ProbabilityPlayer(parity=False),
    )
}
"""The built-in players by agent id; they keep no state between calls, so one of each is shared."""


def baseline(name: str) -> Player | None:
    """The baseline player called ``name``, or None."""
    return BASELINES.get(name)


__all__ = [
    "BASELINES",
    "HuntTargetPlayer",
    "Player",
    "ProbabilityPlayer",
    "RandomPlayer",
    "baseline",
    "grid_of",
    "view_from_observation",
]
