"""The assembled app without a bus: routes, domain route discovery, and the OpenAPI document."""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from nats.aio.client import Client as NATS
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.db import create_engine
from gateway.app import RouteModuleError, Services, create_app, discover_routes
from gateway.auth import AuthConfig, Authenticator
from gateway.openapi import patch_document
from tests.support.accounts import ACCOUNTS, TALLY
from tests.support.jwks import rsa_key

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def engine() -> Iterator[AsyncEngine]:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    yield engine
    engine.sync_engine.dispose()


def services(engine: AsyncEngine, *, auth: bool = False) -> Services:
    # A client that never connects: building routes and documents needs no server.
    bus = Bus(NATS(), Settings())
    authenticator = Authenticator(
        AuthConfig(
            issuer="https://issuer.test/",
            audience=("troupe-api",),
            public_key_pem=rsa_key("k").public_pem(),
        )
        if auth
        else AuthConfig(enabled=False)
    )
    return Services(bus=bus, engine=engine, actors=[ACCOUNTS, TALLY], authenticator=authenticator)


def document(app: Litestar, *, auth: bool = False) -> dict[str, Any]:
    return patch_document(app.openapi_schema.to_schema(), app, auth=auth)


def paths(app: Litestar) -> set[str]:
    return {route.path for route in app.routes}


def test_routes_are_generated_per_command_and_domain(engine: AsyncEngine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app(services(engine), route_package=None)
    assert {
        "/v1/cmd/acct/{key:str}/open",
        "/v1/cmd/acct/{key:str}/deposit",
        "/v1/state/acct/{key:str}",
        "/v1/state/tally/{key:str}",
        "/v1/outcomes/acct/{command_id:str}",
        "/v1/events",
        "/v1/events/live",
        "/v1/me",
        "/health",
        "/status",
        "/metrics",
        "/asyncapi.json",
    } <= paths(app)
    # Tally takes no commands: no command or outcome routes for it.
    assert not any(p.startswith(("/v1/cmd/tally", "/v1/outcomes/tally")) for p in paths(app))


def test_two_actors_of_one_domain_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="share a domain"):
        Services(bus=Bus(NATS(), Settings()), engine=engine, actors=[ACCOUNTS, ACCOUNTS])


def test_the_openapi_document_takes_bodies_from_msgspec(engine: AsyncEngine) -> None:
    app = create_app(services(engine), route_package=None)
    doc = document(app)
    schemas = doc["components"]["schemas"]
    operation = doc["paths"]["/v1/cmd/acct/{key}/deposit"]["post"]
    assert operation["requestBody"]["required"] is True
    body_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    deposit = schemas[body_ref.rsplit("/", 1)[1]]
    assert deposit == {
        "title": "Deposit",
        "type": "object",
        "properties": {
            "type": {"enum": ["acct.deposit.v1"]},
            "amount": {"type": "integer", "exclusiveMinimum": 0},
        },
        "required": ["amount"],
        "additionalProperties": False,
    }
    explode = doc["paths"]["/v1/cmd/acct/{key}/explode"]["post"]["requestBody"]
    assert explode["required"] is False  # no required field: an empty body will do
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Idempotency-Key"]["required"] is True
    assert re.fullmatch(headers["Idempotency-Key"]["schema"]["pattern"], "6f1c5a0e-8a5e")
    key = next(p for p in operation["parameters"] if p["name"] == "key")
    assert key["schema"]["pattern"] == "^[A-Za-z0-9_-]{1,128}$"
    for status in ("400", "401", "403", "404", "409", "415", "422", "503"):
        content = operation["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert set(operation["responses"]["200"]["content"]) == {"application/json"}
    state = doc["paths"]["/v1/state/acct/{key}"]["get"]["responses"]["200"]
    reply = schemas[state["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert reply["properties"]["state"] == {"$ref": "#/components/schemas/Account"}
    assert "security" not in operation
    # Operational routes are not problem-documented beyond what they answer.
    assert set(doc["paths"]["/status"]["get"]["responses"]) == {"200", "503"}


def test_with_auth_every_v1_operation_needs_the_bearer_scheme(engine: AsyncEngine) -> None:
    app = create_app(services(engine, auth=True), route_package=None)
    doc = document(app, auth=True)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for operation in item.values():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearer": []}], path
            else:
                assert "security" not in operation, path


def example_module() -> str:
    text = (ROOT / "docs" / "gateway.md").read_text()
    blocks: list[str] = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture
def route_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package holding the docs' example module as ``bank.py``, and a private module."""
    name = "docs_gateway_routes"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text('"""Route modules for a test."""\n')
    (package / "bank.py").write_text(example_module())
    (package / "_helpers.py").write_text("raise RuntimeError('private modules are skipped')\n")
    (package / "plain.py").write_text('"""No routes() here: ignored."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        monkeypatch.delitem(sys.modules, module)
    return name


def test_route_modules_are_discovered_and_mounted_under_v1(
    engine: AsyncEngine, route_package: str
) -> None:
    found = discover_routes(services(engine), route_package)
    assert sorted(h.paths.pop() for h in found) == [  # type: ignore[union-attr]
        "/bank/accounts/{key:str}/balance",
        "/bank/accounts/{key:str}/deposits",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app(services(engine), route_package=route_package)
    assert "/v1/bank/accounts/{key:str}/deposits" in paths(app)
    doc = document(app)
    deposits = doc["paths"]["/v1/bank/accounts/{key}/deposits"]["post"]
    assert deposits["responses"]["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }


def test_a_failing_route_module_stops_the_gateway_with_its_name(
    engine: AsyncEngine, route_package: str, tmp_path: Path
) -> None:
    (tmp_path / route_package / "broken.py").write_text(
        "def routes(services):\n    raise KeyError('missing setting')\n"
    )
    with pytest.raises(RouteModuleError, match=rf"{route_package}\.broken"):
        discover_routes(services(engine), route_package)


def test_the_shipped_route_package_imports(engine: AsyncEngine) -> None:
    assert isinstance(discover_routes(services(engine)), list)
