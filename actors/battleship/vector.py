"""N Battleship boards stepped at once in numpy, step for step the same as N ``BattleshipEnv``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from actors.battleship.engine import BoardView, Mark, Rules, layout, random_placements
from actors.battleship.env import PLANES, Rewards, StepResult, make_rules
from actors.battleship.errors import CellOutOfBounds

BatchObservation = NDArray[np.float32]


class BattleshipVectorEnv(VectorEnv[BatchObservation, NDArray[np.int64], NDArray[Any]]):
    """A batch of single-sided Battleship games held in numpy arrays, not processes.

    Sub-environment ``i`` behaves exactly like a ``BattleshipEnv`` with the same arguments:
    same observations, rewards, terminations, truncations and info values, and with
    ``reset(seed=s)`` sub-environment ``i`` hides the fleet ``BattleshipEnv.reset(seed=s + i)``
    would (Gymnasium's own vector convention).

    Autoreset is same-step (``metadata["autoreset_mode"]``): when a game ends, ``step``
    returns the first observation of the next game for it; the last observation of the ended
    game is in ``info["final_obs"]`` and its info in ``info["final_info"]``, both dense arrays
    over all sub-environments where ``info["_final_obs"]`` marks the rows that ended.
    Every other info key is a dense array with one row per sub-environment.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        height: int = 10,
        width: int = 10,
        ships: Iterable[int] = (5, 4, 3, 3, 2),
        *,
        no_touch: bool = False,
        rules: Rules | None = None,
        rewards: Rewards | None = None,
        max_steps: int | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, not {num_envs}")
        self.rules = make_rules(height, width, ships, no_touch=no_touch, rules=rules)
        self.rewards = rewards if rewards is not None else Rewards()
        self.max_steps = self.rules.cells if max_steps is None else max_steps
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, not {self.max_steps}")
        self.num_envs = num_envs
        h, w = self.rules.height, self.rules.width
        cells, ships_n = h * w, len(self.rules.fleet)
        self.single_observation_space = spaces.Box(0.0, 1.0, (PLANES, h, w), np.float32)
        self.single_action_space = spaces.Discrete(cells)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rows = np.arange(num_envs)
        self._planes = np.arange(PLANES, dtype=np.int8)[None, :, None]
        self._lengths = np.array(self.rules.lengths, np.int16)
        self._owner = np.full((num_envs, cells), -1, np.int8)
        self._marks = np.zeros((num_envs, cells), np.int8)
        self._left = np.zeros((num_envs, ships_n), np.int16)
        self._afloat = np.zeros(num_envs, np.int16)
        self._steps = np.zeros(num_envs, np.int64)
        self._shots = np.zeros(num_envs, np.int64)
        self._invalid = np.zeros(num_envs, np.int64)
        self._result = np.zeros(num_envs, np.int64)
        self._sunk_ship = np.full(num_envs, -1, np.int64)
        r = self.rewards
        self._reward_of = np.array([0.0, r.miss, r.hit, r.sunk, r.invalid], np.float64)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._started = False

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[BatchObservation, dict[str, Any]]:
        """Start new games.

        ``seed`` is an int (sub-environment ``i`` gets ``seed + i``), a list with one seed (or
        None) per sub-environment, or None to continue each sub-environment's generator.
        ``options={"reset_mask": mask}`` resets only the rows where ``mask`` is True.
        """
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, int | np.integer):
            seeds = [int(seed) + i for i in range(n)]
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(f"expected {n} seeds, got {len(seeds)}")
        mask = np.ones(n, np.bool_)
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"], np.bool_).reshape(n)
        if not self._started and not mask.all():
            raise ValueError("the first reset must reset every sub-environment")
        for i in np.flatnonzero(mask):
            self._reset_row(int(i), seeds[i])
        self._started = True
        return self._observe(), self._info()

    def step(
        self, actions: NDArray[np.int64] | Sequence[int]
    ) -> tuple[
        BatchObservation, NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]
    ]:
        """Fire one shot on every board; games that end are reset in the same step."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions, np.int64).reshape(self.num_envs)
        cells = self.rules.cells
        off = np.flatnonzero((a < 0) | (a >= cells))
        if off.size:
            bad = int(a[off[0]])
            raise CellOutOfBounds(
                bad // self.rules.width, bad % self.rules.width, self.rules.height, self.rules.width
            )
        rows, marks = self._rows, self._marks
        valid = marks[rows, a] == Mark.UNKNOWN
        owner = self._owner[rows, a]
        miss = valid & (owner < 0)
        hit = valid & (owner >= 0)
        marks[rows[miss], a[miss]] = Mark.MISS

        hit_rows, hit_ships, hit_cells = rows[hit], owner[hit], a[hit]
        self._left[hit_rows, hit_ships] -= 1
        sinks = self._left[hit_rows, hit_ships] == 0
        marks[hit_rows[~sinks], hit_cells[~sinks]] = Mark.HIT
        sunk_rows, sunk_ships = hit_rows[sinks], hit_ships[sinks]
        if sunk_rows.size:
            of_ship = self._owner[sunk_rows] == sunk_ships[:, None]
            marks[sunk_rows] = np.where(of_ship, np.int8(Mark.SUNK), marks[sunk_rows])
            self._afloat[sunk_rows] -= 1

        result = np.where(valid, np.where(hit, StepResult.HIT, StepResult.MISS), StepResult.INVALID)
        result[sunk_rows] = StepResult.SUNK
        self._result[:] = result
        self._sunk_ship[:] = -1
        self._sunk_ship[sunk_rows] = sunk_ships
        terminated = np.zeros(self.num_envs, np.bool_)
        terminated[sunk_rows] = self._afloat[sunk_rows] == 0
        reward = self._reward_of[result] + np.where(terminated, self.rewards.win, 0.0)
        self._steps += 1
        self._shots += valid
        self._invalid += ~valid
        truncated = ~terminated & (self._steps >= self.max_steps)

        obs, info = self._observe(), self._info()
        done = terminated | truncated
        if done.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            info["final_info"] = {k: v.copy() for k, v in info.items() if not k.startswith("final")}
            info["_final_info"] = done.copy()
            for i in np.flatnonzero(done):
                self._reset_row(int(i), None)
            obs[done] = self._observe(done)
            fresh = self._info()
            for key, value in fresh.items():
                info[key][done] = value[done]
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> NDArray[np.bool_]:
        """``(num_envs, cells)``: True where a cell has not been fired at."""
        mask: NDArray[np.bool_] = self._marks == Mark.UNKNOWN
        return mask

    def board_view(self, i: int) -> BoardView:
        """Sub-environment ``i`` as a ``BoardView``, the input of the baseline players."""
        afloat = self._lengths[self._left[i] > 0]
        return BoardView(
            self.rules.height,
            self.rules.width,
            self._marks[i].astype(np.uint8).tobytes(),
            tuple(int(x) for x in afloat),
            self.rules.no_touch,
        )

    def _reset_row(self, i: int, seed: int | None) -> None:
        rng = self._rngs[i]
        if seed is not None or rng is None:
            rng, _ = seeding.np_random(seed)
            self._rngs[i] = rng
        ship_cells = layout(self.rules, random_placements(self.rules, rng))
        self._owner[i] = -1
        for ship, cells in enumerate(ship_cells):
            self._owner[i, list(cells)] = ship
        self._marks[i] = Mark.UNKNOWN
        self._left[i] = self._lengths
        self._afloat[i] = len(ship_cells)
        self._steps[i] = 0
        self._shots[i] = 0
        self._invalid[i] = 0
        self._result[i] = StepResult.NONE
        self._sunk_ship[i] = -1

    def _observe(self, rows: NDArray[np.bool_] | None = None) -> BatchObservation:
        marks = self._marks if rows is None else self._marks[rows]
        planes = marks[:, None, :] == self._planes
        h, w = self.rules.height, self.rules.width
        obs: BatchObservation = planes.astype(np.float32).reshape(marks.shape[0], PLANES, h, w)
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "action_mask": self._marks == Mark.UNKNOWN,
            "result": self._result.copy(),
            "steps": self._steps.copy(),
            "shots": self._shots.copy(),
            "invalid_actions": self._invalid.copy(),
            "ships_remaining": self._afloat.astype(np.int64),
            "sunk_ship": self._sunk_ship.copy(),
        }


__all__ = ["BattleshipVectorEnv"]
