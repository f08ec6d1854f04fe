"""Errors of training: invalid configurations, unusable checkpoints, diverging runs."""

from __future__ import annotations

from pathlib import Path


class TrainingError(Exception):
    """Base of every error raised by ``actors.training``."""


class InvalidConfig(TrainingError):
    """Raised when a training configuration (file, flags or command) does not validate."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"invalid training configuration in {source}: {problem}")
        self.source = source
        self.problem = problem


class CheckpointNotFound(TrainingError):
    """Raised when a checkpoint file to load or resume from does not exist."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"checkpoint {path} does not exist; train first or pass an existing file")
        self.path = path


class CheckpointUnreadable(TrainingError):
    """Raised when a checkpoint exists but is not a training checkpoint this version can read."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"checkpoint {path} cannot be used: {problem}")
        self.path = path
        self.problem = problem


class IncompatibleResume(TrainingError):
    """Raised when resuming with a configuration that changes what the checkpoint learned."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        names = ", ".join(fields)
        super().__init__(
            f"cannot resume from {path}: the configuration changes {names}; "
            "resume with the checkpoint's values or start a new run"
        )
        self.path = path
        self.fields = fields


class TrainingDiverged(TrainingError):
    """Raised when the loss or the Q-values stop being finite: the run cannot recover."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(
            f"training diverged at update {step}: {what}; "
            "lower learning_rate or max_grad_norm and start again"
        )
        self.step = step
        self.what = what


class ModelMismatch(TrainingError):
    """Raised when a stored model file does not match the digest recorded for it."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(
            f"model {path} has sha256 {actual[:12]}..., the registry expects {expected[:12]}...; "
            "the file was replaced or corrupted"
        )
        self.path = path
        self.expected = expected
        self.actual = actual
