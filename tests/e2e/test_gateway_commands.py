"""Commands over HTTP against a real ``troupe up``: round trips, idempotency, preview, 202s."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import nats
import pytest

from actors.kernel import history
from actors.kernel.bus import COMMANDS
from gateway.idempotency import REPLAYED_HEADER
from gateway.problems import PROBLEM_JSON
from schemas import subjects
from tests.e2e.conftest import TroupeUp

pytestmark = [pytest.mark.e2e]


@pytest.fixture
async def http(troupe_up: TroupeUp) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=troupe_up.base_url, timeout=30, limits=limits) as client:
        yield client


def new_key() -> str:
    return str(uuid.uuid4())


def entity() -> str:
    return f"a{uuid.uuid4().hex[:12]}"


async def send(
    client: httpx.AsyncClient,
    key: str,
    verb: str,
    body: Any,
    idem: str | None,
    **kwargs: Any,
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return await client.post(f"/v1/cmd/acct/{key}/{verb}", json=body, headers=headers, **kwargs)


async def state(client: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await client.get(f"/v1/state/acct/{key}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_round_trip_answers_with_the_events(http: httpx.AsyncClient) -> None:
    key = entity()
    response = await send(http, key, "open", {"owner": "ada"}, new_key())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "applied"
    assert body["version"] == 1
    assert [e["type"] for e in body["events"]] == ["acct.opened.v1"]
    assert body["events"][0]["data"]["owner"] == "ada"
    assert response.headers["troupe-command-id"] == body["command_id"]
    assert len(response.headers["troupe-trace-id"]) == 32
    assert response.headers["etag"] == '"1"'

    current = await http.get(f"/v1/state/acct/{key}")
    assert current.json()["state"] == {"owner": "ada", "balance": 0, "n": 0}
    assert current.headers["etag"] == '"1"'
    status = await http.get(response.headers["content-location"])
    assert status.status_code == 200
    assert status.json() == body


async def test_same_key_same_body_replays_the_exact_response(http: httpx.AsyncClient) -> None:
    key, idem = entity(), new_key()
    await send(http, key, "open", {"owner": "ada"}, new_key())
    first = await send(http, key, "deposit", {"amount": 10}, idem)
    # The same JSON with another key order and spacing is the same request.
    again = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        content=b'{ "amount" : 10 }',
        headers={"Idempotency-Key": idem, "Content-Type": "application/json"},
    )
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    assert again.headers[REPLAYED_HEADER] == "true"
    assert REPLAYED_HEADER not in first.headers
    assert (await state(http, key))["state"]["balance"] == 10


async def test_rejections_are_replayed_too(http: httpx.AsyncClient) -> None:
    key, idem = entity(), new_key()
    first = await send(http, key, "withdraw", {"amount": 5}, idem)
    assert first.status_code == 422
    assert first.headers["content-type"] == PROBLEM_JSON
    problem = first.json()
    assert problem["code"] == "insufficient_funds"
    assert problem["details"] == {"balance": 0}
    assert problem["command_id"] == first.headers["troupe-command-id"]
    again = await send(http, key, "withdraw", {"amount": 5}, idem)
    assert (again.status_code, again.content) == (422, first.content)

    await send(http, key, "open", {"owner": "ada"}, new_key())
    conflict = await send(http, key, "open", {"owner": "bob"}, new_key())
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "already_open"


async def test_same_key_different_body_is_a_409_naming_what_differs(
    http: httpx.AsyncClient,
) -> None:
    key, idem = entity(), new_key()
    await send(http, key, "open", {"owner": "ada"}, new_key())
    assert (await send(http, key, "deposit", {"amount": 10}, idem)).status_code == 200
    reused = await send(http, key, "deposit", {"amount": 11}, idem)
    assert reused.status_code == 409
    assert reused.headers["content-type"] == PROBLEM_JSON
    problem = reused.json()
    assert problem["code"] == "idempotency_key_reused"
    assert problem["mismatch"] == {"fields": ["body"], "body": ["/amount"]}
    elsewhere = await send(http, entity(), "deposit", {"amount": 10}, idem)
    assert elsewhere.status_code == 409
    assert elsewhere.json()["mismatch"]["fields"] == ["path"]
    assert (await state(http, key))["state"]["balance"] == 10


async def test_fifty_concurrent_identical_requests_apply_once(
    http: httpx.AsyncClient, troupe_up: TroupeUp
) -> None:
    key, idem = entity(), new_key()
    await send(http, key, "open", {"owner": "ada"}, new_key())
    responses = await asyncio.gather(
        *(send(http, key, "deposit", {"amount": 7}, idem) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert sum(REPLAYED_HEADER not in r.headers for r in responses) == 1
    current = await state(http, key)
    assert current["state"] == {"owner": "ada", "balance": 7, "n": 1}
    assert current["version"] == 2

    # One command on the bus for that key, and one deposited event.
    nc = await nats.connect(troupe_up.nats_url)
    try:
        stored = [
            record
            async for record in history.read(
                nc.jetstream(), COMMANDS, subjects.command_subject("acct", key, "deposit")
            )
        ]
    finally:
        await nc.close()
    assert len(stored) == 1
    events = (await http.get("/v1/events", params={"subject": f"evt.acct.{key}.deposited"})).json()
    assert len(events["items"]) == 1


async def test_preview_answers_with_events_and_changes_nothing(http: httpx.AsyncClient) -> None:
    key = entity()
    await send(http, key, "open", {"owner": "ada"}, new_key())
    preview = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        params={"mode": "preview"},
        json={"amount": 3},
        headers={"Idempotency-Key": "p1"},
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["status"] == "preview"
    assert [e["type"] for e in body["events"]] == ["acct.deposited.v1", "auditlog.noted.v1"]
    assert body["events"][0]["data"]["balance"] == 3
    current = await state(http, key)
    assert (current["version"], current["state"]["balance"]) == (1, 0)
    refused = await http.post(
        f"/v1/cmd/acct/{key}/withdraw",
        params={"mode": "preview"},
        json={"amount": 3},
        headers={"Idempotency-Key": "p1"},
    )
    # The same key on another preview: previews are never stored, so no 409 and no replay.
    assert refused.status_code == 422
    assert refused.json()["code"] == "insufficient_funds"
    assert (await send(http, key, "deposit", {"amount": 3}, new_key())).status_code == 200
    fresh = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        params={"mode": "preview"},
        json={"amount": 3},
        headers={"Idempotency-Key": "p1"},
    )
    assert fresh.json()["events"][0]["data"]["balance"] == 6
    keyless = await http.post(
        f"/v1/cmd/acct/{key}/deposit", params={"mode": "preview"}, json={"amount": 3}
    )
    assert keyless.status_code == 400


async def test_respond_async_gives_a_status_url_that_later_shows_the_outcome(
    http: httpx.AsyncClient,
) -> None:
    key, idem = entity(), new_key()
    accepted = await send(
        http, key, "open", {"owner": "ada"}, idem, headers={"Prefer": "respond-async"}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["preference-applied"] == "respond-async"
    body = accepted.json()
    assert body["status"] == "pending"
    location = accepted.headers["location"]
    assert location == body["status_url"]
    deadline = time.monotonic() + 30
    while True:
        status = await http.get(location)
        if status.status_code == 200:
            break
        assert status.status_code == 202, status.text
        assert time.monotonic() < deadline, "the outcome never arrived"
        await asyncio.sleep(0.05)
    outcome = status.json()
    assert (outcome["status"], outcome["command_id"]) == ("applied", body["command_id"])
    # A retry answers exactly what the first request answered.
    again = await send(http, key, "open", {"owner": "ada"}, idem)
    assert (again.status_code, again.content) == (202, accepted.content)


async def test_validation_names_the_failing_field(http: httpx.AsyncClient) -> None:
    key = entity()
    wrong_type = await send(http, key, "deposit", {"amount": "5"}, new_key())
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"] == [
        {"path": "$.amount", "message": "Expected `int`, got `str`"}
    ]
    unknown = await send(http, key, "deposit", {"amount": 5, "memo": "x"}, new_key())
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["path"] == "$.memo"
    missing = await send(http, key, "deposit", {}, new_key())
    assert missing.json()["errors"][0]["path"] == "$.amount"
    negative = await send(http, key, "deposit", {"amount": 0}, new_key())
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["path"] == "$.amount"
    malformed = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        content=b'{"amount": ',
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "malformed_json"
    not_json = await http.post(
        f"/v1/cmd/acct/{key}/deposit",
        content=b"amount=5",
        headers={"Idempotency-Key": new_key(), "Content-Type": "text/plain"},
    )
    assert not_json.status_code == 415
    bad_key = await send(http, "a.b", "deposit", {"amount": 5}, new_key())
    assert bad_key.status_code in (404, 422)
    assert bad_key.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([], "idempotency_key_missing"),
        ([("Idempotency-Key", "")], "idempotency_key_invalid"),
        ([("Idempotency-Key", "k" * 256)], "idempotency_key_invalid"),
        # U+0085 is a control character HTTP still carries (obs-text); NUL or DEL never reach
        # the gateway: the HTTP server refuses such a request line itself.
        ([("Idempotency-Key", "a\x85b")], "idempotency_key_invalid"),
        ([("Idempotency-Key", "one"), ("Idempotency-Key", "two")], "idempotency_key_invalid"),
    ],
)
async def test_missing_or_malformed_keys_are_400(
    http: httpx.AsyncClient, headers: list[tuple[str, str]], code: str
) -> None:
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers]
    response = await http.post(
        f"/v1/cmd/acct/{entity()}/open",
        content=msgspec.json.encode({"owner": "ada"}),
        headers=[(b"Content-Type", b"application/json"), *raw],
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code


async def test_if_match_applies_only_at_that_version(http: httpx.AsyncClient) -> None:
    key = entity()
    await send(http, key, "open", {"owner": "ada"}, new_key())
    stale = await send(http, key, "deposit", {"amount": 1}, new_key(), headers={"If-Match": '"7"'})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_mismatch"
    fresh = await send(http, key, "deposit", {"amount": 1}, new_key(), headers={"If-Match": '"1"'})
    assert fresh.status_code == 200


async def test_a_handler_failure_is_dead_lettered_and_reported(http: httpx.AsyncClient) -> None:
    key, idem = entity(), new_key()
    response = await send(http, key, "explode", {}, idem)
    assert response.status_code == 500
    problem = response.json()
    assert problem["code"] == "dead_lettered"
    assert problem["details"] == {"kind": "handler"}
    # Not remembered as final, yet a retry finds the same outcome and sends nothing new.
    again = await send(http, key, "explode", {}, idem)
    assert (again.status_code, again.json()["command_id"]) == (500, problem["command_id"])
