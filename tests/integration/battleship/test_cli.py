"""``troupe battleship rooms|ladder|replay`` against the running actors and their database."""

from __future__ import annotations

import json

import pytest

from actors.kernel.config import Settings
from actors.kernel.host import Host
from actors.ratings.rules import Ladder
from schemas.battleship import CreateMatch, CreateRoom, JoinRoom, PlaceFleet, Player, Resign
from tests.integration.battleship.conftest import Bus
from troupe.cli import build_parser

pytestmark = pytest.mark.asyncio


async def _run(argv: list[str], settings: Settings) -> int:
    args = build_parser().parse_args(argv)
    code: int = await args.handler(args, settings)
    return code


async def test_rooms_ladder_and_replay_commands(
    bus: Bus, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = host.settings
    await bus.ok("r1", CreateRoom(name="duel", host="alice"))
    await bus.ok("r1", JoinRoom(user="bob"))
    alice, bob = Player(kind="user", id="alice"), Player(kind="user", id="bob")
    await bus.ok("m1", CreateMatch(players=(alice, bob), seed=3, first=0))
    await bus.ok("m1", PlaceFleet(player="alice"))
    await bus.ok("m1", Resign(player="bob"))
    await bus.until(
        lambda: bus.state("ratings", "standard", Ladder), lambda s: s.rated_matches == 1
    )
    capsys.readouterr()

    assert await _run(["battleship", "rooms", "--json"], settings) == 0
    (room,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (room["room_id"], room["status"], room["members"]) == ("r1", "full", ["alice", "bob"])

    assert await _run(["battleship", "ladder", "--json"], settings) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["rank"], r["player"]["id"], r["rating"]) for r in rows] == [
        (1, "alice", 1516.0),
        (2, "bob", 1484.0),
    ]
    assert await _run(["battleship", "ladder"], settings) == 0
    assert "alice" in capsys.readouterr().out

    # bob never placed a fleet; the finished match hides nothing from anyone.
    assert await _run(["battleship", "replay", "m1"], settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"]["type"] for e in lines[:-1]] == [
        "match.created.v1",
        "match.fleet_placed.v1",
        "match.finished.v1",
    ]
    assert lines[0]["event"]["seed"] == 3
    assert lines[-1]["state"]["status"] == "finished"
    assert lines[-1]["redacted"] is False
    assert await _run(["battleship", "replay", "nothing"], settings) == 1


async def test_an_unfinished_replay_is_redacted_for_its_viewer(
    bus: Bus, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = host.settings
    agent = Player(kind="agent", id="random")
    await bus.ok("m2", CreateMatch(players=(Player(kind="user", id="alice"), agent), seed=4))
    await bus.ok("m2", PlaceFleet(player="alice"))
    capsys.readouterr()
    assert await _run(["battleship", "replay", "m2", "--viewer", "alice"], settings) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fleets = {e["event"]["seat"]: e["event"]["ships"] for e in lines[:-1] if "seat" in e["event"]}
    assert fleets[1] == []
    assert len(fleets[0]) == 5
    assert lines[0]["event"]["seed"] == 0
    assert lines[-1]["redacted"] is True
