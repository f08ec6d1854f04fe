"""The Gymnasium environment: API compliance, rewards, masks, termination and determinism."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

import actors.battleship
from actors.battleship.engine import Mark, Orientation, Placement
from actors.battleship.env import PLANES, BattleshipEnv, Rewards, StepResult
from actors.battleship.errors import CellAlreadyShot, CellOutOfBounds
from tests.unit.battleship.support import FLEET, FLEET_CELLS

ENV_ID = "troupe/Battleship-v0"


def random_masked_episode(env: BattleshipEnv, seed: int) -> tuple[list[int], list[float], dict]:
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions: list[int] = []
    rewards: list[float] = []
    done = False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        _obs, reward, terminated, truncated, info = env.step(action)
        actions.append(action)
        rewards.append(float(reward))
        done = terminated or truncated
    return actions, rewards, info


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"height": 6, "width": 6, "ships": (3, 2)},
        {"height": 5, "width": 7, "no_touch": True, "ships": (3, 2, 2)},
    ],
)
def test_check_env_passes_without_a_single_warning(kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(ENV_ID, **kwargs)
        check_env(env.unwrapped)
        env.close()


def test_registration_is_explicit_and_idempotent() -> None:
    assert actors.battleship.register() == ENV_ID
    assert actors.battleship.register() == ENV_ID
    assert gym.spec(ENV_ID).entry_point == "actors.battleship.env:BattleshipEnv"
    env = gym.make(ENV_ID, height=6, width=6, ships=(3, 2))
    assert isinstance(env.unwrapped, BattleshipEnv)
    assert env.observation_space.shape == (PLANES, 6, 6)
    assert env.action_space.n == 36


def test_spaces_and_initial_observation() -> None:
    env = BattleshipEnv()
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 10, 10)
    assert obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    assert (obs[Mark.UNKNOWN] == 1).all()
    assert obs[1:].sum() == 0
    assert info["action_mask"].all()
    assert info["result"] == StepResult.NONE
    assert (info["steps"], info["shots"], info["invalid_actions"]) == (0, 0, 0)
    assert info["ships_remaining"] == 5
    assert info["sunk_ship"] == -1


def test_scripted_episode_observations_and_rewards() -> None:
    env = BattleshipEnv()
    rewards = Rewards()
    env.reset(seed=0, options={"placements": FLEET})
    obs, reward, terminated, truncated, info = env.step(1 * 10 + 1)  # B2: water
    assert (reward, terminated, truncated) == (rewards.miss, False, False)
    assert obs[Mark.MISS, 1, 1] == 1
    assert obs[Mark.UNKNOWN, 1, 1] == 0
    assert info["result"] == StepResult.MISS

    obs, reward, *_, info = env.step(94)  # J5: destroyer hit
    assert reward == rewards.hit
    assert obs[Mark.HIT, 9, 4] == 1
    assert info["result"] == StepResult.HIT

    obs, reward, *_, info = env.step(95)  # J6: destroyer sunk
    assert reward == rewards.sunk
    assert obs[Mark.SUNK, 9, 4] == 1
    assert obs[Mark.SUNK, 9, 5] == 1
    assert obs[Mark.HIT].sum() == 0
    assert info["result"] == StepResult.SUNK
    assert info["sunk_ship"] == 4
    assert info["ships_remaining"] == 4
    assert (obs.sum(axis=0) == 1).all()


def test_winning_episode_terminates_with_the_documented_return() -> None:
    env = BattleshipEnv()
    env.reset(
        options={
            "placements": [
                {"ship": p.ship, "row": p.row, "col": p.col, "orientation": p.orientation.value}
                for p in FLEET
            ]
        }
    )
    total, misses = 0.0, [(1, 1), (1, 2), (8, 8)]
    for r, c in misses + sorted(FLEET_CELLS):
        _, reward, terminated, truncated, info = env.step(r * 10 + c)
        total += float(reward)
    assert terminated
    assert not truncated
    assert info["shots"] == 20
    assert total == Rewards().total_for_win(env.rules, 20) == 12 + 10 + 10 - 3
    with pytest.raises(ResetNeeded):
        env.step(0)


def test_invalid_action_is_penalised_and_changes_nothing() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2))
    env.reset(seed=1)
    first, *_ = env.step(0)
    obs, reward, terminated, truncated, info = env.step(0)
    assert reward == Rewards().invalid
    assert not terminated
    assert not truncated
    assert (obs == first).all()
    assert info["result"] == StepResult.INVALID
    assert (info["steps"], info["shots"], info["invalid_actions"]) == (2, 1, 1)


def test_invalid_action_can_raise_instead() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2), invalid_action="raise")
    env.reset(seed=1)
    env.step(7)
    with pytest.raises(CellAlreadyShot, match="B2 was already fired at"):
        env.step(7)
    with pytest.raises(CellOutOfBounds):
        env.step(36)


def test_truncation_at_the_step_limit() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2), max_steps=5)
    env.reset(
        seed=2,
        options={
            "placements": [
                Placement("cruiser", 5, 0),
                Placement("destroyer", 3, 4, Orientation.VERTICAL),
            ]
        },
    )
    results = [env.step(0) for _ in range(5)]
    assert [r[3] for r in results] == [False] * 4 + [True]
    assert not any(r[2] for r in results)
    assert results[-1][4]["invalid_actions"] == 4


def test_default_step_limit_is_never_hit_by_masked_play() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2))
    assert env.max_steps == 36
    for seed in range(20):
        actions, _, info = random_masked_episode(env, seed)
        assert info["ships_remaining"] == 0
        assert len(actions) <= 36


def test_masks_never_allow_a_cell_already_shot() -> None:
    env = BattleshipEnv()
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        shot: set[int] = set()
        rng = np.random.default_rng(seed)
        done = False
        while not done:
            mask = env.action_masks()
            assert (mask == info["action_mask"]).all()
            assert not mask[list(shot)].any()
            assert (mask == (obs[Mark.UNKNOWN].reshape(-1) == 1)).all()
            action = int(rng.choice(np.flatnonzero(mask)))
            shot.add(action)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        assert terminated


def test_seeded_resets_are_reproducible_across_episodes_and_instances() -> None:
    a, b = BattleshipEnv(), BattleshipEnv()
    runs_a = [random_masked_episode(a, seed) for seed in (3, 4, 3)]
    runs_b = [random_masked_episode(b, seed) for seed in (3, 4, 3)]
    assert [r[:2] for r in runs_a] == [r[:2] for r in runs_b]
    assert runs_a[0][:2] == runs_a[2][:2]
    assert runs_a[0][:2] != runs_a[1][:2]
    assert a.board is not None


def test_unseeded_reset_continues_the_generator() -> None:
    env = BattleshipEnv()
    env.reset(seed=9)
    first = env.board.placements if env.board else ()
    env.reset()
    second = env.board.placements if env.board else ()
    again = BattleshipEnv()
    again.reset(seed=9)
    again.reset()
    assert first != second
    assert again.board is not None
    assert again.board.placements == second


def test_multi_episode_run_with_gym_make() -> None:
    env = gym.make(ENV_ID, height=6, width=6, ships=(3, 2))
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    episodes, steps = 0, 0
    while episodes < 10:
        assert env.observation_space.contains(obs)
        assert (obs.sum(axis=0) == 1).all()
        obs, _, terminated, truncated, info = env.step(
            rng.choice(np.flatnonzero(info["action_mask"]))
        )
        steps += 1
        if terminated or truncated:
            assert terminated
            assert info["ships_remaining"] == 0
            episodes += 1
            obs, info = env.reset()
            assert info["steps"] == 0
    assert steps >= 10 * 5
    env.close()


def test_board_view_and_render() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2), render_mode="ansi")
    with pytest.raises(ResetNeeded):
        env.board_view()
    env.reset(seed=0)
    env.step(0)
    view = env.board_view()
    assert view.remaining == (3, 2)
    assert view.marks[0] in (Mark.MISS, Mark.HIT, Mark.SUNK)
    text = env.render()
    assert text is not None
    assert "steps 1/36" in text
    assert BattleshipEnv().render() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_steps": 0}, "max_steps"),
        ({"invalid_action": "ignore"}, "invalid_action"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BattleshipEnv(**kwargs)
