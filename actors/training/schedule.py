"""The exploration schedule: the probability of a random shot as training goes on."""

from __future__ import annotations

from dataclasses import dataclass

from actors.training.config import Schedule, TrainConfig

EXPONENTIAL_FLOOR = 0.01
"""An exponential schedule has closed all but this share of the gap when the decay ends."""


@dataclass(frozen=True, slots=True)
class EpsilonSchedule:
    """Epsilon falls from ``start`` to ``end`` over ``decay_steps`` shots, then stays at ``end``.

    ``linear`` falls by the same amount every shot; ``exponential`` shrinks the gap to
    ``end`` by the same factor every shot (fast at first, a long tail of rare exploration).
    """

    start: float
    end: float
    decay_steps: int
    kind: Schedule = "linear"

    def __post_init__(self) -> None:
        if not 0.0 <= self.end <= self.start <= 1.0:
            raise ValueError(f"need 0 <= end <= start <= 1, got start={self.start} end={self.end}")
        if self.decay_steps < 1:
            raise ValueError(f"decay_steps must be at least 1, not {self.decay_steps}")

    @classmethod
    def of(cls, config: TrainConfig) -> EpsilonSchedule:
        """The schedule a training configuration asks for."""
        return cls(
            config.epsilon_start,
            config.epsilon_end,
            max(1, round(config.total_steps * config.exploration_fraction)),
            config.epsilon_schedule,
        )

    def __call__(self, step: int) -> float:
        """Epsilon after ``step`` shots."""
        if step >= self.decay_steps:
            return self.end
        progress = max(step, 0) / self.decay_steps
        gap = self.start - self.end
        if self.kind == "linear":
            return self.start - gap * progress
        return float(self.end + gap * EXPONENTIAL_FLOOR**progress)
