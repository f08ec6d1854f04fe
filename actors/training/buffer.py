"""Experience replay: a fixed-capacity ring of transitions, sampled by a seeded generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Marks = NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class Batch:
    """Sampled transitions, one row each: what the TD target needs and nothing else."""

    marks: Marks
    """``(batch, cells)`` the board before the shot, as ``Mark`` values."""
    actions: NDArray[np.int64]
    returns: NDArray[np.float32]
    """The (n-step, discounted) reward collected after the shot."""
    next_marks: Marks
    """The board ``n`` shots later (or the final board when the game ended sooner)."""
    bootstrap: NDArray[np.float32]
    """``gamma ** n`` to weigh the next board's value, 0 when the game ended."""


class ReplayBuffer:
    """Holds the latest ``capacity`` transitions; once full, each new one replaces the oldest.

    Boards are stored as one byte per cell (their ``Mark``), not as one-hot planes: a
    200,000-transition buffer of 10x10 boards takes 40 MB instead of 640 MB.
    """

    def __init__(self, capacity: int, cells: int, *, seed: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.cells = cells
        self.marks = np.zeros((capacity, cells), np.int8)
        self.next_marks = np.zeros((capacity, cells), np.int8)
        self.actions = np.zeros(capacity, np.int64)
        self.returns = np.zeros(capacity, np.float32)
        self.bootstrap = np.zeros(capacity, np.float32)
        self.position = 0
        """Where the next transition goes."""
        self.size = 0
        self.added = 0
        """Transitions ever added (including those since overwritten)."""
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        marks: Marks,
        actions: NDArray[np.int64],
        returns: NDArray[np.floating[Any]],
        next_marks: Marks,
        bootstrap: NDArray[np.floating[Any]],
    ) -> None:
        """Append a batch of transitions in row order, overwriting the oldest when full."""
        n = len(actions)
        if n == 0:
            return
        if n > self.capacity:
            # Only the newest ``capacity`` rows would survive anyway.
            cut = n - self.capacity
            marks, actions, returns = marks[cut:], actions[cut:], returns[cut:]
            next_marks, bootstrap = next_marks[cut:], bootstrap[cut:]
            self.added += cut
            self.position = (self.position + cut) % self.capacity
            n = self.capacity
        rows = (self.position + np.arange(n)) % self.capacity
        self.marks[rows] = marks
        self.next_marks[rows] = next_marks
        self.actions[rows] = actions
        self.returns[rows] = returns
        self.bootstrap[rows] = bootstrap
        self.position = int((self.position + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.added += n

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = self.rng.integers(0, self.size, batch_size)
        return Batch(
            self.marks[rows],
            self.actions[rows],
            self.returns[rows],
            self.next_marks[rows],
            self.bootstrap[rows],
        )

    def oldest_first(self) -> NDArray[np.int64]:
        """Storage rows from the oldest transition to the newest."""
        start = self.position if self.size == self.capacity else 0
        return (start + np.arange(self.size)) % self.capacity

    def state_dict(self) -> dict[str, Any]:
        """Contents (in storage order, so sampling resumes exactly) and generator state."""
        n = self.size
        return {
            "capacity": self.capacity,
            "cells": self.cells,
            "added": self.added,
            "position": self.position,
            "marks": self.marks[:n].copy(),
            "next_marks": self.next_marks[:n].copy(),
            "actions": self.actions[:n].copy(),
            "returns": self.returns[:n].copy(),
            "bootstrap": self.bootstrap[:n].copy(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved (into a buffer of the same capacity and cells)."""
        if int(state["capacity"]) != self.capacity or int(state["cells"]) != self.cells:
            raise ValueError(
                f"buffer of capacity {state['capacity']} x {state['cells']} cells cannot be "
                f"loaded into one of {self.capacity} x {self.cells}"
            )
        n = len(state["actions"])
        self.marks[:n] = state["marks"]
        self.next_marks[:n] = state["next_marks"]
        self.actions[:n] = state["actions"]
        self.returns[:n] = state["returns"]
        self.bootstrap[:n] = state["bootstrap"]
        self.size = n
        self.position = int(state["position"])
        self.added = int(state["added"])
        self.rng.bit_generator.state = state["rng"]


class NStepCollector:
    """Turns per-step rewards of ``num_envs`` parallel games into n-step transitions.

    A shot's transition is complete ``n`` shots later (its return sums ``n`` discounted
    rewards and bootstraps with ``gamma ** n``), or when its game ends first (no
    bootstrap). Completed transitions come out in a fixed order: by age, then board.
    """

    def __init__(self, num_envs: int, n: int, gamma: float) -> None:
        self.num_envs = num_envs
        self.n = n
        self.gamma = gamma
        self._pending: list[_Pending] = []

    def push(
        self,
        marks: Marks,
        actions: NDArray[np.int64],
        rewards: NDArray[np.floating[Any]],
        next_marks: Marks,
        done: NDArray[np.bool_],
    ) -> Batch | None:
        """Record one step of every board; return the transitions it completed, if any."""
        for p in self._pending:
            p.returns[p.active] += (self.gamma**p.age) * rewards[p.active]
            p.age += 1
        self._pending.append(
            _Pending(
                marks.copy(),
                actions.astype(np.int64),
                rewards.astype(np.float32),
                np.ones(self.num_envs, np.bool_),
                1,
            )
        )
        out: list[Batch] = []
        for p in self._pending:
            ready = p.active & (done | (p.age >= self.n))
            if not ready.any():
                continue
            bootstrap = np.where(done[ready], 0.0, self.gamma**p.age).astype(np.float32)
            out.append(
                Batch(
                    p.marks[ready],
                    p.actions[ready],
                    p.returns[ready],
                    next_marks[ready],
                    bootstrap,
                )
            )
            p.active &= ~ready
        self._pending = [p for p in self._pending if p.active.any()]
        if not out:
            return None
        return Batch(
            np.concatenate([b.marks for b in out]),
            np.concatenate([b.actions for b in out]),
            np.concatenate([b.returns for b in out]),
            np.concatenate([b.next_marks for b in out]),
            np.concatenate([b.bootstrap for b in out]),
        )

    def state_dict(self) -> dict[str, Any]:
        """The transitions still waiting for rewards, for a checkpoint."""
        return {
            "pending": [
                {
                    "marks": p.marks.copy(),
                    "actions": p.actions.copy(),
                    "returns": p.returns.copy(),
                    "active": p.active.copy(),
                    "age": p.age,
                }
                for p in self._pending
            ]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved."""
        self._pending = [
            _Pending(
                np.asarray(p["marks"], np.int8),
                np.asarray(p["actions"], np.int64),
                np.asarray(p["returns"], np.float32),
                np.asarray(p["active"], np.bool_),
                int(p["age"]),
            )
            for p in state["pending"]
        ]


@dataclass(slots=True)
class _Pending:
    marks: Marks
    actions: NDArray[np.int64]
    returns: NDArray[np.float32]
    active: NDArray[np.bool_]
    age: int
