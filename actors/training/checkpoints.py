"""Checkpoints and model files: atomic writes, safe loading, and the state of every generator."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actors.battleship.vector import BattleshipVectorEnv
from actors.training.errors import CheckpointNotFound, CheckpointUnreadable
from actors.training.paths import periodic

CHECKPOINT_FORMAT = "troupe.training.checkpoint.v1"
MODEL_FORMAT = "troupe.training.model.v1"

_ENV_ARRAYS = (
    "_owner",
    "_marks",
    "_left",
    "_afloat",
    "_steps",
    "_shots",
    "_invalid",
    "_result",
    "_sunk_ship",
)
"""What a ``BattleshipVectorEnv`` keeps between steps besides its per-board generators."""


def to_storable(value: Any) -> Any:
    """Numpy arrays become tensors, recursively, so ``torch.load(weights_only=True)`` reads them."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: to_storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_storable(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def from_storable(value: Any) -> Any:
    """The inverse of ``to_storable`` for everything that was an array (tensors become arrays)."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: from_storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_storable(v) for v in value]
    return value


def env_state(env: BattleshipVectorEnv) -> dict[str, Any]:
    """Every board of a vector env, mid-game, with its generator: enough to resume exactly."""
    return {
        "arrays": {name: getattr(env, name).copy() for name in _ENV_ARRAYS},
        "rngs": [None if rng is None else rng.bit_generator.state for rng in env._rngs],
        "started": bool(env._started),
    }


def restore_env(env: BattleshipVectorEnv, state: dict[str, Any]) -> None:
    """Put a vector env (built with the same arguments) back into a saved state."""
    for name in _ENV_ARRAYS:
        current = getattr(env, name)
        saved = np.asarray(state["arrays"][name])
        if saved.shape != current.shape:
            raise ValueError(f"env array {name} has shape {saved.shape}, expected {current.shape}")
        current[...] = saved
    rngs: list[np.random.Generator | None] = []
    for saved_rng in state["rngs"]:
        if saved_rng is None:
            rngs.append(None)
            continue
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = saved_rng
        rngs.append(rng)
    env._rngs = rngs
    env._started = bool(state["started"])


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(payload: dict[str, Any], path: Path) -> Path:
    """Write a checkpoint atomically (a crash leaves the previous file, never half a file)."""
    _atomic_save({"format": CHECKPOINT_FORMAT, **to_storable(payload)}, path)
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; no code is unpickled."""
    data = _load(path)
    if data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointUnreadable(path, f"format {data.get('format')!r}, not {CHECKPOINT_FORMAT}")
    return data


def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointNotFound(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointUnreadable(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointUnreadable(path, "it does not hold a mapping")
    return data


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` periodic checkpoints; return what was deleted."""
    found = periodic(directory)
    doomed = [p for _, p in found[: max(len(found) - keep, 0)]]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def save_model(
    path: Path,
    state_dict: dict[str, torch.Tensor],
    architecture: dict[str, Any],
    board: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> str:
    """Write the greedy policy's weights (no optimizer, no buffer); return the file's sha256."""
    _atomic_save(
        {
            "format": MODEL_FORMAT,
            "architecture": architecture,
            "board": board,
            "state_dict": state_dict,
            "meta": meta or {},
        },
        path,
    )
    return sha256_of(path)


def load_model(path: Path) -> dict[str, Any]:
    """Read a model file written by ``save_model``."""
    data = _load(path)
    if data.get("format") != MODEL_FORMAT:
        raise CheckpointUnreadable(path, f"format {data.get('format')!r}, not {MODEL_FORMAT}")
    return data


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
