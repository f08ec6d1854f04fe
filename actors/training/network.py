"""The Q-network: a fully convolutional trunk with a per-cell advantage and a pooled board value."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

PLANES = 4
"""Input planes, the environment's observation: unknown, miss, hit (afloat), sunk."""


class QNetwork(nn.Module):
    """Maps ``(batch, 4, height, width)`` boards to ``(batch, height * width)`` Q-values.

    Every layer is a 3x3 convolution, so the same weights judge every cell and a pattern
    learnt in one corner (two hits in a row, a gap too short for any ship) is known
    everywhere; the board size is not baked in. With ``dueling`` the Q-value is a board
    value from globally pooled features plus a per-cell advantage centred on its mean:
    how many shots a game still needs depends on the whole board, which a cell's
    receptive field alone does not see.
    """

    def __init__(self, channels: int = 48, layers: int = 5, *, dueling: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.layers = layers
        self.dueling = dueling
        trunk: list[nn.Module] = []
        width_in = PLANES
        for _ in range(layers):
            trunk += [nn.Conv2d(width_in, channels, 3, padding=1), nn.ReLU()]
            width_in = channels
        self.trunk = nn.Sequential(*trunk)
        self.advantage = nn.Conv2d(channels, 1, 1)
        self.value: nn.Module | None = None
        if dueling:
            self.value = nn.Sequential(
                nn.Linear(2 * channels, channels), nn.ReLU(), nn.Linear(channels, 1)
            )
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, boards: Tensor) -> Tensor:
        features: Tensor = self.trunk(boards)
        advantage: Tensor = self.advantage(features).flatten(1)
        if self.value is None:
            return advantage
        pooled = torch.cat((features.mean(dim=(2, 3)), features.amax(dim=(2, 3))), dim=1)
        value: Tensor = self.value(pooled)
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def architecture(self) -> dict[str, Any]:
        """What rebuilds this network around a state dict."""
        return {"channels": self.channels, "layers": self.layers, "dueling": self.dueling}

    @classmethod
    def build(cls, architecture: dict[str, Any]) -> QNetwork:
        """The network described by ``architecture()``."""
        return cls(
            int(architecture["channels"]),
            int(architecture["layers"]),
            dueling=bool(architecture["dueling"]),
        )


def boards_from_marks(marks: Tensor, height: int, width: int) -> Tensor:
    """``(batch, cells)`` integer marks to the ``(batch, 4, height, width)`` one-hot input.

    The result is channels-last in memory (one cell's four planes side by side), the
    layout the CPU convolution kernels run fastest on; it is the one-hot's natural layout.
    """
    one_hot = nn.functional.one_hot(marks.long(), PLANES).float()
    return one_hot.view(-1, height, width, PLANES).permute(0, 3, 1, 2)


def masked_argmax(q: Tensor, legal: Tensor) -> Tensor:
    """Per row, the legal action with the highest value; illegal actions count as -inf.

    A row with no legal action (a finished board) returns 0; callers never act on it.
    """
    out: Tensor = q.masked_fill(~legal, float("-inf")).argmax(dim=1)
    return out


def masked_max(q: Tensor, legal: Tensor) -> Tensor:
    """Per row, the highest value among legal actions (0 for a row without any)."""
    best = q.masked_fill(~legal, float("-inf")).amax(dim=1)
    out: Tensor = torch.where(legal.any(dim=1), best, torch.zeros_like(best))
    return out


def parameter_count(net: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
