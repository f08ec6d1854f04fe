"""WebSocket tails and event pages on a real ``troupe up``: no gaps, no repeats on resume."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.e2e.conftest import TEST_ACTORS, TroupeUp

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def troupe_env() -> dict[str, str]:
    return {"TROUPE_EXTRA_ACTORS": TEST_ACTORS, "TROUPE_GATEWAY_LIVE_HEARTBEAT": "0.5"}


@pytest.fixture
async def http(troupe_up: TroupeUp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=troupe_up.base_url, timeout=30) as client:
        yield client


def ws_url(troupe_up: TroupeUp, subject: str, from_seq: int | None = None) -> str:
    url = troupe_up.base_url.replace("http://", "ws://") + f"/v1/events/live?subject={subject}"
    return url if from_seq is None else f"{url}&from_seq={from_seq}"


async def frame(socket: ClientConnection, within: float = 15.0) -> dict[str, Any]:
    data = await asyncio.wait_for(socket.recv(), within)
    body: dict[str, Any] = json.loads(data)
    return body


async def events_until(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` event frames (heartbeats and markers skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        body = await frame(socket)
        assert body["type"] != "gateway.live_error.v1", body
        if body["type"] == "gateway.live_event.v1":
            got.append(body)
    return got


async def deposit(http: httpx.AsyncClient, key: str, amount: int) -> None:
    response = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        json={"amount": amount},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 200, response.text


async def test_reconnecting_with_the_last_sequence_misses_nothing_and_repeats_nothing(
    http: httpx.AsyncClient, troupe_up: TroupeUp
) -> None:
    key = f"w{uuid.uuid4().hex[:10]}"
    subject = f"evt.acct.{key}.>"
    opened = await http.post(
        f"/v1/cmd/acct/{key}/open",
        json={"owner": "ada"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert opened.status_code == 200
    for amount in (1, 2, 3):
        await deposit(http, key, amount)

    seen: list[dict[str, Any]] = []
    async with websockets.connect(ws_url(troupe_up, subject, from_seq=1)) as socket:
        ready = await frame(socket)
        assert ready["type"] == "gateway.live_ready.v1"
        assert ready["from_seq"] == 1
        seen += await events_until(socket, 4)
        # Everything stored so far came; the tail is now live.
        caught_up = await frame(socket)
        assert caught_up == {"type": "gateway.live_caught_up.v1", "seq": seen[-1]["seq"]}
        await deposit(http, key, 4)
        seen += await events_until(socket, 1)
    # Events land while nobody listens.
    for amount in (5, 6):
        await deposit(http, key, amount)
    async with websockets.connect(
        ws_url(troupe_up, subject, from_seq=seen[-1]["seq"] + 1)
    ) as socket:
        assert (await frame(socket))["type"] == "gateway.live_ready.v1"
        seen += await events_until(socket, 2)
        await deposit(http, key, 7)
        seen += await events_until(socket, 1)

    sequences = [e["seq"] for e in seen]
    assert sequences == sorted(set(sequences)), "a sequence came twice or out of order"
    amounts = [e["data"]["amount"] for e in seen if e["subject"].endswith(".deposited")]
    assert amounts == [1, 2, 3, 4, 5, 6, 7]
    # The same records, in the same order, as the paged endpoint (and `troupe replay`) shows.
    page = (await http.get("/v1/events", params={"subject": subject, "limit": 1000})).json()
    assert [r["seq"] for r in page["items"]] == sequences
    assert [r["id"] for r in page["items"]] == [e["id"] for e in seen]


async def test_event_pages_follow_next_seq(http: httpx.AsyncClient) -> None:
    key = f"p{uuid.uuid4().hex[:10]}"
    await http.post(
        f"/v1/cmd/acct/{key}/open",
        json={"owner": "ada"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    for amount in range(1, 6):
        await deposit(http, key, amount)
    subject = f"evt.acct.{key}.deposited"
    collected: list[int] = []
    from_seq, pages = 1, 0
    while True:
        response = await http.get(
            "/v1/events", params={"subject": subject, "from_seq": from_seq, "limit": 2}
        )
        assert response.status_code == 200
        page = response.json()
        pages += 1
        collected += [r["data"]["amount"] for r in page["items"]]
        if not page["more"]:
            assert "link" not in response.headers
            break
        assert f"from_seq={page['next_seq']}" in response.headers["link"]
        from_seq = page["next_seq"]
    assert collected == [1, 2, 3, 4, 5]
    assert pages == 3


async def test_bad_filters_are_refused(http: httpx.AsyncClient, troupe_up: TroupeUp) -> None:
    for subject in ("cmd.acct.>", "evt.>.x", "evt", "evt.a.b.c.d.e"):
        response = await http.get("/v1/events", params={"subject": subject})
        assert response.status_code == 422, subject
        assert response.headers["content-type"] == "application/problem+json"
    async with websockets.connect(ws_url(troupe_up, "cmd.>")) as socket:
        error = await frame(socket)
        assert error["type"] == "gateway.live_error.v1"
        assert error["code"] == "invalid_subject"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_a_quiet_tail_sends_heartbeats_with_the_last_sequence(
    http: httpx.AsyncClient, troupe_up: TroupeUp
) -> None:
    key = f"h{uuid.uuid4().hex[:10]}"
    subject = f"evt.acct.{key}.>"
    await http.post(
        f"/v1/cmd/acct/{key}/open", json={"owner": "ada"}, headers={"Idempotency-Key": key}
    )
    async with websockets.connect(ws_url(troupe_up, subject, from_seq=1)) as socket:
        assert (await frame(socket))["type"] == "gateway.live_ready.v1"
        (opened,) = await events_until(socket, 1)
        heartbeat = await frame(socket)
        while heartbeat["type"] != "gateway.live_heartbeat.v1":
            heartbeat = await frame(socket)
        assert heartbeat["seq"] == opened["seq"]
    # Without from_seq the tail starts after the last stored event: nothing old comes.
    async with websockets.connect(ws_url(troupe_up, subject)) as socket:
        ready = await frame(socket)
        assert ready["from_seq"] == ready["last_seq"] + 1
        assert (await frame(socket))["type"] == "gateway.live_caught_up.v1"
        await deposit(http, key, 9)
        (live,) = await events_until(socket, 1)
        assert live["data"]["amount"] == 9
