"""PNG learning curves of a run: shots-to-win against the baselines, loss, epsilon, speed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, never need a display

import matplotlib.pyplot as plt

from schemas.training import EvaluationReport


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for record in history:
        value = record.get(key)
        if value is not None:
            xs.append(record["step"] / 1e6)
            ys.append(float(value))
    return xs, ys


def learning_curves(
    history: Sequence[dict[str, Any]], report: EvaluationReport | None, path: Path
) -> list[Path]:
    """Write a 2x2 figure of the run's metrics to ``path``; return the files written."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    shots, loss, epsilon, speed = axes[0][0], axes[0][1], axes[1][0], axes[1][1]

    x, y = _series(history, "mean_shots")
    shots.plot(x, y, label="training games (epsilon-greedy)", color="tab:blue", alpha=0.7)
    x, y = _series(history, "eval_mean")
    shots.plot(x, y, "o-", label="greedy policy, seeded games", color="tab:red")
    if report is not None:
        for versus, color in zip(
            report.versus, ("0.6", "0.45", "0.3", "0.15", "0.0"), strict=False
        ):
            shots.axhline(versus.baseline.mean, ls="--", lw=1, color=color)
            shots.annotate(
                f"{versus.baseline.player} {versus.baseline.mean:.1f}",
                (0, versus.baseline.mean),
                xycoords=("axes fraction", "data"),
                xytext=(3, 2),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
        shots.set_title(
            f"Shots to win (final: {report.agent.mean:.1f} mean over {report.games} games)"
        )
    else:
        shots.set_title("Shots to win")
    shots.set_xlabel("shots fired in training (millions)")
    shots.set_ylabel("shots to sink the fleet")
    shots.legend(loc="upper right", fontsize=8)
    shots.grid(alpha=0.3)

    x, y = _series(history, "loss")
    loss.plot(x, y, color="tab:purple")
    loss.set_yscale("log")
    loss.set_title("TD loss (mean per log window)")
    loss.set_xlabel("shots fired in training (millions)")
    loss.grid(alpha=0.3)

    x, y = _series(history, "epsilon")
    epsilon.plot(x, y, color="tab:green")
    epsilon.set_ylim(0, 1.05)
    epsilon.set_title("Exploration rate epsilon")
    epsilon.set_xlabel("shots fired in training (millions)")
    epsilon.grid(alpha=0.3)

    x, y = _series(history, "steps_per_second")
    speed.plot(x, y, color="tab:orange")
    speed.set_title("Training speed (shots per second)")
    speed.set_xlabel("shots fired in training (millions)")
    speed.grid(alpha=0.3)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
