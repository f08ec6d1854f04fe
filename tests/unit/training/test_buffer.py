"""Replay buffer capacity and order, and n-step transitions."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.training.buffer import NStepCollector, ReplayBuffer

CELLS = 4


def _rows(first: int, n: int) -> dict[str, np.ndarray]:
    ids = np.arange(first, first + n)
    return {
        "marks": np.tile((ids % 4)[:, None], (1, CELLS)).astype(np.int8),
        "actions": ids.astype(np.int64),
        "returns": ids.astype(np.float32),
        "next_marks": np.zeros((n, CELLS), np.int8),
        "bootstrap": np.full(n, 0.9, np.float32),
    }


def test_holds_at_most_capacity_and_drops_the_oldest_first() -> None:
    buffer = ReplayBuffer(5, CELLS, seed=0)
    buffer.add(**_rows(0, 3))
    assert len(buffer) == 3
    buffer.add(**_rows(3, 4))
    assert len(buffer) == 5
    assert buffer.added == 7
    assert buffer.actions[buffer.oldest_first()].tolist() == [2, 3, 4, 5, 6]


def test_a_batch_larger_than_capacity_keeps_its_newest_rows() -> None:
    buffer = ReplayBuffer(4, CELLS, seed=0)
    buffer.add(**_rows(0, 10))
    assert buffer.actions[buffer.oldest_first()].tolist() == [6, 7, 8, 9]
    assert buffer.added == 10


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 12),
    batches=st.lists(st.integers(0, 15), min_size=1, max_size=12),
)
def test_matches_a_bounded_fifo(capacity: int, batches: list[int]) -> None:
    buffer = ReplayBuffer(capacity, CELLS, seed=0)
    model: deque[int] = deque(maxlen=capacity)
    first = 0
    for n in batches:
        buffer.add(**_rows(first, n))
        model.extend(range(first, first + n))
        first += n
        assert len(buffer) == len(model)
        assert buffer.actions[buffer.oldest_first()].tolist() == list(model)


def test_samples_are_stored_transitions_and_reproducible() -> None:
    a, b = ReplayBuffer(50, CELLS, seed=3), ReplayBuffer(50, CELLS, seed=3)
    for buffer in (a, b):
        buffer.add(**_rows(0, 30))
    first, second = a.sample(16), b.sample(16)
    assert np.array_equal(first.actions, second.actions)
    assert first.marks.shape == (16, CELLS)
    assert np.array_equal(first.returns, first.actions.astype(np.float32))
    assert set(first.actions.tolist()) <= set(range(30))


def test_empty_buffer_refuses_to_sample() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, CELLS, seed=0).sample(1)


def test_state_round_trip_keeps_contents_order_and_sampling() -> None:
    buffer = ReplayBuffer(6, CELLS, seed=1)
    buffer.add(**_rows(0, 9))
    restored = ReplayBuffer(6, CELLS, seed=99)
    restored.load_state_dict(buffer.state_dict())
    assert restored.actions[restored.oldest_first()].tolist() == [3, 4, 5, 6, 7, 8]
    assert restored.added == 9
    assert np.array_equal(restored.sample(8).actions, buffer.sample(8).actions)
    buffer.add(**_rows(9, 2))
    restored.add(**_rows(9, 2))
    assert (
        restored.actions[restored.oldest_first()].tolist()
        == buffer.actions[buffer.oldest_first()].tolist()
    )


def _marks(value: int, envs: int = 2) -> np.ndarray:
    return np.full((envs, CELLS), value, np.int8)


def test_n_step_returns_discount_and_bootstrap() -> None:
    gamma = 0.5
    collector = NStepCollector(2, 3, gamma)
    not_done = np.zeros(2, np.bool_)
    assert (
        collector.push(_marks(0), np.array([0, 0]), np.array([1.0, 2.0]), _marks(1), not_done)
        is None
    )
    assert (
        collector.push(_marks(1), np.array([1, 1]), np.array([1.0, 2.0]), _marks(2), not_done)
        is None
    )
    out = collector.push(_marks(2), np.array([2, 2]), np.array([1.0, 2.0]), _marks(3), not_done)
    assert out is not None
    assert out.actions.tolist() == [0, 0]
    assert out.returns.tolist() == [1 + 0.5 + 0.25, 2 + 1 + 0.5]
    assert out.bootstrap.tolist() == [gamma**3, gamma**3]
    assert (out.marks == 0).all()
    assert (out.next_marks == 3).all()


def test_a_finished_game_flushes_its_transitions_without_bootstrap() -> None:
    collector = NStepCollector(2, 3, 0.5)
    collector.push(
        _marks(0), np.array([0, 0]), np.array([1.0, 1.0]), _marks(1), np.zeros(2, np.bool_)
    )
    out = collector.push(
        _marks(1), np.array([1, 1]), np.array([10.0, -1.0]), _marks(9), np.array([True, False])
    )
    assert out is not None
    # Board 0 ended: both of its pending shots come out, oldest first, with no bootstrap.
    assert out.actions.tolist() == [0, 1]
    assert out.returns.tolist() == [1 + 0.5 * 10, 10.0]
    assert out.bootstrap.tolist() == [0.0, 0.0]
    # Board 1 continues: its shots complete later and never mix with board 0's new game.
    out = collector.push(
        _marks(2), np.array([2, 2]), np.array([1.0, 1.0]), _marks(3), np.zeros(2, np.bool_)
    )
    assert out is not None
    assert out.actions.tolist() == [0]
    assert out.returns.tolist() == [1 - 0.5 + 0.25]


def test_one_step_collector_passes_transitions_straight_through() -> None:
    collector = NStepCollector(2, 1, 0.9)
    out = collector.push(
        _marks(0), np.array([3, 1]), np.array([1.0, -1.0]), _marks(1), np.array([False, True])
    )
    assert out is not None
    assert out.actions.tolist() == [3, 1]
    assert out.bootstrap.tolist() == pytest.approx([0.9, 0.0])


def test_collector_state_round_trip() -> None:
    a = NStepCollector(2, 3, 0.5)
    a.push(_marks(0), np.array([0, 0]), np.array([1.0, 2.0]), _marks(1), np.zeros(2, np.bool_))
    b = NStepCollector(2, 3, 0.5)
    b.load_state_dict(a.state_dict())
    args = (_marks(1), np.array([1, 1]), np.array([1.0, 1.0]), _marks(2), np.array([True, False]))
    first, second = a.push(*args), b.push(*args)
    assert first is not None
    assert second is not None
    assert first.returns.tolist() == second.returns.tolist()
