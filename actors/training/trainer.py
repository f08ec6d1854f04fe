"""The training loop: vectorised self-play into a replay buffer, Double-DQN updates, checkpoints."""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch
from numpy.typing import NDArray

from actors.battleship.engine import Rules
from actors.battleship.vector import BattleshipVectorEnv
from actors.training import checkpoints, paths, plots
from actors.training.agent import DQNAgent
from actors.training.buffer import NStepCollector, ReplayBuffer
from actors.training.config import LEARNING_FIELDS, changed_learning_fields, render_toml, to_mapping
from actors.training.errors import IncompatibleResume
from actors.training.evaluation import agent_shots, evaluate, stats
from actors.training.policy import TrainedPlayer
from actors.training.schedule import EpsilonSchedule
from schemas.training import EvaluationReport, ProgressMetrics, TrainConfig

log = logging.getLogger("troupe.training")

Report = Callable[[ProgressMetrics, Path | None], None]
"""Called at every log point with the metrics and the checkpoint written there, if any."""


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    metrics: ProgressMetrics
    checkpoint: Path
    stopped: bool = False
    """True when ``should_stop`` ended the run early (a checkpoint was written to resume from)."""
    evaluation: EvaluationReport | None = None
    model_path: Path | None = None
    model_sha256: str | None = None
    plots: list[Path] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int, threads: int) -> None:
    """Seed Python's, numpy's and torch's global generators and pin torch's CPU behaviour.

    The run itself draws only from generators derived from ``seed`` (below); the global
    ones are seeded too so that nothing a library does behind our back varies between runs.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def rules_of(config: TrainConfig) -> Rules:
    """The engine rules of the board a config trains on."""
    return Rules.of(config.height, config.width, config.ships, no_touch=config.no_touch)


def board_of(config: TrainConfig) -> dict[str, Any]:
    """The board setup recorded with a model."""
    return {
        "height": config.height,
        "width": config.width,
        "ships": list(config.ships),
        "no_touch": config.no_touch,
    }


def marks_of(obs: NDArray[np.float32]) -> NDArray[np.int8]:
    """``(n, 4, h, w)`` one-hot observations to ``(n, h * w)`` marks."""
    marks: NDArray[np.int8] = obs.argmax(axis=1).reshape(len(obs), -1).astype(np.int8)
    return marks


class Trainer:
    """Runs one configuration to the end, reporting metrics and writing checkpoints.

    Files under ``run_dir``: ``config.toml``, ``metrics.jsonl`` (one line per log point),
    ``checkpoints/step-<n>.pt``, ``model.pt`` (the final greedy policy),
    ``evaluation.json`` and ``learning_curve.png``.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        *,
        agent_id: str = "dqn",
        on_report: Report | None = None,
        on_tick: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.checkpoint_dir = self.run_dir / paths.CHECKPOINTS
        self.agent_id = agent_id
        self.on_report = on_report
        self.on_tick = on_tick
        self.should_stop = should_stop
        seed_everything(config.seed, config.threads)
        self.rules = rules_of(config)
        self.schedule = EpsilonSchedule.of(config)
        self.env = BattleshipVectorEnv(
            config.num_envs,
            config.height,
            config.width,
            config.ships,
            no_touch=config.no_touch,
        )
        self.agent = DQNAgent(config, agent_id=agent_id)
        self.buffer = ReplayBuffer(
            config.buffer_capacity, config.cells, seed=_derived(config.seed, 2)
        )
        self.collector = NStepCollector(config.num_envs, config.n_step, config.gamma)
        self.action_rng = np.random.default_rng(_derived(config.seed, 1))
        obs, _ = self.env.reset(seed=config.seed)
        self.marks = marks_of(obs)
        self.steps = 0
        self.vector_steps = 0
        self.episodes = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self._window_shots: list[int] = []
        self._window_losses: list[float] = []
        self._window_q: list[float] = []
        self._window_started = (0, 0.0)
        self._checkpointed = -1

    # -- checkpoints -----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything the run needs to continue exactly where it is."""
        return {
            "config": to_mapping(self.config),
            "agent_id": self.agent_id,
            "steps": self.steps,
            "vector_steps": self.vector_steps,
            "episodes": self.episodes,
            "elapsed": self.elapsed,
            "agent": self.agent.state_dict(),
            "buffer": self.buffer.state_dict(),
            "collector": self.collector.state_dict(),
            "env": checkpoints.env_state(self.env),
            "marks": self.marks.copy(),
            "action_rng": self.action_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "window": {
                "shots": list(self._window_shots),
                "losses": list(self._window_losses),
                "q": list(self._window_q),
                "started_step": self._window_started[0],
            },
        }

    def load_state_dict(self, state: dict[str, Any], source: Path) -> None:
        """Continue from a checkpoint of a run with the same learning setup."""
        saved = msgspec.convert(state["config"], TrainConfig)
        changed = changed_learning_fields(saved, self.config)
        if changed:
            raise IncompatibleResume(source, changed)
        data = checkpoints.from_storable(state)
        self.agent.load_state_dict(state["agent"])
        self.buffer.load_state_dict(data["buffer"])
        self.collector.load_state_dict(data["collector"])
        checkpoints.restore_env(self.env, data["env"])
        self.marks = np.asarray(data["marks"], np.int8)
        self.action_rng.bit_generator.state = data["action_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.steps = int(state["steps"])
        self.vector_steps = int(state["vector_steps"])
        self.episodes = int(state["episodes"])
        self.elapsed = float(state["elapsed"])
        self.history = json.loads(state["history"])
        window = data["window"]
        self._window_shots = [int(x) for x in window["shots"]]
        self._window_losses = [float(x) for x in window["losses"]]
        self._window_q = [float(x) for x in window["q"]]
        self._window_started = (int(window["started_step"]), self.elapsed)

    def save_checkpoint(self) -> Path:
        """Write a periodic checkpoint at the current step and prune the old ones."""
        path = checkpoints.save_checkpoint(
            self.state_dict(), paths.step_path(self.checkpoint_dir, self.steps)
        )
        checkpoints.prune(self.checkpoint_dir, self.config.keep_checkpoints)
        self._checkpointed = self.steps
        return path

    # -- the loop ----------------------------------------------------------------------

    def run(self, resume_from: Path | None = None) -> TrainResult:
        """Train to ``total_steps`` (continuing ``resume_from`` if given), then evaluate."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / paths.CONFIG).write_text(render_toml(self.config))
        if resume_from is not None:
            self.load_state_dict(checkpoints.load_checkpoint(resume_from), resume_from)
            log.info(
                "resumed training",
                extra={
                    "agent_id": self.agent_id,
                    "step": self.steps,
                    "checkpoint": str(resume_from),
                },
            )
        config = self.config
        started = time.perf_counter() - self.elapsed
        self._window_started = (self._window_started[0], self.elapsed)
        while self.steps < config.total_steps:
            if self.should_stop is not None and self.should_stop():
                self.elapsed = time.perf_counter() - started
                path = self.save_checkpoint()
                return TrainResult(self.metrics(), path, stopped=True, history=self.history)
            before = self.steps
            self._step()
            self.elapsed = time.perf_counter() - started
            if self.on_tick is not None:
                self.on_tick(self.steps)
            self._maybe_report(before)
        return self._finish()

    def _step(self) -> None:
        config = self.config
        epsilon = self.schedule(self.steps)
        actions = self.agent.select_actions(self.marks, epsilon, self.action_rng)
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        next_marks = marks_of(obs)
        final_marks = next_marks
        if done.any():
            final_marks = next_marks.copy()
            final_marks[done] = marks_of(info["final_obs"][done])
            shots = info["final_info"]["shots"][done]
            self._window_shots.extend(int(s) for s in shots)
            self.episodes += int(done.sum())
        ready = self.collector.push(self.marks, actions, rewards, final_marks, done)
        if ready is not None:
            self.buffer.add(
                ready.marks, ready.actions, ready.returns, ready.next_marks, ready.bootstrap
            )
        self.marks = next_marks
        self.steps += config.num_envs
        self.vector_steps += 1
        if (
            self.steps >= config.learning_starts
            and len(self.buffer) >= config.batch_size
            and self.vector_steps % config.train_frequency == 0
        ):
            self.agent.set_learning_rate(self.steps / config.total_steps)
            for _ in range(config.gradient_steps):
                result = self.agent.train_step(self.buffer.sample(config.batch_size), epsilon)
                self._window_losses.append(result["loss"])
                self._window_q.append(result["q_mean"])

    def _maybe_report(self, before: int) -> None:
        config = self.config

        def crossed(every: int) -> bool:
            return every > 0 and self.steps // every > before // every

        log_due = crossed(config.log_every)
        eval_due = crossed(config.eval_every)
        checkpoint_due = crossed(config.checkpoint_every)
        if not (log_due or eval_due or checkpoint_due):
            return
        evaluation = None
        if eval_due:
            shots = agent_shots(
                self.greedy_player(), self.rules, config.eval_games_during, config.eval_seed
            )
            evaluation = stats(self.agent_id, shots)
        metrics = self.metrics(evaluation_mean=evaluation.mean if evaluation else None)
        if evaluation is not None:
            metrics = msgspec.structs.replace(metrics, eval_median=evaluation.median)
        self._close_window(metrics)
        checkpoint = self.save_checkpoint() if checkpoint_due else None
        log.info(
            "training progress",
            extra={"agent_id": self.agent_id, **msgspec.to_builtins(metrics)},
        )
        if self.on_report is not None:
            self.on_report(metrics, checkpoint)

    def metrics(self, evaluation_mean: float | None = None) -> ProgressMetrics:
        """The metrics of the current log window."""
        window_steps = self.steps - self._window_started[0]
        window_seconds = self.elapsed - self._window_started[1]
        return ProgressMetrics(
            step=self.steps,
            total_steps=self.config.total_steps,
            episodes=self.episodes,
            updates=self.agent.updates,
            mean_shots=_mean(self._window_shots),
            loss=_mean(self._window_losses),
            q_mean=_mean(self._window_q),
            epsilon=round(self.schedule(self.steps), 4),
            steps_per_second=round(window_steps / window_seconds, 1) if window_seconds > 0 else 0.0,
            elapsed_seconds=round(self.elapsed, 2),
            eval_mean=evaluation_mean,
        )

    def _close_window(self, metrics: ProgressMetrics) -> None:
        self.history.append(msgspec.to_builtins(metrics))
        self._window_shots.clear()
        self._window_losses.clear()
        self._window_q.clear()
        self._window_started = (self.steps, self.elapsed)
        with (self.run_dir / paths.METRICS).open("w") as f:
            for record in self.history:
                f.write(json.dumps(record) + "\n")

    def greedy_player(self) -> TrainedPlayer:
        """A frozen copy of the online network, playing greedily."""
        return TrainedPlayer(
            self.agent_id, copy.deepcopy(self.agent.online), board=board_of(self.config)
        )

    def _finish(self) -> TrainResult:
        config = self.config
        if self.history and self.history[-1]["step"] == self.steps:
            final = msgspec.convert(self.history[-1], ProgressMetrics)
        else:
            final = self.metrics()
            self._close_window(final)
        path = paths.step_path(self.checkpoint_dir, self.steps)
        if self._checkpointed != self.steps or not path.is_file():
            path = self.save_checkpoint()
        model_path = self.run_dir / paths.MODEL
        sha = checkpoints.save_model(
            model_path,
            self.agent.online.state_dict(),
            self.agent.online.architecture(),
            board_of(config),
            {"agent_id": self.agent_id, "steps": self.steps, "config": to_mapping(config)},
        )
        report = evaluate(
            self.greedy_player(),
            self.rules,
            games=config.eval_games,
            seed=config.eval_seed,
            baselines=config.baselines,
        )
        final = msgspec.structs.replace(
            final, eval_mean=report.agent.mean, eval_median=report.agent.median
        )
        self.history[-1] = msgspec.to_builtins(final)
        (self.run_dir / paths.EVALUATION).write_bytes(
            msgspec.json.format(msgspec.json.encode(report))
        )
        with (self.run_dir / paths.METRICS).open("w") as f:
            for record in self.history:
                f.write(json.dumps(record) + "\n")
        figures = plots.learning_curves(self.history, report, self.run_dir / paths.CURVE)
        log.info(
            "training finished",
            extra={
                "agent_id": self.agent_id,
                "step": self.steps,
                "mean_shots": report.agent.mean,
                "elapsed_seconds": round(self.elapsed, 1),
            },
        )
        return TrainResult(
            final,
            path,
            evaluation=report,
            model_path=model_path,
            model_sha256=sha,
            plots=figures,
            history=self.history,
        )


def _derived(seed: int, stream: int) -> int:
    """An independent seed for generator number ``stream`` of a run."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0])


def _mean(values: list[float] | list[int]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


__all__ = ["LEARNING_FIELDS", "Report", "TrainResult", "Trainer", "board_of", "rules_of"]
