"""The training loop: identical runs from one seed, exact resumes, files, and it learns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from actors.battleship.engine import Rules
from actors.battleship.evaluate import evaluate as evaluate_baseline
from actors.battleship.players import RandomPlayer
from actors.training import checkpoints, paths
from actors.training.errors import CheckpointNotFound, IncompatibleResume
from actors.training.trainer import Trainer, TrainResult
from tests.unit.training.support import small_config

TIMING = {"steps_per_second", "elapsed_seconds"}


def _history(result: TrainResult) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in result.history]


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.agent.online.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_runs_with_one_seed_are_identical(tmp_path: Path) -> None:
    config = small_config()
    first, second = Trainer(config, tmp_path / "a"), Trainer(config, tmp_path / "b")
    a, b = first.run(), second.run()
    assert _same(_weights(first), _weights(second))
    assert _history(a) == _history(b)
    assert a.evaluation == b.evaluation
    assert a.model_sha256 == b.model_sha256
    other = Trainer(small_config(seed=1), tmp_path / "c")
    other.run()
    assert not _same(_weights(first), _weights(other))


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    config = small_config(total_steps=960, checkpoint_every=480, log_every=160, eval_every=480)
    straight = Trainer(config, tmp_path / "straight")
    expected = straight.run()

    calls = {"n": 0}

    def stop_midway() -> bool:
        calls["n"] += 1
        return calls["n"] > 50  # 50 vector steps of 8 boards: 400 shots

    interrupted = Trainer(config, tmp_path / "resumed", should_stop=stop_midway)
    stopped = interrupted.run()
    assert stopped.stopped
    assert stopped.metrics.step == 400
    resumed = Trainer(config, tmp_path / "resumed")
    result = resumed.run(resume_from=stopped.checkpoint)
    assert _same(_weights(straight), _weights(resumed))
    assert _history(result) == _history(expected)
    assert result.evaluation == expected.evaluation


def test_files_of_a_run(tmp_path: Path) -> None:
    config = small_config(total_steps=1600, checkpoint_every=400, keep_checkpoints=2)
    reports: list[tuple[int, Path | None]] = []
    result = Trainer(config, tmp_path, on_report=lambda m, c: reports.append((m.step, c))).run()
    kept = [step for step, _ in paths.periodic(tmp_path / paths.CHECKPOINTS)]
    assert kept == [1200, 1600], "the newest periodic checkpoints only"
    assert [c is not None for _, c in reports] == [False, True] * 4
    assert result.checkpoint == paths.step_path(tmp_path / paths.CHECKPOINTS, 1600)
    assert result.model_path == tmp_path / paths.MODEL
    assert result.model_sha256 == checkpoints.sha256_of(tmp_path / paths.MODEL)
    assert (tmp_path / paths.CURVE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / paths.METRICS).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [
        200,
        400,
        600,
        800,
        1000,
        1200,
        1400,
        1600,
    ]
    last = json.loads(lines[-1])
    assert last["loss"] is not None, "the final line keeps the last window's metrics"
    assert last["mean_shots"] is not None
    assert last["steps_per_second"] > 0
    assert last["eval_mean"] == result.metrics.eval_mean
    assert result.metrics.loss == last["loss"]
    evaluation = json.loads((tmp_path / paths.EVALUATION).read_text())
    assert evaluation["games"] == 20
    assert (tmp_path / paths.CONFIG).is_file()
    model = checkpoints.load_model(tmp_path / paths.MODEL)
    assert model["board"] == {"height": 6, "width": 6, "ships": [3, 2], "no_touch": False}


def test_resume_refuses_a_different_network(tmp_path: Path) -> None:
    result = Trainer(small_config(total_steps=400), tmp_path).run()
    with pytest.raises(IncompatibleResume, match="channels"):
        Trainer(small_config(channels=4), tmp_path).run(resume_from=result.checkpoint)


def test_resume_from_a_missing_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFound, match="does not exist"):
        Trainer(small_config(), tmp_path).run(resume_from=tmp_path / "nope.pt")


def test_a_short_run_on_a_small_board_beats_the_random_player(tmp_path: Path) -> None:
    config = small_config(
        total_steps=24_000,
        num_envs=16,
        channels=16,
        layers=3,
        batch_size=32,
        learning_starts=500,
        exploration_fraction=0.3,
        learning_rate=1e-3,
        target_update_interval=100,
        log_every=4000,
        checkpoint_every=24_000,
        eval_every=0,
        eval_games=300,
    )
    result = Trainer(config, tmp_path).run()
    assert result.evaluation is not None
    rules = Rules.of(6, 6, (3, 2))
    random_mean = evaluate_baseline(RandomPlayer(), 300, rules=rules, seed=0).mean
    (versus,) = result.evaluation.versus
    assert versus.baseline.mean == random_mean
    # Random play needs about 31 shots here and hunt/target about 18.
    assert result.evaluation.agent.mean < random_mean - 5
    assert versus.win_rate > 0.7
