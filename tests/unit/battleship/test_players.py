"""Baseline players and the evaluation harness."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from rich.console import Console

from actors.battleship.engine import Board, BoardView, Mark, Rules
from actors.battleship.env import BattleshipEnv
from actors.battleship.errors import NoShotLeft
from actors.battleship.evaluate import evaluate, main, nearest_rank, play, summarize
from actors.battleship.players import (
    BASELINES,
    HuntTargetPlayer,
    Player,
    ProbabilityPlayer,
    RandomPlayer,
    baseline,
    view_from_observation,
)

U, M, X, S = Mark.UNKNOWN, Mark.MISS, Mark.HIT, Mark.SUNK


def view(rows: list[str], remaining: tuple[int, ...], *, no_touch: bool = False) -> BoardView:
    glyph = {".": U, "o": M, "X": X, "#": S}
    marks = bytes(glyph[ch] for row in rows for ch in row)
    return BoardView(len(rows), len(rows[0]), marks, remaining, no_touch)


def test_registry() -> None:
    assert set(BASELINES) == {
        "random",
        "hunt_target",
        "hunt_target_parity",
        "probability",
        "probability_no_parity",
    }
    for name, player in BASELINES.items():
        assert player.name == name
        assert isinstance(player, Player)
    assert baseline("probability") is BASELINES["probability"]
    assert baseline("nobody") is None


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_player_only_fires_at_unknown_cells_and_wins(name: str) -> None:
    player = BASELINES[name]
    for seed in range(5):
        for rules in (Rules(), Rules.of(6, 6, (3, 2)), Rules.of(7, 7, (3, 3, 2), no_touch=True)):
            board = Board.random(rules, random.Random(seed))
            rng = random.Random(seed)
            while not board.defeated:
                cell = player.select(board.view(), rng)
                assert board.marks[cell] == U
                board.fire_at(cell)
            assert board.shots <= rules.cells


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_choices_are_reproducible_from_the_generator(name: str) -> None:
    player = BASELINES[name]
    rules = Rules()
    a = play(player, rules, random.Random(1), random.Random(2))
    b = play(player, rules, random.Random(1), random.Random(2))
    assert a == b


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_no_shot_left(name: str) -> None:
    full = view(["oo", "o#"], ())
    with pytest.raises(NoShotLeft):
        BASELINES[name].select(full, random.Random(0))


def test_smart_players_beat_random() -> None:
    games = 30
    means = {
        name: evaluate(BASELINES[name], games, seed=5).mean
        for name in ("random", "hunt_target", "probability")
    }
    assert means["random"] > 85
    assert means["hunt_target"] < means["random"] - 20
    assert means["probability"] < means["hunt_target"]


def test_hunt_target_fires_next_to_a_hit() -> None:
    v = view([".....", ".....", "..X..", ".....", "....."], (3,))
    choices = {HuntTargetPlayer().select(v, random.Random(s)) for s in range(40)}
    assert choices == {7, 11, 13, 17}


def test_hunt_target_extends_a_line_of_hits() -> None:
    v = view([".....", ".XX..", ".....", ".....", "....."], (3,))
    choices = {HuntTargetPlayer().select(v, random.Random(s)) for s in range(40)}
    assert choices == {5, 8}


def test_hunt_target_with_parity_hunts_on_the_lattice() -> None:
    v = view(["....", "....", "....", "...."], (2,))
    choices = {HuntTargetPlayer(parity=True).select(v, random.Random(s)) for s in range(60)}
    assert all(sum(divmod(c, 4)) % 2 == 0 for c in choices)
    assert len(choices) == 8


def test_no_touch_keeps_players_away_from_sunk_ships() -> None:
    v = view(["##...", ".....", "....."], (2,), no_touch=True)
    near = {2, 5, 6, 7}
    # The random baseline is deliberately naive: it uses nothing but the unshot cells.
    for player in (p for p in BASELINES.values() if p.name != "random"):
        picks = {player.select(v, random.Random(s)) for s in range(30)}
        assert not picks & near, player.name


def test_probability_density_counts_placements() -> None:
    player = ProbabilityPlayer(parity=False)
    density = player.density(view(["..."], (2,)))
    assert density.tolist() == [[1.0, 2.0, 1.0]]
    assert player.select(view(["..."], (2,)), random.Random(0)) == 1
    blocked = player.density(view(["o.."], (2,)))
    assert blocked.tolist() == [[0.0, 1.0, 1.0]]
    single = player.density(view(["..", ".."], (1,)))
    assert single.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_probability_targets_through_hits() -> None:
    player = ProbabilityPlayer()
    v = view(["....", ".X..", "....", "...."], (2,))
    assert player.select(v, random.Random(0)) in {1, 4, 6, 9}


def test_probability_parity_restricts_the_hunt() -> None:
    v = view(["....", "....", "....", "...."], (2, 2))
    picks = {ProbabilityPlayer().select(v, random.Random(s)) for s in range(30)}
    assert all(sum(divmod(c, 4)) % 2 == 0 for c in picks)


def test_view_from_observation_matches_the_env() -> None:
    env = BattleshipEnv(height=6, width=6, ships=(3, 2))
    obs, _ = env.reset(seed=4)
    for cell in (0, 7, 14, 21):
        obs, *_ = env.step(cell)
    assert view_from_observation(obs, env.board_view().remaining) == env.board_view()
    with pytest.raises(ValueError, match="observation"):
        view_from_observation(np.zeros((3, 6, 6)), (2,))


def test_summary_statistics() -> None:
    result = summarize("x", [40, 50, 60, 70, 80, 90, 100, 30, 20, 10])
    assert (result.mean, result.median, result.p90, result.worst, result.best) == (
        55.0,
        55.0,
        90.0,
        100,
        10,
    )
    assert nearest_rank([1, 2, 3], 90) == 3
    assert nearest_rank([5], 50) == 5
    with pytest.raises(ValueError, match="no games"):
        summarize("x", [])


def test_evaluate_is_reproducible_and_uses_the_same_fleets_for_everyone() -> None:
    rules = Rules.of(6, 6, (3, 2))
    first = evaluate(RandomPlayer(), 20, rules=rules, seed=3)
    again = evaluate(RandomPlayer(), 20, rules=rules, seed=3)
    other = evaluate(RandomPlayer(), 20, rules=rules, seed=4)
    assert first == again
    assert first != other
    assert first.games == 20
    assert 5 <= first.best <= first.median <= first.p90 <= first.worst <= 36
    with pytest.raises(ValueError, match="games"):
        evaluate(RandomPlayer(), 0)


def test_progress_bar_and_command_line() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=False)
    result = evaluate(
        BASELINES["hunt_target"], 3, rules=Rules.of(6, 6, (3, 2)), progress=True, console=console
    )
    assert result.games == 3
    assert (
        main(
            [
                "--games",
                "2",
                "--height",
                "6",
                "--width",
                "6",
                "--ships",
                "3,2",
                "--players",
                "random,probability",
            ]
        )
        == 0
    )
    with pytest.raises(SystemExit):
        main(["--players", "nobody"])
