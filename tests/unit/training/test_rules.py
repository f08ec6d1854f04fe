"""Pure rules of a training job: its lifecycle, attempts, ordered reports, and the fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actors.kernel.actor import Actor, fold, own_events
from actors.kernel.store import JsonStateStore
from actors.training import rules
from actors.training.rules import JobState
from schemas.base import Addressed, Context, Event, Rejection
from schemas.battleship import STANDARD_BOARD, Enroll, Player, ladder_of
from schemas.training import (
    AgentRegistered,
    AttemptStarted,
    CancelJob,
    EvaluationReport,
    JobCancelled,
    JobCompleted,
    JobFailed,
    JobProgressed,
    JobQueued,
    LaunchAttempt,
    ProgressMetrics,
    ReportCompleted,
    ReportFailed,
    ReportProgress,
    ShotStats,
    StartJob,
)
from tests.unit.training.support import small_config

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ACTOR: Actor[JobState] = Actor(
    name="training",
    domain="training",
    state_type=JobState,
    initial=rules.initial,
    decide=rules.decide,
    evolve=rules.evolve,
    store=JsonStateStore(JobState),
    commands=rules.COMMANDS,
    emits=rules.EMITS,
)


class Job:
    """Drives one job through decide/evolve, keeping every event for the fold check."""

    def __init__(self, key: str = "dqn-1") -> None:
        self.key = key
        self.state = rules.initial(key)
        self.events: list[Event] = []
        self.n = 0

    def send(self, command: Any) -> list[Any]:
        self.n += 1
        ctx = Context(
            key=self.key,
            message_id=f"m{self.n}",
            subject=f"cmd.training.{self.key}.x",
            received_at=T0 + timedelta(seconds=self.n),
            correlation_id=f"m{self.n}",
        )
        decision = rules.decide(self.state, command, ctx)
        if isinstance(decision, Rejection):
            raise AssertionError(f"rejected: {decision}")
        mine = own_events(decision)
        self.state = fold(ACTOR, self.state, mine)
        self.events += mine
        return list(decision)

    def refuse(self, command: Any) -> Rejection:
        ctx = Context(
            key=self.key,
            message_id="r",
            subject="s",
            received_at=T0,
            correlation_id="r",
        )
        decision = rules.decide(self.state, command, ctx)
        assert isinstance(decision, Rejection)
        return decision


def metrics(step: int) -> ProgressMetrics:
    return ProgressMetrics(
        step=step,
        total_steps=800,
        episodes=step // 20,
        epsilon=0.1,
        steps_per_second=100.0,
        elapsed_seconds=step / 100,
        mean_shots=30.0,
    )


def report() -> EvaluationReport:
    stats = ShotStats(
        player="dqn-1", games=20, mean=19.5, median=19.0, p90=27, worst=33, best=8, stdev=5.0
    )
    return EvaluationReport(games=20, seed=0, agent=stats)


def running(job: Job) -> Job:
    job.send(StartJob(config=small_config()))
    job.send(LaunchAttempt(attempt=1, run_dir="/runs/dqn-1"))
    return job


def test_a_job_runs_reports_in_order_and_registers_its_agent() -> None:
    job = running(Job())
    assert job.state.status == "running"
    job.send(ReportProgress(attempt=1, seq=1, metrics=metrics(200)))
    job.send(ReportProgress(attempt=1, seq=2, metrics=metrics(400), checkpoint="/runs/c400.pt"))
    assert job.state.checkpoint == "/runs/c400.pt"
    assert job.state.checkpoint_step == 400
    emitted = job.send(
        ReportCompleted(
            attempt=1,
            metrics=metrics(800),
            evaluation=report(),
            model_path="/runs/dqn-1/model.pt",
            model_sha256="a" * 64,
            checkpoint="/runs/c800.pt",
        )
    )
    assert [type(e) for e in emitted] == [JobCompleted, AgentRegistered, Addressed]
    registered = emitted[1]
    assert registered.agent_id == "dqn-1"
    assert registered.ladder == "6x6_3-2"
    assert emitted[2] == Addressed("6x6_3-2", Enroll(player=Player(kind="agent", id="dqn-1")))
    state = job.state
    assert state.status == "completed"
    assert state.evaluation == report()
    assert state.finished_at == T0 + timedelta(seconds=5)
    assert [type(e) for e in job.events] == [
        JobQueued,
        AttemptStarted,
        JobProgressed,
        JobProgressed,
        JobCompleted,
        AgentRegistered,
    ]
    assert fold(ACTOR, rules.initial("dqn-1"), job.events) == state


def test_the_standard_board_enrols_on_the_standard_ladder() -> None:
    board = rules.board_spec(small_config(height=10, width=10, ships=(5, 4, 3, 3, 2)))
    assert board == STANDARD_BOARD
    assert ladder_of(board) == "standard"


def test_start_is_refused_for_existing_jobs_and_builtin_ids() -> None:
    job = running(Job())
    assert job.refuse(StartJob()).code == "job_exists"
    assert Job("probability").refuse(StartJob()).code == "reserved_agent_id"


def test_reports_must_come_from_the_current_attempt_in_order() -> None:
    job = running(Job())
    job.send(ReportProgress(attempt=1, seq=1, metrics=metrics(200)))
    assert (
        job.refuse(ReportProgress(attempt=1, seq=1, metrics=metrics(200))).code
        == "duplicate_report"
    )
    assert (
        job.refuse(ReportProgress(attempt=2, seq=2, metrics=metrics(400))).code == "stale_attempt"
    )
    job.send(LaunchAttempt(attempt=2, run_dir="/runs/dqn-1", reason="worker exited with code -9"))
    assert (
        job.refuse(ReportProgress(attempt=1, seq=2, metrics=metrics(400))).code == "stale_attempt"
    )
    job.send(ReportProgress(attempt=2, seq=1, metrics=metrics(200)))
    assert job.state.last_seq == 1


def test_attempts_resume_from_the_newest_checkpoint_and_are_limited() -> None:
    job = Job()
    job.send(StartJob(config=small_config(), max_attempts=2))
    assert job.refuse(LaunchAttempt(attempt=2, run_dir="/r")).code == "stale_attempt"
    job.send(LaunchAttempt(attempt=1, run_dir="/r"))
    job.send(ReportProgress(attempt=1, seq=1, metrics=metrics(400), checkpoint="/r/c400.pt"))
    (started,) = job.send(
        LaunchAttempt(
            attempt=2, run_dir="/r", reason="restart", checkpoint="/r/c600.pt", checkpoint_step=600
        )
    )
    assert isinstance(started, AttemptStarted)
    assert (started.checkpoint, started.from_step) == ("/r/c600.pt", 600)
    (failed,) = job.send(LaunchAttempt(attempt=3, run_dir="/r", reason="worker exited with code 1"))
    assert isinstance(failed, JobFailed)
    assert "gave up after 2 attempts" in failed.reason
    assert "code 1" in failed.reason
    assert job.state.status == "failed"


def test_an_older_disk_checkpoint_does_not_replace_a_newer_recorded_one() -> None:
    job = running(Job())
    job.send(ReportProgress(attempt=1, seq=1, metrics=metrics(400), checkpoint="/r/c400.pt"))
    (started,) = job.send(
        LaunchAttempt(attempt=2, run_dir="/r", checkpoint="/r/c200.pt", checkpoint_step=200)
    )
    assert (started.checkpoint, started.from_step) == ("/r/c400.pt", 400)


def test_a_worker_failure_fails_the_job() -> None:
    job = running(Job())
    (failed,) = job.send(ReportFailed(attempt=1, reason="training diverged at update 12"))
    assert job.state.status == "failed"
    assert job.state.reason == "training diverged at update 12"
    assert failed.attempt == 1


@pytest.mark.parametrize("started", [False, True])
def test_cancel_stops_queued_and_running_jobs_once(started: bool) -> None:
    job = Job()
    job.send(StartJob(config=small_config()))
    if started:
        job.send(LaunchAttempt(attempt=1, run_dir="/r"))
    (cancelled,) = job.send(CancelJob(reason="enough", requested_by="ada"))
    assert isinstance(cancelled, JobCancelled)
    assert job.state.status == "cancelled"
    assert job.refuse(CancelJob()).code == "job_finished"
    assert job.refuse(ReportProgress(attempt=1, seq=1, metrics=metrics(200))).code == "job_finished"
    assert job.refuse(LaunchAttempt(attempt=2, run_dir="/r")).code == "job_finished"


def test_commands_for_unknown_jobs_are_not_found() -> None:
    for command in (
        CancelJob(),
        LaunchAttempt(attempt=1, run_dir="/r"),
        ReportFailed(attempt=1, reason="x"),
    ):
        rejection = Job("ghost").refuse(command)
        assert (rejection.code, rejection.kind) == ("job_not_found", "not_found")


def test_reports_before_the_first_attempt_are_refused() -> None:
    job = Job()
    job.send(StartJob())
    assert (
        job.refuse(ReportProgress(attempt=1, seq=1, metrics=metrics(1))).code == "job_not_running"
    )
