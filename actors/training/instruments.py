"""The agent's spans, metrics and logs, named as the Battleship telemetry contract asks."""

from __future__ import annotations

import logging
import threading
from typing import Final, Literal

from opentelemetry import metrics, trace

from actors.kernel import telemetry

SCOPE: Final = "troupe.training"
SELECT_ACTION_SPAN: Final = "battleship.agent.select_action"
TRAIN_STEP_SPAN: Final = "battleship.agent.train_step"

PolicyMode = Literal["explore", "exploit"]
"""``exploit`` when every shot is greedy (epsilon 0), ``explore`` while epsilon-greedy."""

LOSS_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 100.0)
INFERENCE_BUCKETS: Final = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
STEP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

log = logging.getLogger("troupe.training")


class AgentMetrics:
    """The agent's instruments. Prometheus names: dots become underscores, seconds get a
    ``_seconds`` suffix and counters ``_total``; the only label is ``policy_mode``."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.training_steps = meter.create_counter(
            "battleship.agent.training.steps",
            description="Gradient steps taken by the agent's Q-network.",
        )
        self.inference_duration = meter.create_histogram(
            "battleship.agent.inference.duration",
            unit="s",
            description="Time to choose the shots of one select_action call (all its boards).",
            explicit_bucket_boundaries_advisory=INFERENCE_BUCKETS,
        )
        self.training_loss = meter.create_histogram(
            "battleship.agent.training.loss",
            description="TD loss of each gradient step.",
            explicit_bucket_boundaries_advisory=LOSS_BUCKETS,
        )
        self.training_step_duration = meter.create_histogram(
            "battleship.agent.training.step.duration",
            unit="s",
            description="Wall time of one gradient step: sampling, targets, backward, update.",
            explicit_bucket_boundaries_advisory=STEP_BUCKETS,
        )
        self.divergences = meter.create_counter(
            "battleship.agent.training.divergences",
            description="Gradient steps whose loss was not finite or whose Q-values blew up.",
        )


_lock = threading.Lock()
_current: tuple[telemetry.Telemetry, AgentMetrics] | None = None


def agent_metrics() -> AgentMetrics:
    """The instruments of the current telemetry configuration (rebuilt after ``configure``)."""
    global _current
    state = telemetry.get()
    current = _current
    if current is not None and current[0] is state:
        return current[1]
    with _lock:
        if _current is None or _current[0] is not state:
            _current = (state, AgentMetrics(state.meter(SCOPE)))
        return _current[1]


def tracer() -> trace.Tracer:
    """The training tracer of the current telemetry configuration."""
    return telemetry.tracer(SCOPE)


def rounded_epsilon(epsilon: float) -> float:
    """Epsilon as span attributes carry it: three decimals keep the value set small."""
    return round(float(epsilon), 3)
