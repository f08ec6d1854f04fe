"""Training and inference speed of the DQN agent, against the environment and a baseline player."""

from __future__ import annotations

import copy
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from actors.battleship.engine import Board, Rules
from actors.battleship.players import BASELINES
from actors.battleship.vector import BattleshipVectorEnv
from actors.training.agent import DQNAgent
from actors.training.config import DEFAULT, replace
from actors.training.policy import TrainedPlayer
from actors.training.trainer import Trainer, marks_of
from bench.env import BenchEnv, Result


def _env_shots_per_second(vector_steps: int) -> float:
    """Shots per second of the vectorised env alone, firing at random legal cells."""
    env = BattleshipVectorEnv(DEFAULT.num_envs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(vector_steps):
        legal = env.action_masks()
        env.step(np.where(legal, rng.random(legal.shape), -1.0).argmax(axis=1))
    return vector_steps * DEFAULT.num_envs / (time.perf_counter() - started)


def _training_shots_per_second(vector_steps: int, warmup: int) -> tuple[float, float]:
    """Shots and gradient steps per second of the default configuration's loop, learning."""
    config = replace(
        DEFAULT,
        learning_starts=0,
        total_steps=10**9,
        log_every=10**9,
        checkpoint_every=10**9,
        eval_every=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, Path(tmp))
        for _ in range(warmup):
            trainer._step()
        updates = trainer.agent.updates
        started = time.perf_counter()
        for _ in range(vector_steps):
            trainer._step()
        seconds = time.perf_counter() - started
        return (
            vector_steps * config.num_envs / seconds,
            (trainer.agent.updates - updates) / seconds,
        )


def _actions_per_second(
    player: object, boards: list[Board], rng: random.Random, calls: int
) -> float:
    select = player.select  # type: ignore[attr-defined]
    views = [b.view() for b in boards]
    started = time.perf_counter()
    for i in range(calls):
        select(views[i % len(views)], rng)
    return calls / (time.perf_counter() - started)


async def run(env: BenchEnv) -> list[Result]:
    """Shots/s of env and trainer, gradient steps/s, and actions/s of greedy play."""
    threads = torch.get_num_threads()
    torch.set_num_threads(DEFAULT.threads)
    try:
        results = [
            Result(
                group="training",
                name="env shots/s (random shots, no learning)",
                value=_env_shots_per_second(env.size(400, 20)),
                unit="shots/s",
            )
        ]
        shots, updates = _training_shots_per_second(env.size(150, 5), env.size(20, 2))
        results += [
            Result(
                group="training",
                name="training shots/s (default config)",
                value=shots,
                unit="shots/s",
                baseline="env shots/s (random shots, no learning)",
                notes=f"{DEFAULT.num_envs} boards, {DEFAULT.threads} torch threads",
            ),
            Result(
                group="training",
                name="gradient steps/s (default config)",
                value=updates,
                unit="steps/s",
                notes=f"batch {DEFAULT.batch_size}, Double DQN",
            ),
        ]
        # Serving processes run inference on one thread (see actors/training/agents.py).
        torch.set_num_threads(1)
        rules = Rules()
        rng = random.Random(0)
        boards = [Board.random(rules, random.Random(i)) for i in range(32)]
        for b in boards:
            for cell in random.Random(7).sample(range(rules.cells), 20):
                b.fire_at(cell)
        calls = env.size(2000, 50)
        agent = DQNAgent(DEFAULT)
        player = TrainedPlayer("bench", copy.deepcopy(agent.online))
        results.append(
            Result(
                group="inference",
                name="hunt_target actions/s",
                value=_actions_per_second(BASELINES["hunt_target"], boards, rng, calls),
                unit="actions/s",
            )
        )
        results.append(
            Result(
                group="inference",
                name="trained greedy actions/s (one board per call)",
                value=_actions_per_second(player, boards, rng, calls),
                unit="actions/s",
                baseline="hunt_target actions/s",
            )
        )
        batch = np.stack([np.frombuffer(b.marks, np.uint8) for b in boards] * 32).astype(np.int8)
        repeats = env.size(50, 3)
        started = time.perf_counter()
        for _ in range(repeats):
            player.greedy(batch, rules.height, rules.width)
        results.append(
            Result(
                group="inference",
                name="trained greedy actions/s (1024 boards per call)",
                value=repeats * len(batch) / (time.perf_counter() - started),
                unit="actions/s",
                baseline="hunt_target actions/s",
            )
        )
        env_batch = BattleshipVectorEnv(DEFAULT.num_envs)
        obs, _ = env_batch.reset(seed=0)
        marks = marks_of(obs)
        explore = np.random.default_rng(0)
        started = time.perf_counter()
        for _ in range(repeats):
            agent.select_actions(marks, 0.05, explore)
        results.append(
            Result(
                group="inference",
                name="epsilon-greedy actions/s (training, 64 boards per call)",
                value=repeats * len(marks) / (time.perf_counter() - started),
                unit="actions/s",
                baseline="hunt_target actions/s",
            )
        )
        return results
    finally:
        torch.set_num_threads(threads)
