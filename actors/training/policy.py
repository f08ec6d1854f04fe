"""A trained Q-network as a Battleship player: the greedy legal shot, for matches and evaluation."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from actors.battleship.engine import BoardView
from actors.battleship.errors import NoShotLeft
from actors.training.checkpoints import load_model
from actors.training.instruments import SELECT_ACTION_SPAN, agent_metrics, tracer
from actors.training.network import QNetwork, boards_from_marks, masked_argmax


class TrainedPlayer:
    """Fires at the unshot cell of highest Q: deterministic, so ``rng`` is never drawn from.

    Implements ``actors.battleship.players.Player``. The network is convolutional, so a
    player trained on one board size can play another, though it plays best on its own.
    """

    def __init__(self, name: str, net: QNetwork, *, board: dict[str, Any] | None = None) -> None:
        self.name = name
        self.net = net.eval()
        self.net.requires_grad_(False)
        self.board = dict(board or {})
        # Torch modules are safe to share for inference, but one call at a time keeps the
        # intra-op thread pool from being oversubscribed by concurrent matches.
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, name: str, path: Path) -> TrainedPlayer:
        """Load a model file written at the end of training."""
        data = load_model(path)
        net = QNetwork.build(data["architecture"])
        net.load_state_dict(data["state_dict"])
        return cls(name, net, board=data.get("board"))

    def greedy(self, marks: NDArray[np.int8], height: int, width: int) -> NDArray[np.int64]:
        """The greedy shot of every board in a ``(batch, cells)`` array of marks."""
        started = time.perf_counter()
        with (
            tracer().start_as_current_span(
                SELECT_ACTION_SPAN,
                attributes={"agent_id": self.name, "policy_mode": "exploit", "epsilon": 0.0},
            ),
            self._lock,
            torch.inference_mode(),
        ):
            m = torch.from_numpy(np.ascontiguousarray(marks, np.int8))
            q = self.net(boards_from_marks(m, height, width))
            actions = masked_argmax(q, m == 0).numpy().astype(np.int64)
        agent_metrics().inference_duration.record(
            time.perf_counter() - started, {"policy_mode": "exploit"}
        )
        return actions

    def select(self, view: BoardView, rng: random.Random) -> int:
        """The cell to fire at next (``rng`` is accepted for the Player protocol)."""
        marks = np.frombuffer(view.marks, np.uint8).astype(np.int8)
        if not (marks == 0).any():
            raise NoShotLeft()
        return int(self.greedy(marks[None, :], view.height, view.width)[0])
