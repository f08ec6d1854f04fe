"""The auth middleware and scope guard mounted on a small Litestar app."""

from __future__ import annotations

import os
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, Request, get, post, websocket
from litestar.connection import WebSocket
from litestar.params import FromPath
from litestar.testing import TestClient

from actors.kernel.actor import Actor
from actors.kernel.store import JsonStateStore
from gateway.app import closed_reads
from gateway.auth import ANONYMOUS, AuthConfig, Authenticator, Principal, auth_middleware
from gateway.problems import PROBLEM_JSON, exception_handlers
from tests.support.jwks import JwksServer, SigningKey, claims, rsa_key, serve_jwks


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("app-key")


@pytest.fixture
def jwks(key: SigningKey) -> Iterator[JwksServer]:
    with serve_jwks(key) as server:
        yield server


def build_app(auth: Authenticator) -> Litestar:
    @get("/v1/me")
    async def me(request: Request[Principal, Any, Any]) -> dict[str, Any]:
        user = request.user
        return {"subject": user.subject, "tenant": user.tenant, "anonymous": user.anonymous}

    @post("/v1/encounters/{key:str}/next_turn", guards=[auth.guard("encounter.next_turn")])
    async def next_turn(key: FromPath[str]) -> dict[str, str]:
        return {"key": key}

    @get("/healthz", exclude_from_auth=True)
    async def healthz() -> str:
        return "ok"

    @websocket("/v1/stream")
    async def stream(socket: WebSocket[Principal, Any, Any]) -> None:
        await socket.accept()
        await socket.send_json({"subject": socket.user.subject})
        await socket.close()

    return Litestar(
        [me, next_turn, healthz, stream],
        middleware=[auth_middleware(auth)],
        exception_handlers=exception_handlers(),
    )


@pytest.fixture
def client(jwks: JwksServer) -> Iterator[TestClient[Litestar]]:
    config = AuthConfig(
        issuer="https://issuer.test/",
        audience=("troupe-api",),
        jwks_url=jwks.url,
        required_scopes={"encounter.next_turn": ("encounter:write",)},
    )
    with TestClient(build_app(Authenticator(config))) as test_client:
        yield test_client


def test_valid_token_reaches_the_handler(client: TestClient[Litestar], key: SigningKey) -> None:
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {key.sign(claims())}"})
    assert response.status_code == 200
    assert response.json() == {"subject": "user-1", "tenant": "acme", "anonymous": False}


def test_missing_token_is_a_401_problem(client: TestClient[Litestar]) -> None:
    response = client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == 'Bearer realm="troupe"'
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "missing_token"
    assert body["instance"] == "/v1/me"


def test_invalid_token_is_a_401_with_invalid_token(
    client: TestClient[Litestar], key: SigningKey
) -> None:
    token = key.sign(claims(iss="https://elsewhere/"))
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert "unexpected issuer" in challenge
    assert response.json()["code"] == "invalid_token"


def test_two_authorization_headers_are_refused(
    client: TestClient[Litestar], key: SigningKey
) -> None:
    token = key.sign(claims())
    response = client.get(
        "/v1/me",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 401


def test_scope_guard(client: TestClient[Litestar], key: SigningKey) -> None:
    reader = key.sign(claims(scope="encounter:read"))
    writer = key.sign(claims(scope="encounter:write"))
    denied = client.post(
        "/v1/encounters/e1/next_turn", headers={"Authorization": f"Bearer {reader}"}
    )
    assert denied.status_code == 403
    assert denied.headers["content-type"] == PROBLEM_JSON
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert denied.json()["required_scopes"] == ["encounter:write"]
    allowed = client.post(
        "/v1/encounters/e1/next_turn", headers={"Authorization": f"Bearer {writer}"}
    )
    assert allowed.status_code == 201
    assert allowed.json() == {"key": "e1"}


def test_excluded_route_needs_no_token(client: TestClient[Litestar]) -> None:
    assert client.get("/healthz").text == "ok"


def test_websocket_token_in_query(client: TestClient[Litestar], key: SigningKey) -> None:
    with client.websocket_connect(f"/v1/stream?access_token={key.sign(claims())}") as socket:
        assert socket.receive_json() == {"subject": "user-1"}


def test_jwks_down_is_a_503_problem(key: SigningKey) -> None:
    with serve_jwks(key) as server:
        server.status = 500
        config = AuthConfig(
            issuer="https://issuer.test/", audience=("troupe-api",), jwks_url=server.url
        )
        with TestClient(build_app(Authenticator(config))) as client:
            response = client.get(
                "/v1/me", headers={"Authorization": f"Bearer {key.sign(claims())}"}
            )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["code"] == "auth_keys_unavailable"


def test_disabled_auth_runs_as_the_local_principal() -> None:
    with TestClient(build_app(Authenticator(AuthConfig(enabled=False)))) as client:
        assert client.get("/v1/me").json() == {
            "subject": "local",
            "tenant": None,
            "anonymous": True,
        }
        assert client.post("/v1/encounters/e1/next_turn").status_code == 201


def test_the_mounting_example_in_the_docs_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("TROUPE_AUTH_")]:
        monkeypatch.delenv(name)
    text = (Path(__file__).resolve().parents[3] / "docs" / "auth.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1
    # Litestar resolves handler annotations through the handler's module.
    module = types.ModuleType("docs_auth_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(blocks[0], "docs/auth.md", "exec"), module.__dict__)
    with TestClient(module.app) as client:
        assert client.get("/v1/me").json() == {"subject": "local"}
        assert client.post("/v1/encounters/e7/next_turn").json() == {"key": "e7"}
        assert client.get("/healthz").text == "ok"


def test_a_secret_domain_keeps_its_raw_reads_closed_until_configured(
    jwks: JwksServer, key: SigningKey
) -> None:
    secret = Actor(
        name="vault",
        domain="vault",
        state_type=dict,
        initial=lambda key: {},
        decide=lambda state, message, ctx: [],
        evolve=lambda state, event: state,
        store=JsonStateStore(dict),
        secret_state=True,
    )
    closed = closed_reads([secret])
    assert set(closed) == {"vault.read", "events.read"}
    assert closed_reads([]) == {}

    def app_with(required: dict[str, tuple[str, ...]]) -> Litestar:
        config = AuthConfig(
            issuer="https://issuer.test/",
            audience=("troupe-api",),
            jwks_url=jwks.url,
            required_scopes=required,
        )
        auth = Authenticator(config)
        auth.close(closed)

        @get("/v1/state/vault/{key:str}", guards=[auth.guard("vault.read")])
        async def read(key: FromPath[str]) -> dict[str, str]:
            return {"key": key}

        return Litestar(
            [read], middleware=[auth_middleware(auth)], exception_handlers=exception_handlers()
        )

    everything = {"Authorization": f"Bearer {key.sign(claims(scope='vault:read ops'))}"}
    with TestClient(app_with({})) as client:
        denied = client.get("/v1/state/vault/v1", headers=everything)
        assert denied.status_code == 403
        assert denied.json()["code"] == "action_not_configured"
        assert "vault.read" in denied.json()["detail"]
    with TestClient(app_with({"vault.read": ("ops",)})) as client:
        assert client.get("/v1/state/vault/v1", headers=everything).json() == {"key": "v1"}
        player = {"Authorization": f"Bearer {key.sign(claims(scope='vault:read'))}"}
        assert client.get("/v1/state/vault/v1", headers=player).status_code == 403
    # Without tokens (loopback, auth off) nothing is closed: the local operator sees all.
    open_auth = Authenticator(AuthConfig(enabled=False))
    open_auth.close(closed)
    open_auth.authorize(ANONYMOUS, "vault.read")
