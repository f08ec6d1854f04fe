"""The Gymnasium environment ``troupe/Battleship-v0``: one agent sinks a hidden, random fleet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Literal, SupportsFloat, SupportsInt

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from numpy.typing import NDArray

from actors.battleship import register
from actors.battleship.engine import (
    Board,
    BoardView,
    Mark,
    Outcome,
    Placement,
    Rules,
    random_placements,
    render_marks,
)
from actors.battleship.errors import CellAlreadyShot

PLANES = 4
"""Observation planes, in ``Mark`` order: unknown, miss, hit (ship afloat), sunk."""

Observation = NDArray[np.float32]
InvalidActionPolicy = Literal["penalize", "raise"]


class StepResult(IntEnum):
    """``info["result"]``: what the last step did (values 1-3 match ``Mark``)."""

    NONE = 0
    """After ``reset``: nothing fired yet."""
    MISS = 1
    HIT = 2
    SUNK = 3
    INVALID = 4
    """The action targeted a cell already fired at; the board did not change."""


_RESULT_OF = {Outcome.MISS: StepResult.MISS, Outcome.HIT: StepResult.HIT}


@dataclass(frozen=True, slots=True)
class Rewards:
    """Reward per step. Any winning episode collects the same hit, sunk and win rewards, so
    maximising the return means minimising misses, that is shots to win."""

    miss: float = -1.0
    hit: float = 1.0
    """A hit that does not sink a ship."""
    sunk: float = 2.0
    """A hit that sinks a ship (instead of ``hit``)."""
    win: float = 10.0
    """Added to ``sunk`` on the shot that sinks the last ship."""
    invalid: float = -5.0
    """Firing at a cell already shot (only reachable when the action mask is ignored)."""

    def total_for_win(self, rules: Rules, shots: int) -> float:
        """The undiscounted return of a won episode of ``shots`` valid shots and no invalid ones."""
        ships = len(rules.fleet)
        hits = rules.ship_cells - ships
        return (
            hits * self.hit + ships * self.sunk + self.win + (shots - rules.ship_cells) * self.miss
        )


def make_rules(
    height: int = 10,
    width: int = 10,
    ships: Iterable[int] = (5, 4, 3, 3, 2),
    *,
    no_touch: bool = False,
    rules: Rules | None = None,
) -> Rules:
    """Rules from the environment's keyword arguments (``rules`` wins when given)."""
    return rules if rules is not None else Rules.of(height, width, ships, no_touch=no_touch)


def info_dict(
    mask: NDArray[np.bool_],
    result: StepResult,
    steps: int,
    shots: int,
    invalid_actions: int,
    ships_remaining: int,
    sunk_ship: int,
) -> dict[str, Any]:
    """The ``info`` of ``reset`` and ``step``: the same keys every time, so vectors batch it."""
    return {
        "action_mask": mask,
        "result": int(result),
        "steps": steps,
        "shots": shots,
        "invalid_actions": invalid_actions,
        "ships_remaining": ships_remaining,
        "sunk_ship": sunk_ship,
    }


class BattleshipEnv(gym.Env[Observation, np.int64]):
    """Single-sided Battleship: every step fires one shot at a hidden fleet placed at random.

    * Action: ``Discrete(height * width)``, the flat row-major cell ``row * width + col``.
    * Observation: ``Box(0, 1, (4, height, width), float32)``, one-hot planes in ``Mark``
      order (unknown, miss, hit on a ship afloat, sunk); exactly one plane is 1 per cell.
    * ``action_masks()`` and ``info["action_mask"]``: True for cells not yet fired at.
    * Terminated when the last ship sinks; truncated after ``max_steps`` steps (default
      ``height * width``; only reachable through invalid actions).
    * An invalid action (a cell already fired at) earns ``rewards.invalid``, changes nothing
      and counts as a step, or raises ``CellAlreadyShot`` when ``invalid_action="raise"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        height: int = 10,
        width: int = 10,
        ships: Iterable[int] = (5, 4, 3, 3, 2),
        *,
        no_touch: bool = False,
        rules: Rules | None = None,
        rewards: Rewards | None = None,
        max_steps: int | None = None,
        invalid_action: InvalidActionPolicy = "penalize",
        render_mode: str | None = None,
    ) -> None:
        self.rules = make_rules(height, width, ships, no_touch=no_touch, rules=rules)
        self.rewards = rewards if rewards is not None else Rewards()
        self.max_steps = self.rules.cells if max_steps is None else max_steps
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        if invalid_action not in ("penalize", "raise"):
            raise ValueError(
                f"invalid_action must be 'penalize' or 'raise', not {invalid_action!r}"
            )
        self.invalid_action: InvalidActionPolicy = invalid_action
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        h, w = self.rules.height, self.rules.width
        self.observation_space = spaces.Box(0.0, 1.0, (PLANES, h, w), np.float32)
        self.action_space = spaces.Discrete(h * w)
        self._board: Board | None = None
        self._obs = np.zeros((PLANES, h, w), np.float32)
        self._flat = self._obs.reshape(PLANES, h * w)
        self._mask = np.ones(h * w, np.bool_)
        self._steps = 0
        self._invalid = 0
        self._done = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        """Place a new hidden fleet and clear the observation.

        ``options={"placements": [...]}`` fixes the fleet (``Placement`` values or mappings
        with ship, row, col, orientation) for scripted episodes; otherwise the fleet is drawn
        from ``self.np_random``, so ``reset(seed=s)`` always hides the same fleet.
        """
        super().reset(seed=seed)
        fixed = (options or {}).get("placements")
        if fixed is not None:
            self._board = Board(self.rules, [_placement(p) for p in fixed])
        else:
            self._board = Board(self.rules, random_placements(self.rules, self.np_random))
        self._flat[:] = 0.0
        self._flat[Mark.UNKNOWN] = 1.0
        self._mask[:] = True
        self._steps = 0
        self._invalid = 0
        self._done = False
        return self._obs.copy(), self._info(StepResult.NONE, -1)

    def step(
        self, action: SupportsInt
    ) -> tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]:
        """Fire at cell ``action``."""
        board = self._board
        if board is None or self._done:
            raise ResetNeeded("call reset() before step(): the episode has not started or ended")
        index = int(action)
        self.rules.cell(index)
        rewards = self.rewards
        sunk_ship = -1
        terminated = False
        if not self._mask[index]:
            if self.invalid_action == "raise":
                row, col = divmod(index, self.rules.width)
                raise CellAlreadyShot(row, col, Mark(board.marks[index]).name.lower())
            self._invalid += 1
            reward = rewards.invalid
            result = StepResult.INVALID
        else:
            shot = board.fire_at(index)
            self._mask[index] = False
            self._flat[Mark.UNKNOWN, index] = 0.0
            if shot.outcome is Outcome.SUNK:
                cells = list(shot.sunk_cells)
                self._flat[:, cells] = 0.0
                self._flat[Mark.SUNK, cells] = 1.0
                sunk_ship = next(i for i, s in enumerate(self.rules.fleet) if s.name == shot.ship)
                result = StepResult.SUNK
                reward = rewards.sunk + (rewards.win if shot.defeated else 0.0)
                terminated = shot.defeated
            else:
                result = _RESULT_OF[shot.outcome]
                self._flat[result, index] = 1.0
                reward = rewards.miss if result is StepResult.MISS else rewards.hit
        self._steps += 1
        truncated = not terminated and self._steps >= self.max_steps
        self._done = terminated or truncated
        return self._obs.copy(), float(reward), terminated, truncated, self._info(result, sunk_ship)

    def action_masks(self) -> NDArray[np.bool_]:
        """True for every cell not fired at yet (the legal actions)."""
        return self._mask.copy()

    def board_view(self) -> BoardView:
        """The agent's knowledge as a ``BoardView``, the input of the baseline players."""
        if self._board is None:
            raise ResetNeeded("call reset() first")
        return self._board.view()

    @property
    def board(self) -> Board | None:
        """The hidden board of the current episode (for debugging and evaluation)."""
        return self._board

    def render(self) -> str | None:
        """The agent's view as text when ``render_mode="ansi"``."""
        if self.render_mode != "ansi" or self._board is None:
            return None
        board = self._board
        status = (
            f"steps {self._steps}/{self.max_steps}, shots {board.shots}, "
            f"ships afloat {len(board.afloat())}/{len(self.rules.fleet)}"
        )
        return render_marks(self.rules.height, self.rules.width, board.marks) + "\n" + status

    def _info(self, result: StepResult, sunk_ship: int) -> dict[str, Any]:
        board = self._board
        assert board is not None
        return info_dict(
            self._mask.copy(),
            result,
            self._steps,
            board.shots,
            self._invalid,
            len(board.afloat()),
            sunk_ship,
        )


def _placement(value: Placement | Mapping[str, Any]) -> Placement:
    if isinstance(value, Placement):
        return value
    return Placement(
        str(value["ship"]),
        int(value["row"]),
        int(value["col"]),
        value.get("orientation", "horizontal"),
    )


register()

__all__ = ["PLANES", "BattleshipEnv", "Rewards", "StepResult", "info_dict", "make_rules"]
