"""Commands and events of the training actor (key = job id), and the training configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from schemas.base import Command, Event, Key, Name, NonNegativeInt, PositiveInt, Text

Schedule = Literal["linear", "exponential"]
Loss = Literal["huber", "mse"]
BaselineName = Literal[
    "random", "hunt_target", "hunt_target_parity", "probability_no_parity", "probability"
]
BASELINE_NAMES: tuple[str, ...] = get_args(BaselineName)
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

Attempt = Annotated[int, Meta(ge=1, le=1000, description="Worker launch number, from 1.")]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
Path = Annotated[str, Meta(min_length=1, max_length=4096)]


class TrainConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a training run depends on; two runs with one config train the same agent.

    Steps count shots: one step of the vectorised environment over ``num_envs`` boards is
    ``num_envs`` steps. Each field's description is its documentation (the TOML file, the
    command-line help and docs/training.md are generated from it).
    """

    height: Annotated[int, Meta(ge=2, le=26, description="Board rows.")] = 10
    width: Annotated[int, Meta(ge=2, le=26, description="Board columns.")] = 10
    ships: Annotated[
        tuple[Annotated[int, Meta(ge=1, le=26)], ...],
        Meta(min_length=1, max_length=32, description="Ship lengths of the hidden fleet."),
    ] = (5, 4, 3, 3, 2)
    no_touch: Annotated[bool, Meta(description="Ships never touch, not even at a corner.")] = False
    num_envs: Annotated[
        int, Meta(ge=1, le=4096, description="Boards played at once by the vectorised env.")
    ] = 64

    seed: Annotated[
        int,
        Meta(ge=0, le=2**31 - 1, description="Seeds every generator: boards, exploration, net."),
    ] = 0
    total_steps: Annotated[
        int, Meta(ge=1, description="Shots fired over all boards before training stops.")
    ] = 400_000
    threads: Annotated[
        int, Meta(ge=0, le=256, description="Torch CPU threads (0 keeps torch's default).")
    ] = 2

    gamma: Annotated[float, Meta(ge=0, le=1, description="Discount factor of future rewards.")] = (
        0.5
    )
    n_step: Annotated[
        int, Meta(ge=1, le=32, description="Rewards summed before bootstrapping (n-step target).")
    ] = 1
    double_dqn: Annotated[
        bool, Meta(description="Online net picks the next shot, target net values it.")
    ] = True
    learning_rate: Annotated[
        float, Meta(gt=0, le=1, description="Adam step size at the start.")
    ] = 5e-4
    learning_rate_decay: Annotated[
        float,
        Meta(gt=0, le=1, description="Final step size as a share of the first (linear decay)."),
    ] = 0.1
    adam_eps: Annotated[float, Meta(gt=0, description="Adam epsilon (numerical floor).")] = 1e-5
    batch_size: Annotated[
        int, Meta(ge=1, le=65536, description="Transitions per gradient step.")
    ] = 128
    buffer_capacity: Annotated[
        int,
        Meta(ge=1, le=10_000_000, description="Transitions the replay buffer holds (FIFO)."),
    ] = 200_000
    learning_starts: Annotated[
        int, Meta(ge=0, description="Shots fired before the first gradient step.")
    ] = 10_000
    train_frequency: Annotated[
        int, Meta(ge=1, description="Vector-env steps between rounds of gradient steps.")
    ] = 1
    gradient_steps: Annotated[int, Meta(ge=1, le=1000, description="Gradient steps per round.")] = 1
    target_update_interval: Annotated[
        int, Meta(ge=1, description="Gradient steps between target-network updates.")
    ] = 500
    tau: Annotated[
        float,
        Meta(gt=0, le=1, description="Target update weight: 1 copies, less blends (Polyak)."),
    ] = 1.0
    loss: Annotated[Loss, Meta(description="TD loss: huber (smooth L1) or mse.")] = "huber"
    max_grad_norm: Annotated[
        float, Meta(ge=0, description="Gradient norm clip (0 disables clipping).")
    ] = 10.0

    epsilon_start: Annotated[
        float, Meta(ge=0, le=1, description="Probability of a random shot at the start.")
    ] = 1.0
    epsilon_end: Annotated[
        float, Meta(ge=0, le=1, description="Probability of a random shot after the decay.")
    ] = 0.02
    exploration_fraction: Annotated[
        float, Meta(gt=0, le=1, description="Share of total_steps over which epsilon decays.")
    ] = 0.15
    epsilon_schedule: Annotated[
        Schedule, Meta(description="Decay shape: linear, or exponential (geometric).")
    ] = "linear"

    channels: Annotated[
        int, Meta(ge=1, le=512, description="Feature maps per convolutional layer.")
    ] = 32
    layers: Annotated[
        int, Meta(ge=1, le=32, description="3x3 convolutional layers in the trunk.")
    ] = 5
    dueling: Annotated[
        bool, Meta(description="Separate board value (pooled) and per-cell advantage heads.")
    ] = True

    log_every: Annotated[
        int, Meta(ge=1, description="Shots between metric logs and progress reports.")
    ] = 25_000
    checkpoint_every: Annotated[
        int, Meta(ge=1, description="Shots between checkpoints (one more at the end).")
    ] = 100_000
    keep_checkpoints: Annotated[
        int, Meta(ge=1, le=1000, description="Periodic checkpoints kept on disk.")
    ] = 3
    eval_every: Annotated[
        int, Meta(ge=0, description="Shots between greedy evaluations (0: only at the end).")
    ] = 50_000
    eval_games_during: Annotated[
        int, Meta(ge=1, le=100_000, description="Seeded games per evaluation during training.")
    ] = 200
    eval_games: Annotated[
        int, Meta(ge=1, le=100_000, description="Seeded games of the final evaluation.")
    ] = 1000
    eval_seed: Annotated[
        int, Meta(ge=0, description="Seed of the evaluation fleets (same fleets for every run).")
    ] = 0
    baselines: Annotated[
        tuple[BaselineName, ...],
        Meta(description="Baseline players the final evaluation compares against."),
    ] = ("random", "hunt_target", "hunt_target_parity", "probability")
    divergence_threshold: Annotated[
        float, Meta(gt=0, description="Mean |Q| above which a divergence warning is logged.")
    ] = 1_000.0

    def __post_init__(self) -> None:
        cells = self.height * self.width
        if sum(self.ships) > cells:
            raise ValueError(f"the fleet covers {sum(self.ships)} cells, the board has {cells}")
        if max(self.ships) > max(self.height, self.width):
            raise ValueError(f"a ship of length {max(self.ships)} does not fit on the board")
        if self.epsilon_end > self.epsilon_start:
            raise ValueError("epsilon_end must not exceed epsilon_start")

    @property
    def cells(self) -> int:
        """Cells of the board: the number of actions."""
        return self.height * self.width


# ---------------------------------------------------------------- reports


class ProgressMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a running job; None where nothing was measured yet."""

    step: NonNegativeInt
    """Shots fired so far."""
    total_steps: PositiveInt
    episodes: NonNegativeInt
    """Games finished so far."""
    updates: NonNegativeInt = 0
    """Gradient steps taken so far."""
    mean_shots: float | None = None
    """Mean shots-to-win of the training games finished since the previous report."""
    loss: float | None = None
    """Mean TD loss since the previous report."""
    q_mean: float | None = None
    epsilon: float
    steps_per_second: float
    elapsed_seconds: float
    eval_mean: float | None = None
    """Mean shots-to-win of the greedy policy on seeded games, when evaluated at this step."""
    eval_median: float | None = None


class ShotStats(msgspec.Struct, frozen=True, kw_only=True):
    """Shots-to-win over seeded games."""

    player: str
    games: PositiveInt
    mean: float
    median: float
    p90: float
    worst: int
    best: int
    stdev: float


class Versus(msgspec.Struct, frozen=True, kw_only=True):
    """The agent against one baseline on the same seeded fleets.

    Game ``i`` is a head-to-head match in which both sides need the shots they needed on
    fleet ``i``; the agent fires first in even games, so equal shot counts go to whoever
    fired first.
    """

    baseline: ShotStats
    wins: NonNegativeInt
    losses: NonNegativeInt
    win_rate: float


class EvaluationReport(msgspec.Struct, frozen=True, kw_only=True):
    """The greedy agent's shots-to-win and its head-to-head record against baselines."""

    games: PositiveInt
    seed: NonNegativeInt
    agent: ShotStats
    versus: tuple[Versus, ...] = ()


# ---------------------------------------------------------------- commands


class StartJob(Command, frozen=True, tag="training.start.v1"):
    """Queue a training job; the key is the job id and the id of the agent it registers."""

    config: TrainConfig = TrainConfig()
    name: Name | None = None
    """A display name (the job id is used when absent)."""
    requested_by: Key | None = None
    max_attempts: Annotated[int, Meta(ge=1, le=100)] = 3
    """Worker launches (first run plus resumes) before the job is marked failed."""


class CancelJob(Command, frozen=True, tag="training.cancel.v1"):
    """Stop a queued or running job; its worker is terminated and nothing is registered."""

    reason: Text = "cancelled"
    requested_by: Key | None = None


class LaunchAttempt(Command, frozen=True, tag="training.launch_attempt.v1"):
    """From the job supervisor: start worker ``attempt`` (resuming from the last checkpoint)."""

    attempt: Attempt
    run_dir: Path
    reason: Text = "first run"
    """Why this attempt: the first run, or what ended the previous one."""
    checkpoint: Path | None = None
    """Where to resume from when newer than the job's recorded checkpoint (found on disk)."""
    checkpoint_step: NonNegativeInt = 0


class ReportProgress(Command, frozen=True, tag="training.report_progress.v1"):
    """From the worker of ``attempt``: report number ``seq`` (1, 2, ... per attempt)."""

    attempt: Attempt
    seq: PositiveInt
    metrics: ProgressMetrics
    checkpoint: Path | None = None
    """A checkpoint written at this step, from which the job can resume."""


class ReportCompleted(Command, frozen=True, tag="training.report_completed.v1"):
    """From the worker of ``attempt``: training and the final evaluation are done."""

    attempt: Attempt
    metrics: ProgressMetrics
    evaluation: EvaluationReport
    model_path: Path
    model_sha256: Sha256
    checkpoint: Path
    plots: tuple[Path, ...] = ()


class ReportFailed(Command, frozen=True, tag="training.report_failed.v1"):
    """From the worker of ``attempt``: training cannot go on (diverged, unusable checkpoint)."""

    attempt: Attempt
    reason: Text


# ---------------------------------------------------------------- events


class JobQueued(Event, frozen=True, tag="training.job_queued.v1"):
    """A job was accepted and waits for its first worker."""

    config: TrainConfig
    name: str
    agent_id: str
    max_attempts: int
    requested_by: str | None
    at: datetime


class AttemptStarted(Event, frozen=True, tag="training.attempt_started.v1"):
    """A worker was launched: the first run, or a resume from ``checkpoint`` at ``from_step``."""

    attempt: int
    run_dir: str
    reason: str
    checkpoint: str | None
    from_step: int
    at: datetime


class JobProgressed(Event, frozen=True, tag="training.job_progressed.v1"):
    """A running job's latest metrics (and a new checkpoint, if one was written)."""

    attempt: int
    seq: int
    metrics: ProgressMetrics
    checkpoint: str | None
    at: datetime


class JobCompleted(Event, frozen=True, tag="training.job_completed.v1"):
    """Training finished; the evaluation results of the final policy."""

    attempt: int
    metrics: ProgressMetrics
    evaluation: EvaluationReport
    model_path: str
    model_sha256: str
    checkpoint: str
    plots: tuple[str, ...]
    at: datetime


class AgentRegistered(Event, frozen=True, tag="training.agent_registered.v1"):
    """The trained policy is available to matches and the ladder as agent ``agent_id``."""

    agent_id: str
    ladder: str
    model_path: str
    model_sha256: str
    mean_shots: float
    at: datetime


class JobFailed(Event, frozen=True, tag="training.job_failed.v1"):
    """The job stopped for good without an agent; ``reason`` says why."""

    reason: str
    attempt: int
    at: datetime


class JobCancelled(Event, frozen=True, tag="training.job_cancelled.v1"):
    """The job was cancelled on request."""

    reason: str
    requested_by: str | None
    at: datetime


COMMANDS = (StartJob, CancelJob, LaunchAttempt, ReportProgress, ReportCompleted, ReportFailed)
EVENTS = (
    JobQueued,
    AttemptStarted,
    JobProgressed,
    JobCompleted,
    AgentRegistered,
    JobFailed,
    JobCancelled,
)
