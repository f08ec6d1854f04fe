"""The training worker process: ``python -m actors.training.worker``, driven over stdin/stdout.

The supervisor writes one JSON ``WorkerSpec`` line to stdin and keeps the pipe open; the
worker trains and writes one JSON line per report to stdout (logs go to stderr). When
stdin closes (the supervisor's process died) or SIGTERM arrives, the worker writes a
checkpoint, reports it and exits: a job never outlives the actor that launched it, and
the next attempt resumes from that checkpoint.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO

import msgspec

from schemas.training import EvaluationReport, ProgressMetrics, TrainConfig

log = logging.getLogger("troupe.training.worker")

EXIT_STOPPED = 0
EXIT_FAILED = 3
"""The run cannot succeed (diverged, unusable checkpoint): retrying would fail again."""


class WorkerSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to train: the first line the worker reads."""

    job_id: str
    attempt: int
    run_dir: str
    config: TrainConfig
    resume_from: str | None = None


class Progress(msgspec.Struct, frozen=True, kw_only=True, tag="progress", tag_field="kind"):
    """A log point (with the checkpoint written there, if any)."""

    metrics: ProgressMetrics
    checkpoint: str | None = None


class Completed(msgspec.Struct, frozen=True, kw_only=True, tag="completed", tag_field="kind"):
    """Training and the final evaluation are done."""

    metrics: ProgressMetrics
    evaluation: EvaluationReport
    model_path: str
    model_sha256: str
    checkpoint: str
    plots: tuple[str, ...] = ()


class Stopped(msgspec.Struct, frozen=True, kw_only=True, tag="stopped", tag_field="kind"):
    """Asked to stop: the checkpoint to resume from."""

    metrics: ProgressMetrics
    checkpoint: str


class Failed(msgspec.Struct, frozen=True, kw_only=True, tag="failed", tag_field="kind"):
    """The run cannot go on; ``reason`` says why."""

    reason: str


Line = Progress | Completed | Stopped | Failed
decode_line = msgspec.json.Decoder(Line).decode
_encode = msgspec.json.Encoder().encode


class _Emitter:
    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, line: Line) -> None:
        with self._lock:
            self._out.write(_encode(line) + b"\n")
            self._out.flush()


def run(spec: WorkerSpec, emit: _Emitter, stop: threading.Event) -> int:
    """Train ``spec`` and report; returns the process exit code."""
    from actors.training.errors import TrainingError
    from actors.training.trainer import Trainer

    def report(metrics: ProgressMetrics, checkpoint: Path | None) -> None:
        emit(Progress(metrics=metrics, checkpoint=str(checkpoint) if checkpoint else None))

    try:
        trainer = Trainer(
            spec.config,
            Path(spec.run_dir),
            agent_id=spec.job_id,
            on_report=report,
            should_stop=stop.is_set,
        )
        result = trainer.run(Path(spec.resume_from) if spec.resume_from else None)
    except TrainingError as exc:
        log.error("training cannot go on: %s", exc)
        emit(Failed(reason=str(exc)))
        return EXIT_FAILED
    if result.stopped:
        emit(Stopped(metrics=result.metrics, checkpoint=str(result.checkpoint)))
        return EXIT_STOPPED
    assert result.evaluation is not None
    assert result.model_path is not None
    assert result.model_sha256 is not None
    emit(
        Completed(
            metrics=result.metrics,
            evaluation=result.evaluation,
            model_path=str(result.model_path),
            model_sha256=result.model_sha256,
            checkpoint=str(result.checkpoint),
            plots=tuple(str(p) for p in result.plots),
        )
    )
    return 0


def _watch_stdin(stdin: IO[bytes], stop: threading.Event) -> None:
    # The supervisor never writes again after the spec: EOF means it is gone.
    while stdin.read(4096):
        pass
    stop.set()


def main() -> int:
    """Read the spec, train, report; see the module docstring."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    stdin = sys.stdin.buffer
    first = stdin.readline()
    try:
        spec = msgspec.json.decode(first, type=WorkerSpec)
    except msgspec.ValidationError as exc:
        sys.stdout.buffer.write(_encode(Failed(reason=f"invalid worker spec: {exc}")) + b"\n")
        return EXIT_FAILED
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    threading.Thread(target=_watch_stdin, args=(stdin, stop), daemon=True).start()
    log.info(
        "training job %s attempt %d in %s%s",
        spec.job_id,
        spec.attempt,
        spec.run_dir,
        f", resuming from {spec.resume_from}" if spec.resume_from else "",
    )
    return run(spec, _Emitter(sys.stdout.buffer), stop)


if __name__ == "__main__":
    sys.exit(main())
