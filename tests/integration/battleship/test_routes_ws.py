"""The lobby and match WebSockets on real NATS and PostgreSQL: frames, moves, redaction, resume."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
import websockets

from actors.kernel.embedded import EmbeddedNats
from gateway.auth import AuthConfig
from gateway.battleship.frames import (
    CaughtUp,
    CommandAck,
    CommandRefused,
    LobbyEventFrame,
    LobbyReady,
    MatchEventFrame,
    MatchFrame,
    MatchReady,
    SocketError,
)
from gateway.battleship.models import ReplayBody
from schemas.battleship import (
    ChatPosted,
    FleetPlaced,
    MatchCreated,
    MatchFinished,
    MatchStarted,
    RoomClosed,
    RoomCreated,
    RoomUpdated,
    ShotFired,
)
from tests.e2e.battleship.client import LOBBY_FRAMES, MATCH_FRAMES, Api, Feed, recv, until
from tests.e2e.battleship.served import Served, battleship_actors, serve_gateway
from tests.support.jwks import claims, rsa_key

FLEET = [
    {"ship": "carrier", "row": 0, "col": 0},
    {"ship": "battleship", "row": 2, "col": 0},
    {"ship": "cruiser", "row": 4, "col": 0},
    {"ship": "submarine", "row": 6, "col": 0},
    {"ship": "destroyer", "row": 8, "col": 0},
]


@pytest.fixture
async def local(nats_server: EmbeddedNats, postgres_url: str) -> AsyncIterator[Served]:
    async with (
        battleship_actors(nats_server.url, postgres_url),
        serve_gateway(nats_server.url, postgres_url) as served,
    ):
        yield served


@pytest.fixture
async def http(local: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=local.base_url, timeout=30) as client:
        yield client


def agent_shot(frame: MatchFrame) -> bool:
    return (
        isinstance(frame, MatchEventFrame)
        and isinstance(frame.event, ShotFired)
        and frame.event.by_agent
    )


async def test_the_lobby_socket_streams_rooms_opening_filling_emptying_and_closing(
    http: httpx.AsyncClient, local: Served
) -> None:
    alice, bob = Api(http, player="alice"), Api(http, player="bob")
    await alice.ok("/rooms", {"name": "early", "room_id": "early"})
    frames: list[LobbyEventFrame] = []
    async with websockets.connect(alice.ws_url(local.base_url, "lobby")) as lobby:
        ready = await recv(lobby, LOBBY_FRAMES)
        assert isinstance(ready, LobbyReady)
        assert ready.from_seq == ready.last_seq + 1
        assert [r.room_id for r in ready.rooms or []] == ["early"]  # the snapshot
        assert await recv(lobby, LOBBY_FRAMES) == CaughtUp(seq=ready.last_seq)

        await alice.ok("/rooms", {"name": "Tuesday", "room_id": "tue", "capacity": 3})
        await bob.ok("/rooms/tue/join")
        for _ in range(2):
            frame = await recv(lobby, LOBBY_FRAMES)
            assert isinstance(frame, LobbyEventFrame)
            frames.append(frame)
    # Events land while nobody listens; a client resumes after the last sequence it handled.
    await bob.ok("/rooms/tue/leave")
    await alice.ok("/rooms/tue/close")
    async with websockets.connect(
        alice.ws_url(local.base_url, "lobby", last_seq=frames[-1].seq)
    ) as lobby:
        ready = await recv(lobby, LOBBY_FRAMES)
        assert isinstance(ready, LobbyReady)
        assert (ready.from_seq, ready.rooms) == (frames[-1].seq + 1, None)
        got = await until(lobby, LOBBY_FRAMES, lambda f: isinstance(f, CaughtUp))
        frames += [f for f in got if isinstance(f, LobbyEventFrame)]

    assert [f.room_id for f in frames] == ["tue"] * 4
    seqs = [f.seq for f in frames]
    assert seqs == sorted(set(seqs)), "a frame came twice or out of order"
    created, joined, left, closed = (f.event for f in frames)
    assert isinstance(created, RoomCreated)
    assert (created.name, created.members, created.status) == ("Tuesday", ("alice",), "open")
    assert isinstance(joined, RoomUpdated)
    assert (joined.change, joined.user, joined.members) == ("joined", "bob", ("alice", "bob"))
    assert isinstance(left, RoomUpdated)
    assert (left.change, left.members, left.status) == ("left", ("alice",), "open")
    assert isinstance(closed, RoomClosed)
    assert (closed.reason, closed.user) == ("host_closed", "alice")


async def test_two_players_and_a_spectator_on_the_match_socket(
    http: httpx.AsyncClient, local: Served
) -> None:
    alice, bob, carol = (Api(http, player=p) for p in ("alice", "bob", "carol"))
    players = [{"kind": "user", "id": "alice"}, {"kind": "user", "id": "bob"}]
    await alice.ok("/matches", {"players": players, "first": 0, "match_id": "duel"})
    url = local.base_url
    async with (
        websockets.connect(alice.ws_url(url, "matches/duel", last_seq=0)) as to_a,
        websockets.connect(bob.ws_url(url, "matches/duel", last_seq=0)) as to_b,
        websockets.connect(carol.ws_url(url, "matches/duel", last_seq=0)) as to_c,
    ):
        a, b, c = Feed(to_a), Feed(to_b), Feed(to_c)
        for feed, who in ((a, "alice"), (b, "bob"), (c, "carol")):
            ready = await feed.until(lambda f: True)
            assert isinstance(ready, MatchReady)
            assert (ready.match_id, ready.player, ready.from_seq) == ("duel", who, 1)
            await feed.until(lambda f: isinstance(f, CaughtUp))
            (created,) = feed.events(MatchCreated)
            assert created.seed == 0  # hidden from everyone until the end

        await a.send({"type": "battleship.place_fleet.v1", "ref": "a-fleet", "ships": FLEET})
        assert isinstance(await a.answer("a-fleet"), CommandAck)
        await b.send({"type": "battleship.place_fleet.v1", "ref": "b-fleet"})
        assert isinstance(await b.answer("b-fleet"), CommandAck)
        for feed in (a, b, c):
            await feed.event(MatchStarted)
        # Each player sees their own ships only; the spectator sees none.
        assert {e.seat: len(e.ships) for e in a.events(FleetPlaced)} == {0: 5, 1: 0}
        assert {e.seat: len(e.ships) for e in b.events(FleetPlaced)} == {0: 0, 1: 5}
        assert {e.seat: len(e.ships) for e in c.events(FleetPlaced)} == {0: 0, 1: 0}

        # Out of turn, by a spectator, malformed: refused before reaching the actor.
        await b.send({"type": "battleship.fire.v1", "ref": "early", "cell": "A1"})
        early = await b.answer("early")
        assert isinstance(early, CommandRefused)
        assert (early.code, early.kind, early.status, early.command_id) == (
            "not_your_turn",
            "conflict",
            409,
            None,
        )
        await c.send({"type": "battleship.fire.v1", "ref": "c1", "cell": "A1"})
        spectator = await c.answer("c1")
        assert (spectator.code, spectator.status) == ("not_a_player", 403)  # type: ignore[union-attr]
        await a.send({"type": "battleship.fire.v1", "ref": "odd", "row": 1})
        half = await a.answer("odd")
        assert (half.code, half.status) == ("invalid_target", 422)  # type: ignore[union-attr]
        await a.send({"type": "battleship.warp.v1"})
        unknown = await a.answer(None)
        assert isinstance(unknown, CommandRefused)
        assert unknown.code == "invalid_frame"

        await a.send({"type": "battleship.fire.v1", "ref": "a1", "cell": "B1"})
        fired = await a.answer("a1")
        assert isinstance(fired, CommandAck)
        assert fired.status == "applied"
        # Sending the same ref again is a retry: the first answer, and no second shot.
        await a.send({"type": "battleship.fire.v1", "ref": "a1", "cell": "B1"})
        assert await a.answer("a1") == fired
        await b.send({"type": "battleship.fire.v1", "ref": "b1", "row": 0, "col": 0})
        assert isinstance(await b.answer("b1"), CommandAck)
        await b.send({"type": "battleship.chat.v1", "ref": "b-chat", "text": "ouch, A1?"})
        assert isinstance(await b.answer("b-chat"), CommandAck)
        await a.send({"type": "battleship.resign.v1", "ref": "a-out"})
        assert isinstance(await a.answer("a-out"), CommandAck)

        for feed in (a, b, c):
            finished = await feed.event(MatchFinished)
            assert (finished.winner.id, finished.reason) == ("bob", "resigned")
            shots = [(s.player, s.cell, s.number) for s in feed.events(ShotFired)]
            assert shots == [("alice", "B1", 1), ("bob", "A1", 2)]
            assert [e.text for e in feed.events(ChatPosted)] == ["ouch, A1?"]
            last = feed.event_frames()[-1]
            assert last.reveal is not None
            assert last.reveal.seed != 0
            assert [len(f or ()) for f in last.reveal.fleets] == [5, 5]
            seqs = [f.seq for f in feed.event_frames()]
            assert seqs == sorted(set(seqs))

    replay = msgspec.json.decode((await carol.get("/matches/duel/replay")).content, type=ReplayBody)
    assert [e.seq for e in replay.events] == [f.seq for f in c.event_frames()]


async def test_a_reconnecting_client_misses_nothing_and_sees_nothing_twice(
    http: httpx.AsyncClient, local: Served
) -> None:
    alice = Api(http, player="alice")
    await alice.ok(
        "/matches",
        {"opponent": {"kind": "agent", "id": "hunt_target"}, "first": 0, "match_id": "again"},
    )
    url = local.base_url
    async with websockets.connect(alice.ws_url(url, "matches/again")) as socket:
        first = Feed(socket)
        ready = await first.until(lambda f: True)
        assert isinstance(ready, MatchReady)
        assert ready.from_seq == ready.last_seq + 1  # no resume: from now on
        await first.send({"type": "battleship.place_fleet.v1", "ref": "f"})
        await first.send({"type": "battleship.fire.v1", "ref": "s1", "cell": "J10"})
        await first.until(agent_shot)
    # Two turns while disconnected (each is the user's shot and the agent's answer).
    await alice.ok("/matches/again/shots", {"cell": "J9"})
    await alice.ok("/matches/again/shots", {"cell": "J8"})
    last_seq = first.event_frames()[-1].seq
    async with websockets.connect(alice.ws_url(url, "matches/again", last_seq=last_seq)) as socket:
        second = Feed(socket)
        ready = await second.until(lambda f: True)
        assert isinstance(ready, MatchReady)
        assert ready.from_seq == last_seq + 1
        await second.until(lambda f: isinstance(f, CaughtUp))
        await second.send({"type": "battleship.chat.v1", "text": "still here"})
        await second.event(ChatPosted)

    seen = first.event_frames() + second.event_frames()
    replay = msgspec.json.decode(
        (await alice.get("/matches/again/replay")).content, type=ReplayBody
    )
    assert [f.seq for f in seen] == [e.seq for e in replay.events if e.seq >= seen[0].seq]
    cells = [f.event.cell for f in seen if isinstance(f.event, ShotFired) and not f.event.by_agent]
    assert cells == ["J10", "J9", "J8"]
    assert [f.id for f in seen] == [e.id for e in replay.events if e.seq >= seen[0].seq]


async def test_with_tokens_a_socket_acts_only_as_its_caller(
    nats_server: EmbeddedNats, postgres_url: str
) -> None:
    key = rsa_key("sockets")
    auth = AuthConfig(
        issuer="https://issuer.test/", audience=("troupe-api",), public_key_pem=key.public_pem()
    )
    async with (
        battleship_actors(nats_server.url, postgres_url),
        serve_gateway(nats_server.url, postgres_url, auth=auth) as served,
        httpx.AsyncClient(base_url=served.base_url, timeout=30) as http,
    ):
        alice = Api(http, token=key.sign(claims(sub="alice")))
        bob = Api(http, token=key.sign(claims(sub="bob")))
        vs_agent = {"opponent": {"kind": "agent", "id": "random"}, "match_id": "guarded"}
        await alice.ok("/matches", vs_agent)
        await alice.ok("/matches/guarded/fleet")

        async with websockets.connect(bob.ws_url(served.base_url, "matches/guarded")) as socket:
            feed = Feed(socket)
            ready = await feed.until(lambda f: True)
            assert isinstance(ready, MatchReady)
            assert ready.player == "bob"
            await feed.until(lambda f: isinstance(f, CaughtUp))
            await feed.send({"type": "battleship.fire.v1", "ref": "steal", "cell": "A1"})
            refused = await feed.answer("steal")
            assert isinstance(refused, CommandRefused)
            assert (refused.code, refused.status) == ("not_a_player", 403)

        pretending = bob.ws_url(served.base_url, "matches/guarded", player="alice")
        async with websockets.connect(pretending) as socket:
            error = await recv(socket, MATCH_FRAMES)
            assert isinstance(error, SocketError)
            assert error.code == "wrong_principal"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008

        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(f"{served.base_url.replace('http', 'ws')}/v1/ws/lobby"):
                pass
