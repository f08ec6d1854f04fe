"""Evaluating a policy: batched greedy play equals one-game-at-a-time play; head-to-head rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actors.battleship.engine import Rules
from actors.battleship.evaluate import evaluate as evaluate_player
from actors.battleship.evaluate import fleet_rng, play, player_rng
from actors.battleship.players import BASELINES
from actors.training import checkpoints
from actors.training.evaluation import agent_shots, evaluate, head_to_head
from actors.training.network import QNetwork
from actors.training.policy import TrainedPlayer

RULES = Rules.of(6, 6, (3, 2))


def _player(seed: int = 0) -> TrainedPlayer:
    import torch

    torch.manual_seed(seed)
    return TrainedPlayer("net", QNetwork(8, 2))


def test_batched_evaluation_plays_exactly_like_the_player_protocol() -> None:
    player = _player()
    batched = agent_shots(player, RULES, 12, seed=4)
    one_by_one = [play(player, RULES, fleet_rng(4, i), player_rng(4, i)) for i in range(12)]
    assert batched == one_by_one
    assert evaluate_player(player, 12, rules=RULES, seed=4).mean == pytest.approx(np.mean(batched))


def test_ties_go_to_whoever_fired_first() -> None:
    # Game 0: the agent fires first; game 1: the baseline does.
    assert head_to_head([10, 10], [10, 10]) == (1, 1)
    assert head_to_head([9, 12, 30], [10, 11, 30]) == (2, 1)


def test_report_compares_with_the_same_fleets() -> None:
    player = _player()
    report = evaluate(player, RULES, games=10, seed=2, baselines=["random", "hunt_target"])
    assert report.agent.games == 10
    assert [v.baseline.player for v in report.versus] == ["random", "hunt_target"]
    hunt = report.versus[1]
    expected = evaluate_player(BASELINES["hunt_target"], 10, rules=RULES, seed=2)
    assert hunt.baseline.mean == expected.mean
    assert hunt.wins + hunt.losses == 10
    assert hunt.win_rate == hunt.wins / 10


def test_a_player_loads_from_its_model_file(tmp_path: Path) -> None:
    player = _player(3)
    path = tmp_path / "model.pt"
    digest = checkpoints.save_model(
        path, player.net.state_dict(), player.net.architecture(), {"height": 6, "width": 6}
    )
    assert digest == checkpoints.sha256_of(path)
    loaded = TrainedPlayer.from_file("copy", path)
    assert loaded.board == {"height": 6, "width": 6}
    assert agent_shots(loaded, RULES, 5, seed=0) == agent_shots(player, RULES, 5, seed=0)


def test_a_checkpoint_is_not_a_model_file(tmp_path: Path) -> None:
    from actors.training.errors import CheckpointUnreadable

    path = checkpoints.save_checkpoint({"steps": 1}, tmp_path / "c.pt")
    with pytest.raises(CheckpointUnreadable, match="format"):
        checkpoints.load_model(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointUnreadable):
        checkpoints.load_checkpoint(tmp_path / "junk.pt")
