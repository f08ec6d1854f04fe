"""Evaluating a trained policy on seeded fleets, alone and head-to-head against the baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actors.battleship.engine import Board, Rules
from actors.battleship.evaluate import fleet_rng, play, player_rng, summarize
from actors.battleship.players import BASELINES
from actors.training.policy import TrainedPlayer
from schemas.training import EvaluationReport, ShotStats, Versus


def agent_shots(player: TrainedPlayer, rules: Rules, games: int, seed: int) -> list[int]:
    """Shots the greedy player needs on each of ``games`` seeded fleets.

    The fleets are those of ``actors.battleship.evaluate`` (``fleet_rng(seed, i)``), so the
    figures compare directly with the baseline table in docs/battleship.md. All unfinished
    games go through the network together, one batched forward pass per shot.
    """
    boards = [Board.random(rules, fleet_rng(seed, i)) for i in range(games)]
    active = list(range(games))
    while active:
        marks = np.frombuffer(b"".join(boards[i].marks for i in active), np.uint8)
        shots = player.greedy(marks.reshape(len(active), rules.cells).astype(np.int8), *_hw(rules))
        for i, cell in zip(active, shots, strict=True):
            boards[i].fire_at(int(cell))
        active = [i for i in active if not boards[i].defeated]
    return [b.shots for b in boards]


def _hw(rules: Rules) -> tuple[int, int]:
    return rules.height, rules.width


def stats(player: str, shots: Sequence[int]) -> ShotStats:
    """Summary statistics of shots-to-win."""
    s = summarize(player, shots)
    return ShotStats(
        player=s.player,
        games=s.games,
        mean=s.mean,
        median=s.median,
        p90=s.p90,
        worst=s.worst,
        best=s.best,
        stdev=s.stdev,
    )


def baseline_shots(name: str, rules: Rules, games: int, seed: int) -> list[int]:
    """Shots a baseline player needs on the same seeded fleets."""
    player = BASELINES[name]
    return [play(player, rules, fleet_rng(seed, i), player_rng(seed, i)) for i in range(games)]


def head_to_head(agent: Sequence[int], baseline: Sequence[int]) -> tuple[int, int]:
    """(agent wins, baseline wins) when game ``i`` is won by the side needing fewer shots, and a
    tie by whoever fired first: the agent in even games, the baseline in odd ones."""
    wins = sum(
        1 for i, (a, b) in enumerate(zip(agent, baseline, strict=True)) if _agent_wins(i, a, b)
    )
    return wins, len(agent) - wins


def _agent_wins(game: int, agent: int, baseline: int) -> bool:
    if agent != baseline:
        return agent < baseline
    return game % 2 == 0


def evaluate(
    player: TrainedPlayer,
    rules: Rules,
    *,
    games: int,
    seed: int,
    baselines: Sequence[str] = (),
) -> EvaluationReport:
    """The agent's shots-to-win on ``games`` seeded fleets and its record against ``baselines``."""
    if games < 1:
        raise ValueError(f"games must be at least 1, not {games}")
    mine = agent_shots(player, rules, games, seed)
    versus = []
    for name in baselines:
        theirs = baseline_shots(name, rules, games, seed)
        wins, losses = head_to_head(mine, theirs)
        versus.append(
            Versus(baseline=stats(name, theirs), wins=wins, losses=losses, win_rate=wins / games)
        )
    return EvaluationReport(
        games=games, seed=seed, agent=stats(player.name, mine), versus=tuple(versus)
    )
