"""The examples in docs/battleship.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "battleship.md"


def test_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


def test_documented_defaults_match_the_code() -> None:
    from actors.battleship.env import BattleshipEnv, Rewards
    from actors.ratings.rules import INITIAL_RATING, K_FACTOR

    text = DOC.read_text()
    rewards = Rewards()
    assert (rewards.miss, rewards.hit, rewards.sunk, rewards.win, rewards.invalid) == (
        -1.0,
        1.0,
        2.0,
        10.0,
        -5.0,
    )
    assert "| miss | -1.0 |" in text
    assert "| invalid action (cell already shot) | -5.0 |" in text
    assert BattleshipEnv().max_steps == 100
    assert (INITIAL_RATING, K_FACTOR) == (1500.0, 32.0)
    assert "initial rating 1500" in text
    assert "K-factor 32" in text


def test_the_erd_shows_the_battleship_and_kernel_tables_as_declared() -> None:
    from actors.lobby.tables import room_members, rooms
    from actors.match.tables import match_ships, matches, moves
    from actors.ratings.tables import ladders, ratings

    text = (DOC.parent / "erd.md").read_text()
    diagram = text.split("```mermaid", 1)[1].split("```", 1)[0]
    for table in (rooms, room_members, matches, match_ships, moves, ladders, ratings):
        block = diagram.split(f"    {table.name} {{", 1)[1].split("    }", 1)[0]
        assert [line.split()[1] for line in block.strip().splitlines()] == [
            c.name for c in table.columns
        ], table.name
    for name in ("consumer_ledger", "consumer_position", "outbox", "actor_state"):
        assert f"    {name} {{" in diagram
    for parent, child in (
        ("rooms", "room_members"),
        ("matches", "match_ships"),
        ("matches", "moves"),
        ("ladders", "ratings"),
    ):
        assert f"{parent} ||--o{{ {child}" in diagram
