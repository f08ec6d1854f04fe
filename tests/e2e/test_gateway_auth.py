"""The auth matrix against a real ``troupe up`` with JWT auth on, and per-caller scoping."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from gateway.problems import PROBLEM_JSON
from tests.e2e.conftest import TEST_ACTORS, TroupeUp
from tests.support.jwks import JwksServer, SigningKey, claims, rsa_key, serve_jwks

pytestmark = [pytest.mark.e2e]

SCOPES = {
    "acct.deposit": ["acct:write"],
    "acct.read": ["acct:read"],
    "events.read": ["events:read"],
}
ALL = "acct:write acct:read events:read"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("e2e-key")


@pytest.fixture(scope="module")
def jwks(key: SigningKey) -> Iterator[JwksServer]:
    with serve_jwks(key) as server:
        yield server


@pytest.fixture(scope="module")
def troupe_env(jwks: JwksServer) -> dict[str, str]:
    return {
        "TROUPE_EXTRA_ACTORS": TEST_ACTORS,
        "TROUPE_AUTH_ISSUER": "https://issuer.test/",
        "TROUPE_AUTH_AUDIENCE": "troupe-api",
        "TROUPE_AUTH_JWKS_URL": jwks.url,
        "TROUPE_AUTH_REQUIRED_SCOPES": json.dumps(SCOPES),
    }


@pytest.fixture
def http(troupe_up: TroupeUp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=troupe_up.base_url, timeout=30) as client:
        yield client


def bearer(key: SigningKey, **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.sign(claims(**overrides))}"}


def command(
    http: httpx.Client,
    key: SigningKey | None,
    entity: str,
    verb: str,
    body: dict[str, Any],
    idem: str,
    **overrides: Any,
) -> httpx.Response:
    headers = {"Idempotency-Key": idem}
    if key is not None:
        headers |= bearer(key, **overrides)
    return http.post(f"/v1/cmd/acct/{entity}/{verb}", json=body, headers=headers)


def entity() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def test_operational_routes_need_no_token(http: httpx.Client) -> None:
    for path in ("/health", "/status", "/metrics", "/asyncapi.json", "/schema/openapi.json"):
        assert http.get(path).status_code == 200, path
    document = http.get("/schema/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/v1/me"]["get"]["security"] == [{"bearer": []}]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_token"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "missing_token"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
    ],
)
def test_missing_and_malformed_tokens_are_401(
    http: httpx.Client, headers: dict[str, str], code: str
) -> None:
    for response in (
        http.get("/v1/me", headers=headers),
        http.post(
            f"/v1/cmd/acct/{entity()}/open",
            json={"owner": "ada"},
            headers={**headers, "Idempotency-Key": "k"},
        ),
    ):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["www-authenticate"].startswith('Bearer realm="troupe"')
        assert response.json()["code"] == code


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"aud": "someone-else"},
        {"iss": "https://elsewhere.test/"},
        {"sub": None},
    ],
)
def test_tokens_that_do_not_verify_are_401(
    http: httpx.Client, key: SigningKey, overrides: dict[str, Any]
) -> None:
    response = http.get("/v1/me", headers=bearer(key, **overrides))
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_a_token_signed_by_another_key_is_401(http: httpx.Client) -> None:
    stranger = rsa_key("e2e-key")  # same kid, different key
    response = http.get("/v1/me", headers=bearer(stranger))
    assert response.status_code == 401
    assert "signature" in response.headers["www-authenticate"]


def test_valid_tokens_without_the_scope_are_403(http: httpx.Client, key: SigningKey) -> None:
    target = entity()
    opened = command(http, key, target, "open", {"owner": "ada"}, "o1", scope="")
    assert opened.status_code == 200, opened.text  # no scope configured for acct.open
    denied = command(http, key, target, "deposit", {"amount": 1}, "d1", scope="acct:read")
    assert denied.status_code == 403
    assert denied.json()["code"] == "insufficient_scope"
    assert denied.json()["required_scopes"] == ["acct:write"]
    assert 'scope="acct:write"' in denied.headers["www-authenticate"]
    # Scope is checked before anything else about the request.
    no_key = http.post(
        f"/v1/cmd/acct/{target}/deposit", json={"amount": 1}, headers=bearer(key, scope="")
    )
    assert no_key.status_code == 403
    reading = http.get(f"/v1/state/acct/{target}", headers=bearer(key, scope="acct:write"))
    assert reading.status_code == 403
    events = http.get(
        "/v1/events", params={"subject": "evt.>"}, headers=bearer(key, scope="acct:read")
    )
    assert events.status_code == 403

    allowed = command(http, key, target, "deposit", {"amount": 1}, "d2", scope=ALL)
    assert allowed.status_code == 200
    state = http.get(f"/v1/state/acct/{target}", headers=bearer(key, scope=ALL))
    assert state.json()["state"]["balance"] == 1


def test_the_subject_becomes_a_user_created_on_first_sight(
    http: httpx.Client, key: SigningKey, troupe_up: TroupeUp
) -> None:
    subject = f"user-{uuid.uuid4().hex[:8]}"
    first = http.get("/v1/me", headers=bearer(key, sub=subject, scope=ALL))
    assert first.status_code == 200
    me = first.json()
    assert (me["subject"], me["tenant"], me["anonymous"]) == (subject, "acme", False)
    assert me["scopes"] == sorted(ALL.split())
    again = http.get("/v1/me", headers=bearer(key, sub=subject)).json()
    assert again["id"] == me["id"]
    assert again["first_seen_at"] == me["first_seen_at"]
    with sqlite3.connect(troupe_up.home / "troupe.db") as db:
        rows = db.execute(
            "SELECT id, issuer, tenant FROM gateway_users WHERE subject = ?", (subject,)
        ).fetchall()
    assert rows == [(me["id"], "https://issuer.test/", "acme")]


def test_keys_are_scoped_to_the_caller(http: httpx.Client, key: SigningKey) -> None:
    target, idem = entity(), str(uuid.uuid4())
    opened = command(http, key, target, "open", {"owner": "ada"}, "open-it", scope=ALL)
    assert opened.status_code == 200
    callers = [
        {"sub": "user-1", "tenant": "acme"},
        {"sub": "user-2", "tenant": "acme"},
        {"sub": "user-1", "tenant": "globex"},
    ]
    answers = [
        command(http, key, target, "deposit", {"amount": 5}, idem, scope=ALL, **who)
        for who in callers
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not any("idempotent-replayed" in a.headers for a in answers)
    assert len({a.json()["command_id"] for a in answers}) == 3
    final = http.get(f"/v1/state/acct/{target}", headers=bearer(key, scope=ALL)).json()
    assert final["state"]["balance"] == 15
    # A caller's own retry replays; the outcome URL is the caller's alone.
    retry = command(http, key, target, "deposit", {"amount": 5}, idem, scope=ALL, **callers[1])
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == answers[1].content
    url = answers[0].headers["content-location"]
    assert http.get(url, headers=bearer(key, scope=ALL, **callers[0])).status_code == 200
    assert http.get(url, headers=bearer(key, scope=ALL, **callers[1])).status_code == 404
    assert http.get(url, headers=bearer(key, scope=ALL, **callers[2])).status_code == 404


def test_commands_carry_the_principal_and_tenant_onto_the_bus(
    http: httpx.Client, key: SigningKey
) -> None:
    target = entity()
    who = {"sub": "user-9", "tenant": "globex", "scope": ALL}
    assert command(http, key, target, "open", {"owner": "z"}, "p1", **who).status_code == 200
    mine = http.get(
        "/v1/events", params={"subject": f"evt.acct.{target}.>"}, headers=bearer(key, **who)
    ).json()
    assert [r["headers"]["Troupe-Principal"] for r in mine["items"]] == ["user-9"]
    assert [r["headers"]["Troupe-Tenant"] for r in mine["items"]] == ["globex"]
    # Another tenant's events are not shown.
    theirs = http.get(
        "/v1/events",
        params={"subject": f"evt.acct.{target}.>"},
        headers=bearer(key, scope=ALL, tenant="acme"),
    ).json()
    assert theirs["items"] == []


async def test_websockets_need_a_token_and_the_scope(troupe_up: TroupeUp, key: SigningKey) -> None:
    base = troupe_up.base_url.replace("http://", "ws://") + "/v1/events/live?subject=evt.>"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(base):
            pass
    token = key.sign(claims(scope="acct:read"))
    async with websockets.connect(f"{base}&access_token={token}") as socket:
        error = json.loads(await socket.recv())
        assert (error["type"], error["code"]) == ("gateway.live_error.v1", "insufficient_scope")
    token = key.sign(claims(scope=ALL))
    async with websockets.connect(
        base, additional_headers={"Authorization": f"Bearer {token}"}
    ) as s:
        assert json.loads(await s.recv())["type"] == "gateway.live_ready.v1"
