"""``troupe battleship eval``: seeded shots-to-win statistics per player."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.battleship.engine import Rules
from actors.battleship.evaluate import evaluate
from actors.battleship.players import BASELINES
from actors.kernel import migrate
from troupe.cli import main

SMALL = ["--height", "6", "--width", "6", "--ships", "3,2"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own state directory, so no command reads or creates the repository's."""
    monkeypatch.setenv("TROUPE_HOME", str(tmp_path))
    monkeypatch.delenv("TROUPE_DATABASE_URL", raising=False)
    return tmp_path


def test_eval_prints_the_statistics_of_each_player(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["battleship", "eval", "--games", "20", "--players", "random,probability", *SMALL])
    assert code == 0
    out = capsys.readouterr().out
    for header in ("player", "games", "mean", "median", "p90", "worst"):
        assert header in out
    assert "random" in out
    assert "probability" in out
    assert "6x6" in out


def test_eval_is_seeded_and_agrees_with_evaluate(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["battleship", "eval", "--games", "15", "--players", "hunt_target", "--seed", "3"]
    assert main([*args, "--json", *SMALL]) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main([*args, "--json", "--trace", *SMALL]) == 0
    traced = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first == traced
    expected = evaluate(BASELINES["hunt_target"], 15, rules=Rules.of(6, 6, (3, 2)), seed=3)
    (row,) = first
    assert (row["player"], row["games"], row["mean"], row["p90"], row["worst"]) == (
        "hunt_target",
        15,
        expected.mean,
        expected.p90,
        expected.worst,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--players", "nobody"], "unknown players: nobody"),
        (["--ships", "30"], "ship30 has length 30"),
        (["--players", ","], "names no player"),
    ],
)
def test_eval_refuses_what_it_cannot_play(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["battleship", "eval", "--games", "2", *args]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_unknown_players_are_looked_up_in_the_agent_registry(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(f"sqlite+aiosqlite:///{home / 'troupe.db'}")
    assert main(["battleship", "eval", "--games", "2", "--players", "random,dqn-9"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown players: dqn-9" in err
    assert "could not be read" not in err
    assert sorted(p.name for p in home.iterdir()) == ["troupe.db"]


def test_eval_rejects_bad_arguments_before_playing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["battleship", "eval", "--games", "0"])
    assert exit_.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
