"""Battleship's REST routes on real NATS and PostgreSQL: rooms, matches, agents, ladders, auth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from actors.battleship.players import BASELINES
from actors.kernel.embedded import EmbeddedNats
from gateway.auth import AuthConfig
from gateway.battleship.models import (
    AgentPage,
    LadderPage,
    MatchPage,
    MatchView,
    ReplayBody,
    RoomDetail,
    RoomPage,
    StandingsPage,
)
from gateway.models import CommandResult
from schemas.battleship import FleetPlaced, MatchCreated, ShipPlacement
from tests.e2e.battleship.client import Api
from tests.e2e.battleship.served import Served, battleship_actors, serve_gateway
from tests.support.jwks import SigningKey, claims, rsa_key

T = TypeVar("T")

FLEET = [
    {"ship": "carrier", "row": 0, "col": 0},
    {"ship": "battleship", "row": 2, "col": 0},
    {"ship": "cruiser", "row": 4, "col": 0},
    {"ship": "submarine", "row": 6, "col": 0},
    {"ship": "destroyer", "row": 8, "col": 0},
]
"""A fleet along the left edge: every ship starts in column 0."""
SCOPES: dict[str, tuple[str, ...]] = {
    "battleship.read": ("battleship:read",),
    "match.fire": ("match:play",),
}
PLAYS = "battleship:read match:play"
ISSUER, AUDIENCE = "https://issuer.test/", "troupe-api"


def decode(response: httpx.Response, type: type[T], status: int = 200) -> T:
    """The body as ``type``, strictly: a field off the documented schema fails the test."""
    assert response.status_code == status, response.text
    return msgspec.json.decode(response.content, type=type)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def eventually(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    async with asyncio.timeout(20):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(0.05)


@pytest.fixture
async def local(nats_server: EmbeddedNats, postgres_url: str) -> AsyncIterator[Served]:
    """The actors and a gateway with authentication off (local play)."""
    async with (
        battleship_actors(nats_server.url, postgres_url),
        serve_gateway(nats_server.url, postgres_url) as served,
    ):
        yield served


@pytest.fixture
async def http(local: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=local.base_url, timeout=30) as client:
        yield client


async def test_two_local_players_play_a_room_match_to_the_end(http: httpx.AsyncClient) -> None:
    alice, bob = Api(http, player="alice"), Api(http, player="bob")
    opened = await alice.post("/rooms", {"name": "Friday night"})
    assert opened.status_code == 200, opened.text
    room_id = opened.headers["troupe-room-id"]
    assert opened.headers["location"] == f"/v1/battleship/rooms/{room_id}"
    await bob.ok(f"/rooms/{room_id}/join")
    room = decode(await alice.get(f"/rooms/{room_id}"), RoomDetail)
    assert (room.status, room.members, room.host) == ("full", ("alice", "bob"), "alice")
    listed = decode(await alice.get("/rooms", member="bob"), RoomPage)
    assert [r.room_id for r in listed.items] == [room_id]

    started = await alice.post(f"/rooms/{room_id}/matches", {"first": 0})
    assert started.status_code == 200, started.text
    match_id = started.headers["troupe-match-id"]

    async def room_now() -> RoomDetail:
        return decode(await alice.get(f"/rooms/{room_id}"), RoomDetail)

    playing = await eventually(room_now, lambda r: r.status == "in_match")
    assert playing.match_id == match_id

    await alice.ok(f"/matches/{match_id}/fleet", {"ships": FLEET})
    placed = await bob.ok(f"/matches/{match_id}/fleet")
    assert [e["type"] for e in placed["events"]] == ["match.fleet_placed.v1", "match.started.v1"]
    seen_by_alice = decode(await alice.get(f"/matches/{match_id}"), MatchView)
    assert (seen_by_alice.you, seen_by_alice.your_turn, seen_by_alice.seed) == (0, True, None)
    assert seen_by_alice.seats[0].fleet is not None
    assert seen_by_alice.seats[1].fleet is None  # bob's ships stay hidden from alice
    assert seen_by_alice.seats[0].grid[0] == "SSSSS....."
    assert all(set(row) == {"."} for row in seen_by_alice.seats[1].grid)

    problem(await bob.post(f"/matches/{match_id}/shots", {"cell": "A1"}), 409, "not_your_turn")
    shot = await alice.ok(f"/matches/{match_id}/shots", {"cell": "B7"})
    assert shot["events"][0]["data"]["cell"] == "B7"
    await bob.ok(f"/matches/{match_id}/shots", {"row": 0, "col": 0})
    await bob.ok(f"/matches/{match_id}/chat", {"text": "got your carrier in my sights"})
    seen_by_bob = decode(await bob.get(f"/matches/{match_id}"), MatchView)
    assert seen_by_bob.seats[0].grid[0][0] == "X"  # alice's carrier was hit at A1
    assert [(s.number, s.seat, s.cell) for s in seen_by_bob.shots] == [(1, 0, "B7"), (2, 1, "A1")]
    assert seen_by_bob.shots[1].result == "hit"
    assert seen_by_bob.chat_messages == 1

    before = decode(await alice.get(f"/matches/{match_id}/replay"), ReplayBody)
    assert before.redacted
    assert not before.finished
    assert [e.event.seed for e in before.events if isinstance(e.event, MatchCreated)] == [0]
    fleets = {
        e.event.seat: e.event.ships for e in before.events if isinstance(e.event, FleetPlaced)
    }
    assert fleets[0]
    assert fleets[1] == ()

    resigned = await bob.ok(f"/matches/{match_id}/resign")
    assert resigned["events"][-1]["data"]["reason"] == "resigned"
    problem(await alice.post(f"/matches/{match_id}/shots", {"cell": "C1"}), 409, "game_over")
    after = decode(await alice.get(f"/matches/{match_id}"), MatchView)
    assert (after.status, after.winner, after.reason) == ("finished", 0, "resigned")
    assert after.seed is not None
    assert after.seats[1].fleet is not None
    replayed = decode(await alice.get(f"/matches/{match_id}/replay"), ReplayBody)
    assert replayed.finished
    assert not replayed.redacted
    assert [e.seq for e in replayed.events] == sorted({e.seq for e in replayed.events})
    assert all(e.event.ships for e in replayed.events if isinstance(e.event, FleetPlaced)), (
        "a finished replay hides nothing"
    )

    back = await eventually(room_now, lambda r: r.status == "full")
    assert (back.match_id, back.matches_played) == (None, 1)
    history = decode(await alice.get("/matches", player="bob"), MatchPage)
    assert [(m.match_id, m.status, m.winner) for m in history.items] == [(match_id, "finished", 0)]

    async def standings() -> StandingsPage:
        return decode(await alice.get("/ladders/standard"), StandingsPage)

    table = await eventually(standings, lambda s: len(s.items) == 2)
    assert [(s.rank, s.player.id, s.wins, s.losses) for s in table.items] == [
        (1, "alice", 1, 0),
        (2, "bob", 0, 1),
    ]
    first_page = decode(await alice.get("/ladders/standard", limit=1), StandingsPage)
    assert (len(first_page.items), first_page.next_offset) == (1, 1)
    second_page = decode(await alice.get("/ladders/standard", limit=1, offset=1), StandingsPage)
    assert second_page.items[0].player.id == "bob"
    ladders = decode(await alice.get("/ladders"), LadderPage)
    assert [(ladder.ladder_id, ladder.players) for ladder in ladders.items] == [("standard", 2)]
    mine = (await alice.get("/ladders/standard/players/user/bob")).json()
    assert (mine["rank"], mine["rating"] < 1500) == (2, True)
    problem(await alice.get("/ladders/standard/players/user/carol"), 404, "not_on_ladder")


async def test_starting_a_match_against_an_agent_never_shows_its_fleet_or_seed(
    http: httpx.AsyncClient,
) -> None:
    alice, carol = Api(http, player="alice"), Api(http, player="carol")
    key = str(uuid.uuid4())
    body = {"opponent": {"kind": "agent", "id": "hunt_target"}}
    first = await alice.post("/matches", body, key=key)
    again = await alice.post("/matches", body, key=key)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers["idempotent-replayed"] == "true"
    match_id = first.headers["troupe-match-id"]
    assert again.headers["troupe-match-id"] == match_id  # the key names the match
    for response in (first, again):
        outcome = decode(response, CommandResult)
        assert [e.type for e in outcome.events] == ["match.created.v1", "match.fleet_placed.v1"]
        created = msgspec.convert(outcome.events[0].data, MatchCreated)
        agent_fleet = msgspec.convert(outcome.events[1].data, FleetPlaced)
        assert (created.seed, agent_fleet.seat, agent_fleet.ships) == (0, 1, ())

    placed = await alice.ok(f"/matches/{match_id}/fleet", {"ships": FLEET})
    own = msgspec.convert(placed["events"][0]["data"], FleetPlaced)
    assert own.ships == tuple(msgspec.convert(FLEET, list[ShipPlacement]))
    spectator = decode(await carol.get(f"/matches/{match_id}"), MatchView)
    assert spectator.you is None
    assert not spectator.your_turn
    assert [s.fleet for s in spectator.seats] == [None, None]
    replay = decode(await carol.get(f"/matches/{match_id}/replay"), ReplayBody)
    assert all(e.event.ships == () for e in replay.events if isinstance(e.event, FleetPlaced))


async def test_bad_requests_are_refused_with_problems(
    http: httpx.AsyncClient, local: Served
) -> None:
    alice, bob = Api(http, player="alice"), Api(http, player="bob")
    vs_random = {"opponent": {"kind": "agent", "id": "random"}, "first": 0}
    match_id = (await alice.post("/matches", vs_random)).headers["troupe-match-id"]
    await alice.ok(f"/matches/{match_id}/fleet")
    shots = f"/matches/{match_id}/shots"
    both = problem(await alice.post(shots, {"cell": "A1", "row": 0}), 422, "validation")
    assert both["errors"][0]["path"] == "$.cell"
    half = problem(await alice.post(shots, {"row": 0}), 422, "validation")
    assert half["errors"][0]["path"] == "$.col"
    problem(await alice.post(shots, {"cell": "K1"}), 422, "cell_out_of_bounds")
    problem(await alice.post(shots, {"cell": "Z99"}), 422, "validation")
    problem(await alice.post(shots, {"cell": "A1", "bogus": 1}), 422, "validation")
    problem(await bob.post(shots, {"cell": "A1"}), 403, "not_a_player")
    both_forms = {**vs_random, "players": [{"kind": "user", "id": "alice"}, vs_random["opponent"]]}
    assert problem(await alice.post("/matches", both_forms), 422, "validation")["errors"] == [
        {"path": "$.opponent", "message": "give either opponent (you play seat 0) or players"}
    ]
    problem(
        await alice.post("/matches", {"opponent": {"kind": "agent", "id": "nobody"}}),
        404,
        "unknown_agent",
    )
    missing_key = await http.post(
        f"/v1/battleship/matches/{match_id}/resign", json={"player": "alice"}
    )
    problem(missing_key, 400, "idempotency_key_missing")
    problem(await alice.get("/matches/nope"), 404, "match_not_found")
    problem(await alice.get("/matches/nope/replay"), 404, "match_not_found")
    problem(await alice.get("/rooms/nope"), 404, "room_not_found")

    room_id = (await alice.post("/rooms", {"name": "lonely"})).headers["troupe-room-id"]
    problem(await alice.post(f"/rooms/{room_id}/matches"), 409, "room_not_ready")
    problem(await bob.post(f"/rooms/{room_id}/matches"), 403, "not_a_member")
    problem(await bob.post(f"/rooms/{room_id}/close"), 403, "not_host")

    agents = decode(await alice.get("/agents"), AgentPage)
    baselines = [a.id for a in agents.items if a.source == "baseline"]
    assert baselines == list(BASELINES)
    assert all(a.description for a in agents.items)
    assert (await alice.get("/agents/probability")).json()["source"] == "baseline"
    problem(await alice.get("/agents/nobody"), 404, "agent_not_found")

    document = (await http.get("/schema/openapi.json")).json()
    paths = [p for p in document["paths"] if p.startswith("/v1/battleship/")]
    assert "/v1/battleship/matches/{match_id}/shots" in paths
    shots_op = document["paths"]["/v1/battleship/matches/{match_id}/shots"]["post"]
    assert shots_op["tags"] == ["battleship"]
    assert {"200", "202", "403", "409", "422"} <= set(shots_op["responses"])


# ---------------------------------------------------------------- with authentication


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return rsa_key("battleship")


@pytest.fixture
async def signed(
    nats_server: EmbeddedNats, postgres_url: str, signing_key: SigningKey
) -> AsyncIterator[Served]:
    """The actors and a gateway that requires tokens, with scopes on reads and on firing."""
    auth = AuthConfig(
        issuer=ISSUER,
        audience=(AUDIENCE,),
        public_key_pem=signing_key.public_pem(),
        required_scopes=SCOPES,
    )
    async with (
        battleship_actors(nats_server.url, postgres_url),
        serve_gateway(nats_server.url, postgres_url, auth=auth) as served,
    ):
        yield served


def token(key: SigningKey, subject: str, scope: str = PLAYS) -> str:
    return key.sign(claims(sub=subject, scope=scope))


async def test_with_tokens_a_player_may_only_move_in_their_own_match(
    signed: Served, signing_key: SigningKey
) -> None:
    async with httpx.AsyncClient(base_url=signed.base_url, timeout=30) as http:
        alice = Api(http, token=token(signing_key, "alice"))
        bob = Api(http, token=token(signing_key, "bob"))
        vs_agent = {"opponent": {"kind": "agent", "id": "random"}, "rated": False, "first": 0}
        created = await alice.post("/matches", vs_agent)
        assert created.status_code == 200, created.text
        match_id = created.headers["troupe-match-id"]
        await alice.ok(f"/matches/{match_id}/fleet")
        shots = f"/matches/{match_id}/shots"

        problem(await bob.post(shots, {"cell": "A1"}), 403, "not_a_player")
        problem(await alice.post(shots, {"cell": "A1", "player": "bob"}), 403, "wrong_principal")
        problem(await bob.post(f"/matches/{match_id}/resign"), 403, "not_a_player")
        fired = await alice.ok(shots, {"cell": "A1"})
        assert [e["data"]["player"] for e in fired["events"]] == ["alice", "random"]

        seating_bob = {"players": [{"kind": "user", "id": "alice"}, {"kind": "user", "id": "bob"}]}
        problem(await alice.post("/matches", seating_bob), 403, "seat_not_yours")
        rated_seed = {"opponent": {"kind": "agent", "id": "random"}, "seed": 7}
        refused = problem(await alice.post("/matches", rated_seed), 422, "validation")
        assert refused["errors"][0]["path"] == "$.seed"

        watching = decode(await bob.get(f"/matches/{match_id}"), MatchView)
        assert watching.you is None
        assert [s.fleet for s in watching.seats] == [None, None]
        problem(await bob.get(f"/matches/{match_id}", player="alice"), 403, "wrong_principal")
        mine = decode(await alice.get(f"/matches/{match_id}"), MatchView)
        assert mine.you == 0
        assert mine.seats[0].fleet is not None

        reader = Api(http, token=token(signing_key, "dave", scope="battleship:read"))
        problem(await reader.post(shots, {"cell": "B1"}), 403, "insufficient_scope")
        nobody = Api(http, token=token(signing_key, "erin", scope="match:play"))
        problem(await nobody.get("/rooms"), 403, "insufficient_scope")
        anonymous = await http.get("/v1/battleship/rooms")
        problem(anonymous, 401, "missing_token")

        room = await alice.post("/rooms", {"name": "tokens only"})
        room_id = room.headers["troupe-room-id"]
        assert decode(await bob.get(f"/rooms/{room_id}"), RoomDetail).host == "alice"
        problem(
            await bob.post(f"/rooms/{room_id}/join", {"player": "carol"}), 403, "wrong_principal"
        )
        await bob.ok(f"/rooms/{room_id}/join")
        problem(await bob.post(f"/rooms/{room_id}/close"), 403, "not_host")

        # The generic reads show fleets and the seed unredacted: with no scopes configured
        # for them they stay closed to every token, players' included.
        everything = {"Authorization": f"Bearer {token(signing_key, 'bob', PLAYS)}"}
        for path, params in (
            (f"/v1/state/match/{match_id}", None),
            ("/v1/events", {"subject": f"evt.match.{match_id}.>"}),
        ):
            leak = await http.get(path, params=params, headers=everything)
            assert "match" in problem(leak, 403, "action_not_configured")["detail"]
