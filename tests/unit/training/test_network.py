"""The Q-network: shapes on any board, gradients reaching every weight, masked choices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.training.network import (
    PLANES,
    QNetwork,
    boards_from_marks,
    masked_argmax,
    masked_max,
    parameter_count,
)


@pytest.mark.parametrize(("height", "width"), [(10, 10), (6, 6), (5, 8)])
@pytest.mark.parametrize("dueling", [True, False])
def test_one_q_value_per_cell(height: int, width: int, dueling: bool) -> None:
    net = QNetwork(8, 3, dueling=dueling)
    marks = torch.randint(0, PLANES, (7, height * width), dtype=torch.int8)
    q = net(boards_from_marks(marks, height, width))
    assert q.shape == (7, height * width)
    assert q.dtype == torch.float32


def test_boards_are_one_hot_planes_in_mark_order() -> None:
    marks = torch.tensor([[0, 1, 2, 3, 0, 1]], dtype=torch.int8)
    boards = boards_from_marks(marks, 2, 3)
    assert boards.shape == (1, PLANES, 2, 3)
    assert torch.equal(boards.sum(dim=1), torch.ones(1, 2, 3))
    for cell, mark in enumerate(marks[0].tolist()):
        row, col = divmod(cell, 3)
        assert boards[0, mark, row, col] == 1.0


def test_gradients_reach_every_parameter() -> None:
    net = QNetwork(8, 3, dueling=True)
    marks = torch.randint(0, PLANES, (4, 36), dtype=torch.int8)
    q = net(boards_from_marks(marks, 6, 6))
    q.gather(1, torch.tensor([[0], [5], [17], [35]])).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_architecture_rebuilds_the_same_network() -> None:
    net = QNetwork(12, 4, dueling=False)
    copy = QNetwork.build(net.architecture())
    copy.load_state_dict(net.state_dict())
    boards = boards_from_marks(torch.randint(0, PLANES, (3, 100), dtype=torch.int8), 10, 10)
    assert torch.equal(net(boards), copy(boards))
    assert parameter_count(copy) == parameter_count(net)


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_masked_argmax_never_picks_an_illegal_cell(data: st.DataObject) -> None:
    rows = data.draw(st.integers(1, 6))
    cells = data.draw(st.integers(1, 40))
    legal = np.array(
        data.draw(
            st.lists(
                st.lists(st.booleans(), min_size=cells, max_size=cells).filter(any),
                min_size=rows,
                max_size=rows,
            )
        )
    )
    q = torch.from_numpy(
        np.array(
            data.draw(st.lists(st.floats(-1e6, 1e6), min_size=rows * cells, max_size=rows * cells)),
            np.float32,
        ).reshape(rows, cells)
    )
    # Illegal cells are made the best ones, so only the mask can keep them out.
    q = torch.where(torch.from_numpy(legal), q, torch.full_like(q, 1e9))
    chosen = masked_argmax(q, torch.from_numpy(legal))
    for row, cell in enumerate(chosen.tolist()):
        assert legal[row, cell]
        assert q[row, cell] == q[row][torch.from_numpy(legal[row])].max()


def test_masked_max_ignores_illegal_cells_and_empty_rows() -> None:
    q = torch.tensor([[5.0, 1.0, 2.0], [9.0, 9.0, 9.0]])
    legal = torch.tensor([[False, True, True], [False, False, False]])
    assert masked_max(q, legal).tolist() == [2.0, 0.0]
