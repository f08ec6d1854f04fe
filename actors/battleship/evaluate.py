"""Shots-to-win statistics of players over seeded single-sided games, with a command line."""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.progress import track
from rich.table import Table

from actors.battleship.engine import STANDARD_RULES, Board, Rules
from actors.battleship.players import BASELINES, Player


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Shots needed to sink a randomly placed fleet, over ``games`` games."""

    player: str
    games: int
    mean: float
    median: float
    p90: float
    """90th percentile (nearest rank): 90% of games were won in at most this many shots."""
    worst: int
    best: int
    stdev: float


def fleet_rng(seed: int, game: int) -> random.Random:
    """The generator that places game ``game``'s fleet: the same fleets for every player."""
    return random.Random(f"battleship-eval:{seed}:{game}:fleet")


def player_rng(seed: int, game: int) -> random.Random:
    """The generator a player draws from in game ``game``."""
    return random.Random(f"battleship-eval:{seed}:{game}:player")


def play(player: Player, rules: Rules, fleet: random.Random, rng: random.Random) -> int:
    """One single-sided game: the shots ``player`` needs to sink a random fleet."""
    board = Board.random(rules, fleet)
    while not board.defeated:
        board.fire_at(player.select(board.view(), rng))
    return board.shots


PlayGame = Callable[[Player, Rules, random.Random, random.Random, int], int]
"""Plays game number ``n`` (the last argument) and returns its shots to win."""


def _play_game(
    player: Player, rules: Rules, fleet: random.Random, rng: random.Random, game: int
) -> int:
    return play(player, rules, fleet, rng)


def nearest_rank(sorted_values: Sequence[int], percent: float) -> int:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(len(sorted_values) * percent / 100))
    return sorted_values[rank - 1]


def summarize(player: str, shots: Sequence[int]) -> Evaluation:
    """Statistics of a list of shots-to-win."""
    if not shots:
        raise ValueError("no games to summarize")
    ordered = sorted(shots)
    return Evaluation(
        player=player,
        games=len(ordered),
        mean=statistics.fmean(ordered),
        median=float(statistics.median(ordered)),
        p90=float(nearest_rank(ordered, 90)),
        worst=ordered[-1],
        best=ordered[0],
        stdev=statistics.pstdev(ordered),
    )


def evaluate(
    player: Player,
    games: int = 1000,
    *,
    rules: Rules = STANDARD_RULES,
    seed: int = 0,
    progress: bool = False,
    console: Console | None = None,
    play_game: PlayGame = _play_game,
) -> Evaluation:
    """Play ``games`` seeded games; game ``i`` uses the same fleet for every player and seed.

    ``play_game`` plays one game (``play`` by default; an instrumented edge may wrap it).
    """
    if games < 1:
        raise ValueError(f"games must be at least 1, not {games}")
    indices: Iterable[int] = range(games)
    if progress:
        indices = track(
            indices, description=f"{player.name:>22}", total=games, console=console, transient=True
        )
    shots = [play_game(player, rules, fleet_rng(seed, i), player_rng(seed, i), i) for i in indices]
    return summarize(player.name, shots)


def table(results: Iterable[Evaluation], rules: Rules) -> Table:
    """A rich table of evaluations."""
    lengths = ",".join(str(n) for n in rules.lengths)
    out = Table(title=f"Shots to win, {rules.height}x{rules.width}, fleet {lengths}")
    for column in ("player", "games", "mean", "median", "p90", "worst", "best", "stdev"):
        out.add_column(column, justify="left" if column == "player" else "right")
    for r in results:
        out.add_row(
            r.player,
            str(r.games),
            f"{r.mean:.2f}",
            f"{r.median:.1f}",
            f"{r.p90:.0f}",
            str(r.worst),
            str(r.best),
            f"{r.stdev:.2f}",
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m actors.battleship.evaluate``: print the statistics of the chosen players."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--games", type=int, default=1000, help="games per player")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleets and the players")
    parser.add_argument("--height", type=int, default=10)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--ships", default="5,4,3,3,2", help="comma-separated ship lengths")
    parser.add_argument("--no-touch", action="store_true", help="ships may not touch")
    parser.add_argument(
        "--players",
        default="random,hunt_target,hunt_target_parity,probability_no_parity,probability",
        help=f"comma-separated, from: {', '.join(BASELINES)}",
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.players.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        parser.error(f"unknown players: {', '.join(unknown)} (choose from {', '.join(BASELINES)})")
    rules = Rules.of(
        args.height,
        args.width,
        [int(n) for n in args.ships.split(",")],
        no_touch=args.no_touch,
    )
    console = Console()
    results = [
        evaluate(
            BASELINES[n],
            args.games,
            rules=rules,
            seed=args.seed,
            progress=args.progress,
            console=console,
        )
        for n in names
    ]
    console.print(table(results, rules))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
