"""Small configurations the training tests share: a 6x6 board with a cruiser and a destroyer."""

from __future__ import annotations

from typing import Any

from actors.training.config import DEFAULT, replace
from schemas.training import TrainConfig


def small_config(**changes: Any) -> TrainConfig:
    """A config that trains in seconds: tiny board, tiny net, few steps."""
    base: dict[str, Any] = {
        "height": 6,
        "width": 6,
        "ships": (3, 2),
        "num_envs": 8,
        "threads": 1,
        "channels": 8,
        "layers": 2,
        "batch_size": 16,
        "buffer_capacity": 2_000,
        "learning_starts": 64,
        "total_steps": 800,
        "exploration_fraction": 0.5,
        "target_update_interval": 20,
        "log_every": 200,
        "checkpoint_every": 400,
        "eval_every": 400,
        "eval_games_during": 10,
        "eval_games": 20,
        "baselines": ("random",),
    }
    base.update(changes)
    return replace(DEFAULT, **base)
