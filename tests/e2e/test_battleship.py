"""A human plays an agent to the end over HTTP against a real ``troupe up``, watched live."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
import websockets

from gateway.battleship.frames import (
    CaughtUp,
    LobbyEventFrame,
    LobbyReady,
    MatchReady,
)
from gateway.battleship.models import (
    AgentPage,
    MatchPage,
    MatchView,
    ReplayBody,
    RoomDetail,
    StandingsPage,
)
from gateway.models import CommandResult
from schemas.battleship import (
    ChatPosted,
    FleetPlaced,
    MatchCreated,
    MatchFinished,
    RoomCreated,
    RoomUpdated,
    ShotFired,
)
from tests.e2e.battleship.client import LOBBY_FRAMES, Api, Feed, recv, until
from tests.e2e.conftest import TroupeUp, run_schemathesis

pytestmark = [pytest.mark.e2e]

LOCAL = "local"
"""The player every request acts as on loopback without authentication."""
OPPONENT = "hunt_target"


@pytest.fixture(scope="module")
def troupe_env() -> dict[str, str]:
    """Only the tree's own actors: lobby, match and ratings among them."""
    return {}


@pytest.fixture
async def http(troupe_up: TroupeUp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=troupe_up.base_url, timeout=30) as client:
        yield client


def next_cell(view: MatchView) -> str:
    """A human's sensible next shot from the board as the route shows it.

    Next to an open hit first (finishing a ship); else the checkerboard every ship of
    length 2 or more must cross; else whatever is left.
    """
    grid = view.seats[1].grid  # the agent's waters, as far as they are known
    height, width = len(grid), len(grid[0])

    def open_cell(r: int, c: int) -> bool:
        return 0 <= r < height and 0 <= c < width and grid[r][c] == "."

    for r in range(height):
        for c in range(width):
            if grid[r][c] == "X":
                for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                    if open_cell(r + dr, c + dc):
                        return f"{chr(65 + r + dr)}{c + dc + 1}"
    cells = [(r, c) for r in range(height) for c in range(width) if open_cell(r, c)]
    parity = [(r, c) for r, c in cells if (r + c) % 2 == 0]
    r, c = (parity or cells)[0]
    return f"{chr(65 + r)}{c + 1}"


async def test_a_human_plays_an_agent_over_http_until_the_match_is_over(
    http: httpx.AsyncClient, troupe_up: TroupeUp
) -> None:
    me = Api(http)
    agents = msgspec.json.decode((await me.get("/agents")).content, type=AgentPage)
    assert OPPONENT in [a.id for a in agents.items]

    created = await me.post("/matches", {"opponent": {"kind": "agent", "id": OPPONENT}})
    assert created.status_code == 200, created.text
    match_id = created.headers["troupe-match-id"]
    outcome = msgspec.json.decode(created.content, type=CommandResult)
    # The agent's fleet is placed in the same decision, and hidden from its opponent.
    agent_fleet = msgspec.convert(outcome.events[1].data, FleetPlaced)
    assert (agent_fleet.player, agent_fleet.ships) == (OPPONENT, ())
    assert msgspec.convert(outcome.events[0].data, MatchCreated).seed == 0

    async with websockets.connect(me.ws_url(troupe_up.base_url, f"matches/{match_id}")) as ws:
        watcher = Feed(ws)
        ready = await watcher.until(lambda f: True)
        assert isinstance(ready, MatchReady)
        assert ready.player == LOCAL

        placed = await me.ok(f"/matches/{match_id}/fleet")
        assert [e["type"] for e in placed["events"][:2]] == [
            "match.fleet_placed.v1",
            "match.started.v1",
        ]
        await me.ok(f"/matches/{match_id}/chat", {"text": "good luck"})

        turns = 0
        over = False
        while not over:
            response = await me.get(f"/matches/{match_id}")
            view = msgspec.json.decode(response.content, type=MatchView)
            # Agents move inside the decision of the user's command: it is always our turn.
            assert view.your_turn, view
            assert turns < 100, "a 10x10 match is over within 100 shots a side"
            fired = await me.post(f"/matches/{match_id}/shots", {"cell": next_cell(view)})
            assert fired.status_code == 200, fired.text
            turns += 1
            over = any(e["type"] == "match.finished.v1" for e in fired.json()["events"])
        response = await me.get(f"/matches/{match_id}")
        view = msgspec.json.decode(response.content, type=MatchView)

        finished = await watcher.event(MatchFinished)
        live = watcher.event_frames()

    assert finished.reason == "fleet_sunk"
    assert {finished.winner.id, finished.loser.id} == {LOCAL, OPPONENT}
    assert view.winner is not None
    assert view.seed is not None
    assert all(seat.fleet is not None for seat in view.seats)
    mine = [s for s in view.shots if s.seat == 0]
    assert len(mine) == turns
    # The watching socket saw every turn and the chat, in order, once, and the secrets at the end.
    assert live[-1].reveal is not None
    assert live[-1].reveal.fleets[1] == view.seats[1].fleet
    shots = [f.event for f in live if isinstance(f.event, ShotFired)]
    assert [s.number for s in shots] == list(range(1, len(view.shots) + 1))
    assert [e.text for e in watcher.events(ChatPosted)] == ["good luck"]
    replay = msgspec.json.decode(
        (await me.get(f"/matches/{match_id}/replay")).content, type=ReplayBody
    )
    assert replay.finished
    assert not replay.redacted
    assert [f.seq for f in live] == [e.seq for e in replay.events if e.seq >= live[0].seq]

    history = msgspec.json.decode((await me.get("/matches")).content, type=MatchPage)
    assert (history.player, history.items[0].match_id) == (LOCAL, match_id)
    assert history.items[0].status == "finished"

    async def ladder() -> StandingsPage:
        response = await me.get("/ladders/standard")
        return msgspec.json.decode(response.content, type=StandingsPage)

    async with asyncio.timeout(20):
        table = await ladder()
        while {s.player.id for s in table.items} < {LOCAL, OPPONENT}:
            await asyncio.sleep(0.1)
            table = await ladder()
    winner = next(s for s in table.items if s.player.id == finished.winner.id)
    assert (winner.rank, winner.wins, winner.rating > 1500) == (1, 1, True)


async def test_the_lobby_socket_follows_a_room_over_http(
    http: httpx.AsyncClient, troupe_up: TroupeUp
) -> None:
    host, guest = Api(http), Api(http, player="guest")
    room_id = f"room-{uuid.uuid4().hex[:8]}"
    async with websockets.connect(host.ws_url(troupe_up.base_url, "lobby")) as lobby:
        ready = await recv(lobby, LOBBY_FRAMES)
        assert isinstance(ready, LobbyReady)
        assert await recv(lobby, LOBBY_FRAMES) == CaughtUp(seq=ready.last_seq)
        await host.ok("/rooms", {"name": "e2e", "room_id": room_id, "rated": False})
        await guest.ok(f"/rooms/{room_id}/join")
        frames = await until(
            lobby,
            LOBBY_FRAMES,
            lambda f: isinstance(f, LobbyEventFrame) and isinstance(f.event, RoomUpdated),
        )
    events = [f.event for f in frames if isinstance(f, LobbyEventFrame) and f.room_id == room_id]
    assert isinstance(events[0], RoomCreated)
    assert isinstance(events[-1], RoomUpdated)
    assert (events[-1].change, events[-1].members) == ("joined", (LOCAL, "guest"))
    room = msgspec.json.decode((await host.get(f"/rooms/{room_id}")).content, type=RoomDetail)
    assert room.status == "full"


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_in_the_battleship_routes(
    troupe_up: TroupeUp, tmp_path: Path
) -> None:
    result = run_schemathesis(troupe_up, tmp_path, tags=("battleship",), max_examples=15)
    assert result.returncode == 0, f"schemathesis found problems:\n{result.stdout[-6000:]}"
    assert "Tested: " in result.stdout
