"""Pure rules of a training job: queued -> running (attempts) -> completed | failed | cancelled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from actors.battleship.engine import fleet_of
from schemas.base import Addressed, Context, Decision, Event, Rejection
from schemas.battleship import BoardSpec, Enroll, Player, ShipSpec, ladder_of
from schemas.training import (
    BASELINE_NAMES,
    FINISHED,
    AgentRegistered,
    AttemptStarted,
    CancelJob,
    EvaluationReport,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobStatus,
    LaunchAttempt,
    ProgressMetrics,
    ReportCompleted,
    ReportFailed,
    ReportProgress,
    StartJob,
    TrainConfig,
)

Status = Literal["new"] | JobStatus


class JobState(msgspec.Struct, frozen=True, kw_only=True):
    """A training job. Its key is also the id of the agent it registers when it completes."""

    job_id: str
    status: Status = "new"
    name: str = ""
    config: TrainConfig = TrainConfig()
    requested_by: str | None = None
    max_attempts: int = 3
    attempt: int = 0
    """The current worker launch (0 before the first)."""
    attempt_reason: str | None = None
    last_seq: int = 0
    """The last progress report applied from the current attempt."""
    metrics: ProgressMetrics | None = None
    checkpoint: str | None = None
    """The newest checkpoint a worker reported: where a new attempt resumes."""
    checkpoint_step: int = 0
    run_dir: str | None = None
    evaluation: EvaluationReport | None = None
    model_path: str | None = None
    model_sha256: str | None = None
    plots: tuple[str, ...] = ()
    reason: str | None = None
    """Why the job failed or was cancelled."""
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def agent_id(self) -> str:
        """The agent a completed job registers."""
        return self.job_id

    @property
    def active(self) -> bool:
        """Queued or running: a worker should be (or become) busy with it."""
        return self.status in ("queued", "running")


def initial(key: str) -> JobState:
    """A job never seen before."""
    return JobState(job_id=key)


COMMANDS = (StartJob, CancelJob, LaunchAttempt, ReportProgress, ReportCompleted, ReportFailed)
EMITS = (
    JobQueued,
    AttemptStarted,
    JobProgressed,
    JobCompleted,
    AgentRegistered,
    JobFailed,
    JobCancelled,
)


def board_spec(config: TrainConfig) -> BoardSpec:
    """The match board a configuration trains for (the agent's ladder is this board's)."""
    return BoardSpec(
        height=config.height,
        width=config.width,
        fleet=tuple(ShipSpec(name=s.name, length=s.length) for s in fleet_of(config.ships)),
        no_touch=config.no_touch,
    )


def decide(state: JobState, message: Any, ctx: Context) -> Decision:
    """What a command does to a job."""
    match message:
        case StartJob():
            return _start(state, message, ctx)
        case CancelJob():
            if refused := _open(state):
                return refused
            return [
                JobCancelled(
                    reason=message.reason, requested_by=message.requested_by, at=ctx.received_at
                )
            ]
        case LaunchAttempt():
            return _launch(state, message, ctx)
        case ReportProgress():
            if refused := _open(state, running=True, attempt=message.attempt):
                return refused
            if message.seq <= state.last_seq:
                return Rejection(
                    code="duplicate_report",
                    reason=(
                        f"report {message.seq} of attempt {message.attempt} is not after "
                        f"report {state.last_seq}, the last one applied"
                    ),
                    kind="conflict",
                )
            return [
                JobProgressed(
                    attempt=message.attempt,
                    seq=message.seq,
                    metrics=message.metrics,
                    checkpoint=message.checkpoint,
                    at=ctx.received_at,
                )
            ]
        case ReportCompleted():
            if refused := _open(state, running=True, attempt=message.attempt):
                return refused
            return _complete(state, message, ctx)
        case ReportFailed():
            if refused := _open(state, running=True, attempt=message.attempt):
                return refused
            return [JobFailed(reason=message.reason, attempt=message.attempt, at=ctx.received_at)]
    raise TypeError(f"the training actor does not handle {type(message).__name__}")


def _start(state: JobState, cmd: StartJob, ctx: Context) -> Decision:
    if state.status != "new":
        return Rejection(
            code="job_exists",
            reason=f"training job {state.job_id} already exists ({state.status}); pick another id",
            kind="conflict",
        )
    if ctx.key in BASELINE_NAMES:
        return Rejection(
            code="reserved_agent_id",
            reason=f"{ctx.key} is a built-in player's id; a trained agent needs another one",
            kind="invalid",
        )
    return [
        JobQueued(
            config=cmd.config,
            name=cmd.name or ctx.key,
            agent_id=ctx.key,
            max_attempts=cmd.max_attempts,
            requested_by=cmd.requested_by,
            at=ctx.received_at,
        )
    ]


def _open(
    state: JobState, *, running: bool = False, attempt: int | None = None
) -> Rejection | None:
    """A rejection unless the job exists, is not finished (and is running ``attempt``)."""
    if state.status == "new":
        return Rejection(
            code="job_not_found",
            reason=f"there is no training job {state.job_id}",
            kind="not_found",
        )
    if state.status in FINISHED:
        return Rejection(
            code="job_finished",
            reason=f"training job {state.job_id} is {state.status}; nothing more can change",
            kind="conflict",
        )
    if running and state.status != "running":
        return Rejection(
            code="job_not_running",
            reason=f"training job {state.job_id} is {state.status}, no worker is running it",
            kind="conflict",
        )
    if attempt is not None and attempt != state.attempt:
        return Rejection(
            code="stale_attempt",
            reason=f"attempt {attempt} of {state.job_id} was superseded by attempt {state.attempt}",
            kind="conflict",
        )
    return None


def _launch(state: JobState, cmd: LaunchAttempt, ctx: Context) -> Decision:
    if refused := _open(state):
        return refused
    if cmd.attempt != state.attempt + 1:
        return Rejection(
            code="stale_attempt",
            reason=(
                f"attempt {cmd.attempt} of {state.job_id} is not the next one "
                f"(attempt {state.attempt} is the latest)"
            ),
            kind="conflict",
        )
    if cmd.attempt > state.max_attempts:
        return [
            JobFailed(
                reason=(
                    f"gave up after {state.max_attempts} attempts; the last one ended: {cmd.reason}"
                ),
                attempt=state.attempt,
                at=ctx.received_at,
            )
        ]
    checkpoint, step = state.checkpoint, state.checkpoint_step if state.checkpoint else 0
    if cmd.checkpoint is not None and cmd.checkpoint_step >= step:
        checkpoint, step = cmd.checkpoint, cmd.checkpoint_step
    return [
        AttemptStarted(
            attempt=cmd.attempt,
            run_dir=cmd.run_dir,
            reason=cmd.reason,
            checkpoint=checkpoint,
            from_step=step,
            at=ctx.received_at,
        )
    ]


def _complete(state: JobState, cmd: ReportCompleted, ctx: Context) -> Decision:
    board = board_spec(state.config)
    ladder = ladder_of(board)
    return [
        JobCompleted(
            attempt=cmd.attempt,
            metrics=cmd.metrics,
            evaluation=cmd.evaluation,
            model_path=cmd.model_path,
            model_sha256=cmd.model_sha256,
            checkpoint=cmd.checkpoint,
            plots=cmd.plots,
            at=ctx.received_at,
        ),
        AgentRegistered(
            agent_id=state.agent_id,
            ladder=ladder,
            model_path=cmd.model_path,
            model_sha256=cmd.model_sha256,
            mean_shots=cmd.evaluation.agent.mean,
            at=ctx.received_at,
        ),
        Addressed(ladder, Enroll(player=Player(kind="agent", id=state.agent_id))),
    ]


def evolve(state: JobState, event: Event) -> JobState:
    """A job after one of its events."""
    replace = msgspec.structs.replace
    match event:
        case JobQueued():
            return replace(
                state,
                status="queued",
                name=event.name,
                config=event.config,
                requested_by=event.requested_by,
                max_attempts=event.max_attempts,
                created_at=event.at,
                updated_at=event.at,
            )
        case AttemptStarted():
            return replace(
                state,
                status="running",
                attempt=event.attempt,
                attempt_reason=event.reason,
                last_seq=0,
                run_dir=event.run_dir,
                checkpoint=event.checkpoint,
                checkpoint_step=event.from_step,
                started_at=state.started_at or event.at,
                updated_at=event.at,
            )
        case JobProgressed():
            checkpoint = event.checkpoint or state.checkpoint
            step = event.metrics.step if event.checkpoint else state.checkpoint_step
            return replace(
                state,
                last_seq=event.seq,
                metrics=event.metrics,
                checkpoint=checkpoint,
                checkpoint_step=step,
                updated_at=event.at,
            )
        case JobCompleted():
            return replace(
                state,
                status="completed",
                metrics=event.metrics,
                evaluation=event.evaluation,
                model_path=event.model_path,
                model_sha256=event.model_sha256,
                checkpoint=event.checkpoint,
                checkpoint_step=event.metrics.step,
                plots=event.plots,
                updated_at=event.at,
                finished_at=event.at,
            )
        case JobFailed():
            return replace(
                state,
                status="failed",
                reason=event.reason,
                updated_at=event.at,
                finished_at=event.at,
            )
        case JobCancelled():
            return replace(
                state,
                status="cancelled",
                reason=event.reason,
                updated_at=event.at,
                finished_at=event.at,
            )
    return state


__all__ = ["COMMANDS", "EMITS", "JobState", "board_spec", "decide", "evolve", "initial"]
