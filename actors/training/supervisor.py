"""Runs training jobs in worker processes and turns what they report into commands.

The supervisor lives in the training actor's lifespan, so exactly one runs per actor (the
holder of the consumer's lease). It never changes a job itself: it reads the jobs table,
and everything it learns goes back through the actor as commands (``launch_attempt``,
``report_progress``, ``report_completed``, ``report_failed``) with deterministic message
ids, so each is applied once and the job's events come out once, in order.

* A queued job gets ``launch_attempt`` 1; once the actor has applied it (the job is
  ``running`` at that attempt), the worker is spawned.
* Each stdout line of a worker becomes one command, published in order, acknowledged
  before the next.
* A worker that exits without a final report gets the next attempt (resuming from the
  newest checkpoint); the actor fails the job once ``max_attempts`` are used.
* A ``running`` job whose attempt this process never launched was left by a previous
  process (the actor restarted): it is resumed the same way, or failed when its
  recorded checkpoint is gone.
* A job that is cancelled (or otherwise finished) while its worker runs has the worker
  terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

import actors
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.training import paths
from actors.training.rules import JobState
from actors.training.tables import training_jobs
from actors.training.worker import Completed, Failed, Progress, Stopped, WorkerSpec, decode_line
from schemas import subjects
from schemas.base import Command
from schemas.headers import Header
from schemas.training import LaunchAttempt, ReportCompleted, ReportFailed, ReportProgress

log = logging.getLogger("troupe.training.supervisor")

_states = msgspec.json.Decoder(JobState)
_ROOT = str(Path(actors.__file__).resolve().parent.parent)
"""The project root, put on the worker's PYTHONPATH so it imports the same code."""
_encode = msgspec.json.Encoder().encode
LOG_TAIL_BYTES = 2000

RUNNING: weakref.WeakSet[Supervisor] = weakref.WeakSet()
"""The supervisors of this process, for status pages and tests to see their workers."""


@dataclass(frozen=True, kw_only=True)
class SupervisorSettings:
    """How many workers run and where they write."""

    root: Path
    """Run directories are ``<root>/<job id>``."""
    max_workers: int = 1
    """Jobs trained at once; training saturates the cores it is given, so one by default."""
    poll_seconds: float = 1.0
    """How often the jobs table is read when no training event wakes the supervisor."""
    stop_grace_seconds: float = 60.0
    """At shutdown or cancel, how long a worker may take to checkpoint before it is killed."""
    python: str = sys.executable

    @classmethod
    def from_env(cls, settings: Settings) -> SupervisorSettings:
        """``TROUPE_TRAINING_DIR`` (default ``<home>/training``), ``TROUPE_TRAINING_WORKERS``."""
        workers = os.environ.get("TROUPE_TRAINING_WORKERS", "").strip()
        return cls(
            root=paths.training_root(settings.home),
            max_workers=int(workers) if workers else 1,
        )


@dataclass
class WorkerProcess:
    job_id: str
    attempt: int
    run_dir: Path
    process: asyncio.subprocess.Process
    seq: int = 0
    final: bool = False
    """A completed or failed line was seen: its exit needs no new attempt."""
    reader: asyncio.Task[None] | None = None
    terminating: bool = False


@dataclass
class _Launches:
    requested: dict[str, set[int]] = field(default_factory=dict)
    spawned: dict[str, set[int]] = field(default_factory=dict)


class Supervisor:
    """See the module docstring."""

    def __init__(self, bus: Bus, engine: AsyncEngine, settings: SupervisorSettings) -> None:
        self.bus = bus
        self.engine = engine
        self.settings = settings
        self.workers: dict[str, WorkerProcess] = {}
        self._launches = _Launches()
        self._wake = asyncio.Event()
        self._closing = False
        RUNNING.add(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Supervise until ``stop``; then stop every worker (they checkpoint first)."""
        sub = await self.bus.nc.subscribe(f"{subjects.EVENTS}.training.>", cb=self._on_event)
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except Exception:
                    log.exception("training supervisor pass failed; retrying")
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            await self.close()

    async def _on_event(self, msg: object) -> None:
        self._wake.set()

    # -- one pass ------------------------------------------------------------------------

    async def _jobs(self) -> list[JobState]:
        live = list(self.workers)
        condition: ColumnElement[bool] = training_jobs.c.status.in_(("queued", "running"))
        if live:
            condition = or_(condition, training_jobs.c.job_id.in_(live))
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(training_jobs.c.state)
                .where(condition)
                .order_by(training_jobs.c.created_at, training_jobs.c.job_id)
            )
            return [_states.decode(r.state) for r in rows]

    async def tick(self) -> None:
        """Reconcile workers with the jobs table once."""
        jobs = await self._jobs()
        active = {job.job_id for job in jobs if job.active}
        for book in (self._launches.requested, self._launches.spawned):
            for job_id in [k for k in book if k not in active and k not in self.workers]:
                del book[job_id]  # finished: its launches can no longer matter
        for job in jobs:
            worker = self.workers.get(job.job_id)
            if not job.active:
                if worker is not None and not worker.terminating:
                    log.info("job %s is %s: stopping its worker", job.job_id, job.status)
                    await self._terminate(worker)
                continue
            if worker is not None:
                if worker.attempt != job.attempt and not worker.terminating:
                    await self._terminate(worker)
                continue
            requested = self._launches.requested.setdefault(job.job_id, set())
            spawned = self._launches.spawned.setdefault(job.job_id, set())
            if job.status == "running" and job.attempt in requested:
                if job.attempt not in spawned:
                    await self._spawn(job)
                continue
            if job.status == "running" and job.attempt in spawned:
                continue  # its worker ended; the reader already asked for the next attempt
            if (job.attempt + 1) in requested:
                continue  # asked for; waiting for the actor to apply it
            if not self._has_capacity():
                continue
            if job.status == "queued":
                await self._request(job, "first run")
            else:
                await self._adopt(job)

    def _has_capacity(self) -> bool:
        """A worker slot is free: launches asked for but not yet spawned hold one too."""
        pending = sum(
            1
            for job_id, asked in self._launches.requested.items()
            if job_id not in self.workers and asked - self._launches.spawned.get(job_id, set())
        )
        return len(self.workers) + pending < self.settings.max_workers

    def run_dir(self, job_id: str) -> Path:
        """Where job ``job_id`` writes."""
        return self.settings.root / job_id

    async def _adopt(self, job: JobState) -> None:
        """A running job no worker of this process owns: resume it, or fail it."""
        newest = paths.latest(self.run_dir(job.job_id) / paths.CHECKPOINTS)
        if job.checkpoint and not paths.exists(job.checkpoint) and newest is None:
            await self._send(
                ReportFailed(
                    attempt=job.attempt,
                    reason=(
                        f"checkpoint {job.checkpoint} is missing, so attempt {job.attempt} "
                        "cannot be resumed; start a new job"
                    ),
                ),
                job.job_id,
                f"adopt-failed:{job.attempt}",
            )
            return
        where = f"step {newest[0]}" if newest else "the start (no checkpoint yet)"
        await self._request(
            job, f"attempt {job.attempt} was left running by a stopped actor; resuming from {where}"
        )

    async def _request(self, job: JobState, reason: str) -> None:
        attempt = job.attempt + 1
        newest = paths.latest(self.run_dir(job.job_id) / paths.CHECKPOINTS)
        command = LaunchAttempt(
            attempt=attempt,
            run_dir=str(self.run_dir(job.job_id)),
            reason=reason[:10_000],
            checkpoint=str(newest[1]) if newest else None,
            checkpoint_step=newest[0] if newest else 0,
        )
        self._launches.requested.setdefault(job.job_id, set()).add(attempt)
        await self._send(command, job.job_id, f"launch:{attempt}")

    async def _spawn(self, job: JobState) -> None:
        run_dir = paths.ensure_dir(Path(job.run_dir or self.run_dir(job.job_id)))
        resume = job.checkpoint if job.checkpoint and paths.exists(job.checkpoint) else None
        spec = WorkerSpec(
            job_id=job.job_id,
            attempt=job.attempt,
            run_dir=str(run_dir),
            config=job.config,
            resume_from=resume,
        )
        self._launches.spawned.setdefault(job.job_id, set()).add(job.attempt)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
        try:
            with (run_dir / paths.WORKER_LOG).open("ab") as stderr:
                process = await asyncio.create_subprocess_exec(
                    self.settings.python,
                    "-m",
                    "actors.training.worker",
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            reason = f"cannot start the training worker ({self.settings.python}): {exc}"
            log.error("job %s: %s", job.job_id, reason)
            await self._send(
                ReportFailed(attempt=job.attempt, reason=reason),
                job.job_id,
                f"failed:{job.attempt}",
            )
            return
        assert process.stdin is not None
        process.stdin.write(_encode(spec) + b"\n")
        await process.stdin.drain()
        worker = WorkerProcess(job.job_id, job.attempt, run_dir, process)
        self.workers[job.job_id] = worker
        worker.reader = asyncio.create_task(self._read(worker))
        log.info(
            "job %s: attempt %d started (pid %d)%s",
            job.job_id,
            job.attempt,
            process.pid,
            f", resuming from {resume}" if resume else "",
        )

    async def _read(self, worker: WorkerProcess) -> None:
        """Forward every report of ``worker``, then handle its exit."""
        process = worker.process
        assert process.stdout is not None
        try:
            while line := await process.stdout.readline():
                try:
                    report = decode_line(line)
                except msgspec.DecodeError:
                    log.warning("job %s: ignored a malformed worker line", worker.job_id)
                    continue
                await self._forward(worker, report)
            code = await process.wait()
        finally:
            self.workers.pop(worker.job_id, None)
            self._wake.set()
        if worker.final or worker.terminating or self._closing:
            return
        # Also after a "stopped" line: something other than this supervisor stopped it.
        reason = f"the worker exited with code {code}" + _tail(worker.run_dir / paths.WORKER_LOG)
        log.warning("job %s attempt %d: %s", worker.job_id, worker.attempt, reason)
        self._launches.requested.setdefault(worker.job_id, set()).add(worker.attempt + 1)
        newest = paths.latest(worker.run_dir / paths.CHECKPOINTS)
        await self._send(
            LaunchAttempt(
                attempt=worker.attempt + 1,
                run_dir=str(worker.run_dir),
                reason=reason[:10_000],
                checkpoint=str(newest[1]) if newest else None,
                checkpoint_step=newest[0] if newest else 0,
            ),
            worker.job_id,
            f"launch:{worker.attempt + 1}",
        )

    async def _forward(
        self, worker: WorkerProcess, report: Progress | Completed | Stopped | Failed
    ) -> None:
        command: Command
        match report:
            case Progress() | Stopped():
                worker.seq += 1
                command = ReportProgress(
                    attempt=worker.attempt,
                    seq=worker.seq,
                    metrics=report.metrics,
                    checkpoint=report.checkpoint,
                )
                ident = f"progress:{worker.attempt}:{worker.seq}"
            case Completed():
                worker.final = True
                command = ReportCompleted(
                    attempt=worker.attempt,
                    metrics=report.metrics,
                    evaluation=report.evaluation,
                    model_path=report.model_path,
                    model_sha256=report.model_sha256,
                    checkpoint=report.checkpoint,
                    plots=report.plots,
                )
                ident = f"completed:{worker.attempt}"
            case Failed():
                worker.final = True
                command = ReportFailed(attempt=worker.attempt, reason=report.reason[:10_000])
                ident = f"failed:{worker.attempt}"
        await self._send(command, worker.job_id, ident)

    async def _send(self, command: Command, job_id: str, ident: str) -> None:
        """Publish a command to the job, retrying until JetStream stores it."""
        subject = subjects.command_subject_for(type(command), job_id)
        headers = {Header.MSG_ID.value: f"training:{job_id}:{ident}"}
        payload = _encode(command)
        delay = 0.1
        while True:
            try:
                await self.bus.publish(subject, payload, headers)
                return
            except Exception as exc:
                if self._closing and delay > 5:
                    log.error("job %s: giving up publishing %s: %s", job_id, ident, exc)
                    return
                log.warning("job %s: publishing %s failed (%s); retrying", job_id, ident, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # -- stopping ----------------------------------------------------------------------

    async def _terminate(self, worker: WorkerProcess) -> None:
        worker.terminating = True
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)
        asyncio.get_running_loop().call_later(
            self.settings.stop_grace_seconds, _kill, worker.process
        )

    async def close(self) -> None:
        """Ask every worker to checkpoint and stop; report what they say; kill stragglers."""
        self._closing = True
        workers = list(self.workers.values())
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        readers = [w.reader for w in workers if w.reader is not None]
        if readers:
            _, pending = await asyncio.wait(readers, timeout=self.settings.stop_grace_seconds)
            for worker in workers:
                _kill(worker.process)
            for task in pending:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            text = f.read().decode(errors="replace").strip()
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return f"; last log lines: {' | '.join(lines[-3:])}" if lines else ""
