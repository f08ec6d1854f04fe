"""The DQN agent: masked epsilon-greedy shots, Double-DQN updates and the target network."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from actors.training.buffer import Batch
from actors.training.config import TrainConfig
from actors.training.errors import TrainingDiverged
from actors.training.instruments import (
    SELECT_ACTION_SPAN,
    TRAIN_STEP_SPAN,
    PolicyMode,
    agent_metrics,
    log,
    rounded_epsilon,
    tracer,
)
from actors.training.network import QNetwork, boards_from_marks, masked_argmax, masked_max


class DQNAgent:
    """An online Q-network trained by TD learning against a slowly moving target copy.

    Shots are epsilon-greedy over the cells not yet fired at: the greedy choice is the
    highest Q among legal cells, the random one is uniform among them, so the agent never
    fires at a cell twice. Targets use Double DQN: the online network picks the best legal
    next shot and the target network values it, which removes most of the upward bias of
    taking the max over noisy estimates.
    """

    def __init__(self, config: TrainConfig, *, agent_id: str = "dqn") -> None:
        self.config = config
        self.agent_id = agent_id
        self.height, self.width = config.height, config.width
        self.online = QNetwork(config.channels, config.layers, dueling=config.dueling)
        self.target = QNetwork(config.channels, config.layers, dueling=config.dueling)
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(
            self.online.parameters(), lr=config.learning_rate, eps=config.adam_eps
        )
        self.updates = 0
        """Gradient steps taken."""
        self._diverging = False

    # -- acting ------------------------------------------------------------------

    def boards(self, marks: NDArray[np.int8]) -> Tensor:
        """The network input for ``(batch, cells)`` marks."""
        return boards_from_marks(torch.from_numpy(marks), self.height, self.width)

    def select_actions(
        self,
        marks: NDArray[np.int8],
        epsilon: float,
        rng: np.random.Generator,
    ) -> NDArray[np.int64]:
        """One shot per board: random among unshot cells with probability ``epsilon``, else
        the unshot cell of highest Q. ``rng`` decides both which boards explore and where."""
        mode: PolicyMode = "explore" if epsilon > 0 else "exploit"
        started = time.perf_counter()
        with tracer().start_as_current_span(
            SELECT_ACTION_SPAN,
            attributes={
                "agent_id": self.agent_id,
                "policy_mode": mode,
                "epsilon": rounded_epsilon(epsilon),
            },
        ):
            legal = marks == 0
            explore = rng.random(len(marks)) < epsilon
            # Uniform among legal cells: the argmax of random scores where illegal cells score -1.
            scores = np.where(legal, rng.random(marks.shape), -1.0)
            actions: NDArray[np.int64] = scores.argmax(axis=1).astype(np.int64)
            exploit = ~explore
            if exploit.any():
                with torch.no_grad():
                    q = self.online(self.boards(marks[exploit]))
                    greedy = masked_argmax(q, torch.from_numpy(legal[exploit]))
                actions[exploit] = greedy.numpy()
        agent_metrics().inference_duration.record(
            time.perf_counter() - started, {"policy_mode": mode}
        )
        return actions

    # -- learning ----------------------------------------------------------------

    def td_targets(self, batch: Batch) -> Tensor:
        """``return + bootstrap * Q_target(next, a*)`` with ``a*`` the best legal next shot."""
        next_boards = self.boards(batch.next_marks)
        legal = torch.from_numpy(batch.next_marks == 0)
        with torch.no_grad():
            target_q = self.target(next_boards)
            if self.config.double_dqn:
                best = masked_argmax(self.online(next_boards), legal)
                next_value = target_q.gather(1, best[:, None]).squeeze(1)
                # A row with no legal next shot only occurs with bootstrap 0; keep it finite.
                next_value = torch.where(legal.any(dim=1), next_value, 0.0)
            else:
                next_value = masked_max(target_q, legal)
            return torch.from_numpy(batch.returns) + torch.from_numpy(batch.bootstrap) * next_value

    def train_step(self, batch: Batch, epsilon: float = 0.0) -> dict[str, float]:
        """One gradient step on ``batch``; returns the loss and the mean Q of the taken shots."""
        metrics = agent_metrics()
        started = time.perf_counter()
        with tracer().start_as_current_span(
            TRAIN_STEP_SPAN,
            attributes={
                "agent_id": self.agent_id,
                "policy_mode": "explore" if epsilon > 0 else "exploit",
                "epsilon": rounded_epsilon(epsilon),
                "batch_size": len(batch.actions),
            },
        ):
            targets = self.td_targets(batch)
            q = self.online(self.boards(batch.marks))
            taken = q.gather(1, torch.from_numpy(batch.actions)[:, None]).squeeze(1)
            if self.config.loss == "huber":
                loss = nn.functional.smooth_l1_loss(taken, targets)
            else:
                loss = nn.functional.mse_loss(taken, targets)
            value = float(loss.item())
            q_mean = float(taken.detach().abs().mean().item())
            self.updates += 1
            if not math.isfinite(value) or not math.isfinite(q_mean):
                metrics.divergences.add(1)
                log.error(
                    "training loss is not finite",
                    extra={"agent_id": self.agent_id, "update": self.updates, "loss": value},
                )
                raise TrainingDiverged(self.updates, f"loss {value}, mean |Q| {q_mean}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            grad_norm = 0.0
            if self.config.max_grad_norm > 0:
                grad_norm = float(
                    nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
                )
            self.optimizer.step()
            self._watch_divergence(q_mean)
            if self.updates % self.config.target_update_interval == 0:
                self.update_target()
        metrics.training_steps.add(1)
        metrics.training_loss.record(value)
        metrics.training_step_duration.record(time.perf_counter() - started)
        return {"loss": value, "q_mean": q_mean, "grad_norm": grad_norm}

    def _watch_divergence(self, q_mean: float) -> None:
        above = q_mean > self.config.divergence_threshold
        if above and not self._diverging:
            agent_metrics().divergences.add(1)
            log.warning(
                "Q-values are diverging",
                extra={
                    "agent_id": self.agent_id,
                    "update": self.updates,
                    "q_mean": q_mean,
                    "threshold": self.config.divergence_threshold,
                },
            )
        self._diverging = above

    def set_learning_rate(self, progress: float) -> float:
        """Set the step size for ``progress`` (0 to 1) through the run: a linear decay from
        ``learning_rate`` to ``learning_rate * learning_rate_decay``; returns it."""
        config = self.config
        share = 1.0 - (1.0 - config.learning_rate_decay) * min(max(progress, 0.0), 1.0)
        rate = config.learning_rate * share
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def update_target(self) -> None:
        """Copy (``tau`` = 1) or blend (Polyak, ``tau`` < 1) the online weights into the target."""
        tau = self.config.tau
        with torch.no_grad():
            if tau >= 1.0:
                self.target.load_state_dict(self.online.state_dict())
                return
            for t, o in zip(self.target.parameters(), self.online.parameters(), strict=True):
                t.mul_(1.0 - tau).add_(o, alpha=tau)

    # -- persistence ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer and counters, for a checkpoint."""
        return {
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "architecture": self.online.architecture(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
