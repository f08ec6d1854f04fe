"""Where a run keeps its files, and finding its checkpoints without loading torch."""

from __future__ import annotations

import os
import re
from pathlib import Path

_STEP_FILE = re.compile(r"^step-(\d{12})\.pt$")

CHECKPOINTS = "checkpoints"
MODEL = "model.pt"
METRICS = "metrics.jsonl"
EVALUATION = "evaluation.json"
CONFIG = "config.toml"
CURVE = "learning_curve.png"
WORKER_LOG = "worker.log"


def training_root(home: str | Path) -> Path:
    """Where training jobs keep their runs: ``TROUPE_TRAINING_DIR``, else ``<home>/training``."""
    configured = os.environ.get("TROUPE_TRAINING_DIR", "").strip()
    return Path(configured) if configured else Path(home) / "training"


def step_path(directory: Path, step: int) -> Path:
    """Where the periodic checkpoint of ``step`` goes (names sort by step)."""
    return directory / f"step-{step:012d}.pt"


def periodic(directory: Path) -> list[tuple[int, Path]]:
    """Periodic checkpoints in ``directory`` as (step, path), oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _STEP_FILE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest(directory: Path) -> tuple[int, Path] | None:
    """The newest periodic checkpoint in ``directory`` as (step, path), if any."""
    found = periodic(directory)
    return found[-1] if found else None


def exists(path: str | Path) -> bool:
    """True when ``path`` is an existing file."""
    return Path(path).is_file()


def ensure_dir(path: Path) -> Path:
    """``path``, created with its parents if missing."""
    path.mkdir(parents=True, exist_ok=True)
    return path
