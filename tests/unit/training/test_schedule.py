"""The epsilon schedule: endpoints, monotonic decay, both shapes."""

from __future__ import annotations

import itertools

import pytest

from actors.training.config import DEFAULT, replace
from actors.training.schedule import EXPONENTIAL_FLOOR, EpsilonSchedule


@pytest.mark.parametrize("kind", ["linear", "exponential"])
def test_decays_from_start_to_end_then_stays(kind: str) -> None:
    schedule = EpsilonSchedule(1.0, 0.05, 1000, kind)  # type: ignore[arg-type]
    values = [schedule(step) for step in range(0, 1500, 10)]
    assert values[0] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert schedule(1000) == schedule(10**9) == 0.05


def test_linear_falls_evenly() -> None:
    schedule = EpsilonSchedule(1.0, 0.0, 100, "linear")
    assert schedule(25) == pytest.approx(0.75)
    assert schedule(50) == pytest.approx(0.5)


def test_exponential_closes_the_gap_geometrically() -> None:
    schedule = EpsilonSchedule(1.0, 0.0, 100, "exponential")
    assert schedule(50) == pytest.approx(EXPONENTIAL_FLOOR**0.5)
    assert schedule(25) == pytest.approx(EXPONENTIAL_FLOOR**0.25)


def test_follows_the_configuration() -> None:
    config = replace(
        DEFAULT, total_steps=10_000, exploration_fraction=0.2, epsilon_start=0.8, epsilon_end=0.1
    )
    schedule = EpsilonSchedule.of(config)
    assert schedule.decay_steps == 2000
    assert schedule(0) == 0.8
    assert schedule(1000) == pytest.approx(0.45)
    assert schedule(2000) == 0.1


@pytest.mark.parametrize(("start", "end", "steps"), [(0.1, 0.5, 10), (1.5, 0.1, 10), (1.0, 0.1, 0)])
def test_rejects_impossible_schedules(start: float, end: float, steps: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        EpsilonSchedule(start, end, steps)
