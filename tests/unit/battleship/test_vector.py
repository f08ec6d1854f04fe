"""The batched numpy environment steps exactly like N single environments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from actors.battleship.engine import Mark
from actors.battleship.env import BattleshipEnv, StepResult
from actors.battleship.errors import CellOutOfBounds
from actors.battleship.vector import BattleshipVectorEnv

INFO_KEYS = (
    "action_mask",
    "result",
    "steps",
    "shots",
    "invalid_actions",
    "ships_remaining",
    "sunk_ship",
)


def reference(n: int, **kwargs: Any) -> SyncVectorEnv:
    return SyncVectorEnv(
        [lambda: BattleshipEnv(**kwargs) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"height": 6, "width": 6, "ships": (3, 2), "max_steps": 30},
        {"height": 10, "width": 10},
        {"height": 5, "width": 7, "ships": (3, 2, 2), "no_touch": True, "max_steps": 25},
    ],
)
def test_identical_to_sync_vector_of_single_envs(kwargs: dict[str, Any]) -> None:
    n = 6
    ours, theirs = BattleshipVectorEnv(n, **kwargs), reference(n, **kwargs)
    obs_a, info_a = ours.reset(seed=11)
    obs_b, info_b = theirs.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b)
    rng = np.random.default_rng(0)
    cells = ours.single_action_space.n
    endings = 0
    for _ in range(250):
        mask = info_a["action_mask"]
        # Mostly legal shots, some deliberately repeated ones to exercise the invalid path.
        actions = np.array(
            [
                rng.choice(np.flatnonzero(mask[i])) if rng.random() < 0.85 else rng.integers(cells)
                for i in range(n)
            ]
        )
        obs_a, rew_a, term_a, trunc_a, info_a = ours.step(actions)
        obs_b, rew_b, term_b, trunc_b, info_b = theirs.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(term_a, term_b)
        np.testing.assert_array_equal(trunc_a, trunc_b)
        for key in INFO_KEYS:
            np.testing.assert_array_equal(info_a[key], info_b[key], err_msg=key)
        assert ("final_obs" in info_a) == ("final_obs" in info_b)
        if "final_obs" in info_b:
            ended = info_b["_final_obs"]
            np.testing.assert_array_equal(info_a["_final_obs"], ended)
            np.testing.assert_array_equal(info_a["_final_info"], ended)
            for i in np.flatnonzero(ended):
                endings += 1
                np.testing.assert_array_equal(info_a["final_obs"][i], info_b["final_obs"][i])
                for key in INFO_KEYS:
                    np.testing.assert_array_equal(
                        info_a["final_info"][key][i], info_b["final_info"][key][i], err_msg=key
                    )
    assert endings > 0
    theirs.close()
    ours.close()


def test_truncation_and_termination_both_happen_and_match() -> None:
    kwargs = {"height": 4, "width": 4, "ships": (2,), "max_steps": 6}
    ours, theirs = BattleshipVectorEnv(4, **kwargs), reference(4, **kwargs)
    ours.reset(seed=[1, 2, 3, 4])
    theirs.reset(seed=[1, 2, 3, 4])
    seen = {"terminated": 0, "truncated": 0}
    rng = np.random.default_rng(5)
    for _ in range(60):
        actions = rng.integers(16, size=4)
        a = ours.step(actions)
        b = theirs.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        seen["terminated"] += int(a[2].sum())
        seen["truncated"] += int(a[3].sum())
    assert seen["terminated"] > 0
    assert seen["truncated"] > 0


def test_spaces_and_metadata() -> None:
    env = BattleshipVectorEnv(3, height=6, width=6, ships=(3, 2))
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.observation_space.shape == (3, 4, 6, 6)
    assert env.single_observation_space.shape == (4, 6, 6)
    assert env.single_action_space.n == 36
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs.dtype == np.float32
    assert info["action_mask"].shape == (3, 36)
    assert (env.action_masks() == info["action_mask"]).all()


def test_masks_never_allow_a_shot_cell() -> None:
    env = BattleshipVectorEnv(16)
    obs, info = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(120):
        mask = env.action_masks()
        np.testing.assert_array_equal(mask, obs[:, Mark.UNKNOWN].reshape(16, -1) == 1)
        actions = (rng.random(mask.shape) * mask).argmax(axis=1)
        obs, _, _, _, info = env.step(actions)
        assert (info["result"] != StepResult.INVALID).all()


def test_seeds_match_single_envs_seeded_with_offsets() -> None:
    env = BattleshipVectorEnv(3, height=6, width=6, ships=(3, 2))
    obs, _ = env.reset(seed=40)
    singles = [BattleshipEnv(height=6, width=6, ships=(3, 2)) for _ in range(3)]
    for i, single in enumerate(singles):
        single.reset(seed=40 + i)
    done = np.zeros(3, np.bool_)
    for cell in range(36):  # sweep the board in order; every fleet sinks by the last cell
        obs, _, terminated, _, info = env.step(np.full(3, cell))
        for i, single in enumerate(singles):
            if done[i]:
                continue
            view = env.board_view(i)
            expected, _, ended, _, _ = single.step(cell)
            final = info["final_obs"][i] if terminated[i] else obs[i]
            np.testing.assert_array_equal(final, expected)
            if not terminated[i]:
                assert view == single.board_view()
            done[i] = ended
    assert done.all()


def test_partial_reset_and_seed_lists() -> None:
    env = BattleshipVectorEnv(2, height=6, width=6, ships=(3, 2))
    with pytest.raises(ValueError, match="first reset"):
        env.reset(options={"reset_mask": [True, False]})
    with pytest.raises(ValueError, match="expected 2 seeds"):
        env.reset(seed=[1])
    env.reset(seed=[7, None])
    env.step([0, 0])
    obs, info = env.reset(options={"reset_mask": [False, True]})
    assert info["steps"].tolist() == [1, 0]
    assert obs[1, Mark.UNKNOWN].all()


def test_bad_usage() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        BattleshipVectorEnv(0)
    env = BattleshipVectorEnv(2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step([0, 0])
    env.reset(seed=0)
    with pytest.raises(CellOutOfBounds):
        env.step([0, 100])
