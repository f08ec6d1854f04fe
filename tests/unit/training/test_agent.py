"""The DQN agent: legal epsilon-greedy shots, Double-DQN targets with masking, updates, NaNs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.training.agent import DQNAgent
from actors.training.buffer import Batch
from actors.training.errors import TrainingDiverged
from tests.unit.training.support import small_config

CELLS = 36


def _batch(rows: int = 8, seed: int = 0) -> Batch:
    rng = np.random.default_rng(seed)
    marks = rng.integers(0, 4, (rows, CELLS)).astype(np.int8)
    marks[:, 0] = 0  # every board keeps a legal shot
    next_marks = rng.integers(0, 4, (rows, CELLS)).astype(np.int8)
    next_marks[:, 1] = 0
    return Batch(
        marks,
        np.zeros(rows, np.int64),
        rng.normal(size=rows).astype(np.float32),
        next_marks,
        np.full(rows, 0.9, np.float32),
    )


@settings(max_examples=40, deadline=None)
@given(
    epsilon=st.sampled_from([0.0, 0.3, 1.0]),
    seed=st.integers(0, 2**31 - 1),
    shot_share=st.floats(0.0, 0.97),
)
def test_never_fires_at_a_cell_already_shot(epsilon: float, seed: int, shot_share: float) -> None:
    agent = DQNAgent(small_config())
    rng = np.random.default_rng(seed)
    marks = np.where(rng.random((16, CELLS)) < shot_share, rng.integers(1, 4, (16, CELLS)), 0)
    marks[np.arange(16), rng.integers(0, CELLS, 16)] = 0
    actions = agent.select_actions(marks.astype(np.int8), epsilon, rng)
    assert (marks[np.arange(16), actions] == 0).all()


def test_greedy_shots_follow_the_network_among_legal_cells() -> None:
    agent = DQNAgent(small_config())
    marks = np.zeros((3, CELLS), np.int8)
    marks[:, :30] = 1
    with torch.no_grad():
        q = agent.online(agent.boards(marks)).numpy()
    expected = np.where(marks == 0, q, -np.inf).argmax(axis=1)
    actions = agent.select_actions(marks, 0.0, np.random.default_rng(0))
    assert actions.tolist() == expected.tolist()


def test_random_shots_are_spread_over_legal_cells() -> None:
    agent = DQNAgent(small_config())
    marks = np.ones((2000, CELLS), np.int8)
    marks[:, [3, 17, 29]] = 0
    actions = agent.select_actions(marks, 1.0, np.random.default_rng(1))
    counts = np.bincount(actions, minlength=CELLS)
    assert set(np.flatnonzero(counts)) == {3, 17, 29}
    assert counts[[3, 17, 29]].min() > 550


class FixedQ(torch.nn.Module):
    """A stand-in network answering the same Q-values for every board."""

    def __init__(self, q: list[float]) -> None:
        super().__init__()
        self.q = torch.tensor(q)

    def forward(self, boards: torch.Tensor) -> torch.Tensor:
        return self.q.expand(len(boards), -1)


def _q(**cells: float) -> list[float]:
    q = [0.0] * CELLS
    for name, value in cells.items():
        q[int(name[1:])] = value
    return q


def test_double_dqn_target_ignores_cells_already_shot() -> None:
    agent = DQNAgent(small_config())
    batch = _batch(rows=4)
    next_marks = np.ones((4, CELLS), np.int8)
    next_marks[:, [5, 7]] = 0
    batch = Batch(batch.marks, batch.actions, batch.returns, next_marks, batch.bootstrap)
    # The online net prefers shot cell 0, then legal cell 5; the target net values 7 most.
    agent.online = FixedQ(_q(c0=100.0, c5=2.0, c7=1.0))  # type: ignore[assignment]
    agent.target = FixedQ(_q(c0=50.0, c5=-3.0, c7=9.0))  # type: ignore[assignment]
    targets = agent.td_targets(batch)
    assert torch.allclose(targets, torch.from_numpy(batch.returns) + 0.9 * -3.0)


def test_plain_dqn_target_takes_the_target_networks_legal_max() -> None:
    agent = DQNAgent(small_config(double_dqn=False))
    batch = _batch(rows=4)
    legal = torch.from_numpy(batch.next_marks == 0)
    with torch.no_grad():
        q = agent.target(agent.boards(batch.next_marks)).masked_fill(~legal, float("-inf"))
    expected = torch.from_numpy(batch.returns) + 0.9 * q.amax(dim=1)
    assert torch.allclose(agent.td_targets(batch), expected)


def test_finished_games_do_not_bootstrap() -> None:
    agent = DQNAgent(small_config())
    batch = _batch(rows=3)
    batch = Batch(
        batch.marks,
        batch.actions,
        batch.returns,
        np.ones((3, CELLS), np.int8),
        np.zeros(3, np.float32),
    )
    assert torch.equal(agent.td_targets(batch), torch.from_numpy(batch.returns))


def test_training_steps_fit_a_fixed_batch() -> None:
    agent = DQNAgent(small_config(learning_rate=3e-3, target_update_interval=1000))
    batch = _batch(rows=32)
    first = agent.train_step(batch)["loss"]
    for _ in range(60):
        last = agent.train_step(batch)["loss"]
    assert last < first / 2
    assert agent.updates == 61


def test_target_network_follows_on_its_interval() -> None:
    agent = DQNAgent(small_config(target_update_interval=3, learning_rate=1e-2))
    batch = _batch()
    before = [p.clone() for p in agent.target.parameters()]
    agent.train_step(batch)
    agent.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.target.parameters(), strict=True))
    agent.train_step(batch)
    for t, o in zip(agent.target.parameters(), agent.online.parameters(), strict=True):
        assert torch.equal(t, o)


def test_polyak_updates_blend() -> None:
    agent = DQNAgent(small_config(tau=0.25))
    with torch.no_grad():
        for p in agent.online.parameters():
            p.fill_(1.0)
        for p in agent.target.parameters():
            p.fill_(0.0)
    agent.update_target()
    assert all(torch.allclose(p, torch.full_like(p, 0.25)) for p in agent.target.parameters())


def test_a_non_finite_loss_stops_training_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    agent = DQNAgent(small_config())
    batch = _batch()
    bad = Batch(
        batch.marks,
        batch.actions,
        np.full_like(batch.returns, np.nan),
        batch.next_marks,
        batch.bootstrap,
    )
    with caplog.at_level(logging.ERROR, "troupe.training"), pytest.raises(TrainingDiverged):
        agent.train_step(bad)
    assert any(r.message == "training loss is not finite" for r in caplog.records)


def test_blowing_up_q_values_log_a_divergence_warning(caplog: pytest.LogCaptureFixture) -> None:
    agent = DQNAgent(small_config(divergence_threshold=1.0, learning_rate=1e-4))
    batch = _batch()
    big = Batch(batch.marks, batch.actions, batch.returns, batch.next_marks, batch.bootstrap)
    bias = agent.online.advantage.bias
    assert bias is not None
    with torch.no_grad():
        bias.fill_(100.0)
        agent.online.value[-1].bias.fill_(100.0)  # type: ignore[index]
    with caplog.at_level(logging.WARNING, "troupe.training"):
        agent.train_step(big)
        agent.train_step(big)
    warnings = [r for r in caplog.records if r.message == "Q-values are diverging"]
    assert len(warnings) == 1, "one warning when Q crosses the threshold, not one per step"


def test_state_round_trip() -> None:
    a = DQNAgent(small_config())
    a.train_step(_batch())
    b = DQNAgent(small_config(seed=5))
    b.load_state_dict(a.state_dict())
    assert b.updates == 1
    boards = a.boards(_batch().marks)
    assert torch.equal(a.online(boards), b.online(boards))
    assert torch.equal(a.target(boards), b.target(boards))
