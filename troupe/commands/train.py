"""``troupe train``: train the Battleship DQN agent here, evaluate a model, run jobs on the bus."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from actors.kernel.config import Settings
from actors.training import config as training_config
from actors.training import paths
from actors.training.errors import TrainingError
from schemas import subjects
from schemas.envelope import Outcome
from schemas.headers import Header
from schemas.training import (
    BASELINE_NAMES,
    CancelJob,
    EvaluationReport,
    ProgressMetrics,
    StartJob,
    TrainConfig,
)

console = Console()
err = Console(stderr=True)

DEFAULT_CONFIG = Path("configs/training/default.toml")


def register(sub: Any) -> None:
    """Add ``troupe train`` and its subcommands."""
    train = sub.add_parser(
        "train",
        help="train the Battleship DQN agent (or evaluate, submit, cancel, list jobs)",
        description=(
            "Without a subcommand: train here with a progress bar. The configuration is the "
            "file given by --config (every field optional), then the flags below."
        ),
    )
    _training_options(train)
    train.add_argument("--out", help="run directory (default <home>/training/runs/<name>)")
    train.add_argument("--name", help="run name (default local-<timestamp>)")
    train.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue from a checkpoint file, or 'latest' for the newest in the run directory",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar, log lines only")
    train.set_defaults(handler=cmd_train)
    actions = train.add_subparsers(dest="train_command", metavar="{eval,submit,cancel,jobs,config}")

    ev = actions.add_parser("eval", help="evaluate a model or checkpoint against the baselines")
    ev.add_argument("model", help="model.pt or a checkpoint (checkpoints/step-*.pt)")
    ev.add_argument("--games", type=int, default=1000, help="seeded games (default 1000)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the fleets (default 0)")
    ev.add_argument(
        "--baselines",
        default="random,hunt_target,hunt_target_parity,probability",
        help=f"comma-separated, from: {', '.join(BASELINE_NAMES)} (empty for none)",
    )
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.set_defaults(handler=cmd_eval)

    submit = actions.add_parser(
        "submit", help="start a training job on the bus (the actor runs it)"
    )
    submit.add_argument("job", help="job id, also the id the trained agent is registered under")
    _training_options(submit)
    submit.add_argument("--display-name", help="a display name for the job")
    submit.add_argument("--max-attempts", type=int, default=3, help="worker launches allowed")
    submit.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the outcome")
    submit.set_defaults(handler=cmd_submit)

    cancel = actions.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job")
    cancel.add_argument("--reason", default="cancelled from the command line")
    cancel.add_argument("--wait", type=float, default=10.0)
    cancel.set_defaults(handler=cmd_cancel)

    jobs = actions.add_parser("jobs", help="list training jobs with their status and metrics")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs)

    cfg = actions.add_parser("config", help="print the documented configuration (TOML)")
    cfg.add_argument("--config", help="a file to merge over the defaults")
    cfg.set_defaults(handler=cmd_config)


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help=f"TOML configuration (default {DEFAULT_CONFIG} when it exists, else built-in)",
    )
    training_config.add_flags(parser)


def _cli_error(message: str) -> Exception:
    from troupe.cli import CliError

    return CliError(message)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The config file (or the default one) with the flags applied."""
    path = args.config
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    try:
        return training_config.resolve(path, training_config.overrides_from(args))
    except TrainingError as exc:
        raise _cli_error(str(exc)) from exc


# -- local training ---------------------------------------------------------------------


def _format(m: ProgressMetrics) -> str:
    parts = [f"step {m.step:,}", f"games {m.episodes:,}"]
    if m.mean_shots is not None:
        parts.append(f"shots-to-win {m.mean_shots:.1f}")
    if m.eval_mean is not None:
        parts.append(f"greedy {m.eval_mean:.1f}")
    if m.loss is not None:
        parts.append(f"loss {m.loss:.4f}")
    parts += [f"epsilon {m.epsilon:.3f}", f"{m.steps_per_second:,.0f} steps/s"]
    return ", ".join(parts)


async def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Train locally with a progress bar; print the evaluation and where the files are."""
    config = resolve_config(args)
    name = args.name or f"local-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    run_dir = Path(args.out) if args.out else paths.training_root(settings.home) / "runs" / name
    resume: Path | None = None
    if args.resume == "latest":
        found = paths.latest(run_dir / paths.CHECKPOINTS)
        if found is None:
            raise _cli_error(f"no checkpoint in {run_dir / paths.CHECKPOINTS} to resume from")
        resume = found[1]
    elif args.resume:
        resume = Path(args.resume)

    from actors.training.trainer import Trainer

    stop = threading.Event()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    console.print(f"training in {run_dir} ({training_config.describe(config)})")
    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("shots"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        disable=args.quiet,
        transient=True,
    )
    task = progress.add_task("train", total=config.total_steps, status="")
    last_tick = [0.0]

    def on_tick(step: int) -> None:
        now = time.monotonic()
        if now - last_tick[0] > 0.25:
            last_tick[0] = now
            progress.update(task, completed=min(step, config.total_steps))

    def on_report(metrics: ProgressMetrics, checkpoint: Path | None) -> None:
        progress.update(task, completed=metrics.step, status=_format(metrics))
        progress.console.print(
            _format(metrics) + (f" [checkpoint {checkpoint}]" if checkpoint else "")
        )

    try:
        with progress:
            trainer = Trainer(
                config,
                run_dir,
                agent_id=name,
                on_report=on_report,
                on_tick=on_tick,
                should_stop=stop.is_set,
            )
            result = trainer.run(resume)
    except TrainingError as exc:
        raise _cli_error(str(exc)) from exc
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.stopped:
        console.print(
            f"stopped at step {result.metrics.step:,}; resume with "
            f"--out {run_dir} --resume {result.checkpoint}"
        )
        return 130
    assert result.evaluation is not None
    console.print(evaluation_table(result.evaluation))
    console.print(
        f"trained {result.metrics.step:,} shots in {result.metrics.elapsed_seconds:.0f} s; "
        f"model {result.model_path}, checkpoint {result.checkpoint}, "
        f"curve {', '.join(str(p) for p in result.plots)}"
    )
    return 0


def evaluation_table(report: EvaluationReport) -> Table:
    """Shots-to-win of the agent and each baseline, with the agent's head-to-head win rate."""
    table = Table(title=f"Shots to win over {report.games} seeded games (seed {report.seed})")
    for column in ("player", "mean", "median", "p90", "worst", "best", "agent win rate"):
        table.add_column(column, justify="left" if column == "player" else "right")
    a = report.agent
    table.add_row(
        f"[bold]{a.player}[/bold]",
        f"{a.mean:.2f}",
        f"{a.median:.1f}",
        f"{a.p90:.0f}",
        str(a.worst),
        str(a.best),
        "",
    )
    for v in report.versus:
        b = v.baseline
        table.add_row(
            b.player,
            f"{b.mean:.2f}",
            f"{b.median:.1f}",
            f"{b.p90:.0f}",
            str(b.worst),
            str(b.best),
            f"{v.win_rate:.1%} ({v.wins}-{v.losses})",
        )
    return table


# -- evaluation -------------------------------------------------------------------------


def load_for_eval(path: Path, agent_id: str) -> tuple[Any, TrainConfig | None]:
    """A greedy player from a model file or a training checkpoint, and the config it records."""
    from actors.training import checkpoints
    from actors.training.network import QNetwork
    from actors.training.policy import TrainedPlayer

    try:
        data = checkpoints.load_model(path)
        net = QNetwork.build(data["architecture"])
        net.load_state_dict(data["state_dict"])
        recorded = data.get("meta", {}).get("config")
    except TrainingError:
        state = checkpoints.load_checkpoint(path)
        agent = state["agent"]
        net = QNetwork.build(agent["architecture"])
        net.load_state_dict(agent["online"])
        recorded = state.get("config")
    config = training_config.from_mapping(recorded, str(path)) if recorded else None
    return TrainedPlayer(agent_id, net), config


async def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate a model or checkpoint on seeded fleets against the chosen baselines."""
    from actors.training.evaluation import evaluate
    from actors.training.trainer import rules_of

    path = Path(args.model)
    names = [n.strip() for n in args.baselines.split(",") if n.strip()]
    unknown = sorted(set(names) - set(BASELINE_NAMES))
    if unknown:
        raise _cli_error(f"unknown baselines {', '.join(unknown)}; choose from {BASELINE_NAMES}")
    try:
        player, config = load_for_eval(path, path.parent.name or "agent")
    except TrainingError as exc:
        raise _cli_error(str(exc)) from exc
    rules = rules_of(config or training_config.DEFAULT)
    report = evaluate(player, rules, games=args.games, seed=args.seed, baselines=names)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")
    else:
        console.print(evaluation_table(report))
    return 0


# -- jobs on the bus --------------------------------------------------------------------


async def _command(
    settings: Settings, job: str, command: StartJob | CancelJob, wait: float
) -> Outcome | None:
    from troupe import services

    command_id = str(uuid.uuid4())
    headers = {
        Header.MSG_ID.value: command_id,
        Header.WANT_OUTCOME.value: "1",
        Header.CORRELATION_ID.value: command_id,
    }
    async with services.connected(settings) as bus:
        sub = await bus.nc.subscribe(subjects.outcome_subject("training", command_id))
        try:
            await bus.publish(
                subjects.command_subject_for(type(command), job),
                msgspec.json.encode(command),
                headers,
            )
            try:
                msg = await sub.next_msg(timeout=wait)
            except Exception:
                return None
        finally:
            await sub.unsubscribe()
    return msgspec.json.decode(msg.data, type=Outcome)


def _report_outcome(outcome: Outcome | None, what: str) -> int:
    if outcome is None:
        err.print(f"{what}: no outcome yet (is the training actor running?); the command is stored")
        return 3
    if outcome.status == "applied":
        console.print(f"{what}: applied")
        return 0
    reason = outcome.rejection.reason if outcome.rejection else outcome.status
    err.print(f"[red]{what}: {outcome.status}: {reason}[/red]")
    return 1


async def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Publish ``training.start.v1`` for a job and print its outcome."""
    subjects.check_key(args.job)
    command = StartJob(
        config=resolve_config(args),
        name=args.display_name,
        max_attempts=args.max_attempts,
    )
    outcome = await _command(settings, args.job, command, args.wait)
    return _report_outcome(outcome, f"job {args.job}")


async def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Publish ``training.cancel.v1`` for a job and print its outcome."""
    subjects.check_key(args.job)
    outcome = await _command(settings, args.job, CancelJob(reason=args.reason), args.wait)
    return _report_outcome(outcome, f"cancel {args.job}")


async def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """List jobs from the training actor's table, newest first."""
    from actors.kernel.host import engines
    from actors.training.queries import list_jobs

    write, read = engines(settings)
    try:
        rows = await list_jobs(read)
    finally:
        await write.dispose()
        await read.dispose()
    if args.json:
        for row in rows:
            sys.stdout.buffer.write(msgspec.json.encode(row) + b"\n")
        return 0
    table = Table("job", "status", "attempt", "step", "shots-to-win", "greedy", "loss", "epsilon")
    for r in rows:
        table.add_row(
            r.job_id,
            r.status,
            f"{r.attempt}/{r.max_attempts}",
            f"{r.step:,}/{r.total_steps:,}",
            _num(r.mean_shots),
            _num(r.eval_mean),
            _num(r.loss, 4),
            _num(r.epsilon, 3),
        )
    console.print(table)
    return 0


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


async def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """Print the documented TOML of the defaults (or of a file merged over them)."""
    try:
        config = training_config.load(args.config) if args.config else training_config.DEFAULT
    except TrainingError as exc:
        raise _cli_error(str(exc)) from exc
    sys.stdout.write(training_config.render_toml(config))
    return 0
