"""The gateway in-process with real NATS and databases: timeouts, outages, traces, domain routes."""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from actors.kernel import history, telemetry
from actors.kernel.bus import COMMANDS, EVENTS
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.telemetry import Settings as TelemetrySettings
from gateway.config import GatewaySettings
from schemas import subjects
from schemas.headers import Header
from tests.integration.gateway.conftest import running_actors, running_gateway

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[3]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def key() -> str:
    return f"i{uuid.uuid4().hex[:10]}"


def headers(**extra: str) -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4()), **extra}


async def test_an_unanswered_command_gets_a_status_url_that_later_shows_its_outcome(
    nats_server: EmbeddedNats, database_url: str
) -> None:
    entity = key()
    quick = GatewaySettings(outcome_wait_seconds=0.3)
    async with running_gateway(nats_server.url, database_url, gateway=quick) as gateway:
        client = gateway.client
        # No actor runs yet: the command is stored, the answer is a 202.
        sent = headers()
        accepted = await client.post(
            f"/v1/cmd/acct/{entity}/open", json={"owner": "ada"}, headers=sent
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["location"]
        pending = await client.get(location)
        assert pending.status_code == 202
        assert pending.json()["status"] == "pending"
        again = await client.post(
            f"/v1/cmd/acct/{entity}/open", json={"owner": "ada"}, headers=sent
        )
        assert (again.status_code, again.content) == (202, accepted.content)
        assert again.headers["idempotent-replayed"] == "true"

        # The actor starts later and handles what waited for it; the status URL shows it.
        async with running_actors(nats_server.url, database_url):
            deadline = time.monotonic() + 30
            while (status := await client.get(location)).status_code == 202:
                assert time.monotonic() < deadline, "the outcome never arrived"
            assert status.status_code == 200
            outcome = status.json()
            assert outcome["status"] == "applied"
            assert outcome["command_id"] == accepted.json()["command_id"]
            state = await client.get(f"/v1/state/acct/{entity}")
            assert state.json()["state"]["owner"] == "ada"
            # The retry still answers what the first request answered.
            replay = await client.post(
                f"/v1/cmd/acct/{entity}/open", json={"owner": "ada"}, headers=sent
            )
            assert (replay.status_code, replay.content) == (202, accepted.content)


async def test_without_actors_reads_are_503_problems(
    nats_server: EmbeddedNats, sqlite_url: str
) -> None:
    async with running_gateway(nats_server.url, sqlite_url) as gateway:
        state = await gateway.client.get(f"/v1/state/acct/{key()}")
        assert state.status_code == 503
        assert state.headers["content-type"] == "application/problem+json"
        assert state.json()["code"] == "actor_unavailable"
        preview = await gateway.client.post(
            f"/v1/cmd/acct/{key()}/open",
            params={"mode": "preview"},
            json={"owner": "a"},
            headers=headers(),
        )
        assert preview.status_code == 503


async def test_a_bus_outage_is_a_503_and_the_retry_applies_once(
    nats_server: EmbeddedNats, sqlite_url: str
) -> None:
    entity = key()
    quick = GatewaySettings(outcome_wait_seconds=5.0)
    async with (
        running_actors(nats_server.url, sqlite_url),
        running_gateway(nats_server.url, sqlite_url, gateway=quick) as gateway,
    ):
        client = gateway.client
        opened = await client.post(
            f"/v1/cmd/acct/{entity}/open", json={"owner": "a"}, headers=headers()
        )
        assert opened.status_code == 200
        nats_server.stop()
        sent = headers()
        down = await client.post(f"/v1/cmd/acct/{entity}/deposit", json={"amount": 4}, headers=sent)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "bus_unavailable"
        status = await client.get("/status")
        assert status.status_code == 503
        nats_server.start()
        deadline = time.monotonic() + 60
        while (await client.get("/status")).status_code != 200:
            assert time.monotonic() < deadline, "the gateway never reconnected"
        retried = await client.post(
            f"/v1/cmd/acct/{entity}/deposit", json={"amount": 4}, headers=sent
        )
        assert retried.status_code == 200, retried.text
        state = await client.get(f"/v1/state/acct/{entity}")
        assert state.json()["state"]["balance"] == 4


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.configure(settings=TelemetrySettings(), tracer_provider=provider)
    yield exporter
    telemetry.reset()


async def test_the_callers_trace_continues_onto_the_bus(
    nats_server: EmbeddedNats, sqlite_url: str, spans: InMemorySpanExporter
) -> None:
    entity = key()
    async with (
        running_actors(nats_server.url, sqlite_url),
        running_gateway(nats_server.url, sqlite_url) as gateway,
    ):
        response = await gateway.client.post(
            f"/v1/cmd/acct/{entity}/open",
            json={"owner": "ada"},
            headers=headers(traceparent=TRACEPARENT, **{"X-Request-Id": "req-77"}),
        )
        assert response.status_code == 200
        js = gateway.services.bus.js
        commands = [
            r
            async for r in history.read(
                js, COMMANDS, subjects.command_subject("acct", entity, "open")
            )
        ]
        events = [r async for r in history.read(js, EVENTS, f"evt.acct.{entity}.>")]
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    assert response.headers["troupe-trace-id"] == trace_id
    (command,) = commands
    assert command.headers[Header.TRACEPARENT].split("-")[1] == trace_id
    assert command.headers[Header.CORRELATION_ID] == "req-77"
    assert command.headers[Header.PRINCIPAL] == "local"
    assert command.headers[Header.TENANT] == "default"
    assert command.headers[Header.WANT_OUTCOME] == "1"
    assert command.id == response.headers["troupe-command-id"]
    assert [e.headers[Header.TRACEPARENT].split("-")[1] for e in events] == [trace_id]
    server = [s for s in spans.get_finished_spans() if s.name == "POST /v1/cmd/acct/{key}/open"]
    assert len(server) == 1
    context = server[0].get_span_context()
    assert context is not None
    assert command.headers[Header.TRACEPARENT].split("-")[2] == format(context.span_id, "016x")


@pytest.fixture
def docs_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The docs' example route module, as package ``docs_routes_it``."""
    text = (ROOT / "docs" / "gateway.md").read_text()
    (block,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    package = tmp_path / "docs_routes_it"
    package.mkdir()
    (package / "__init__.py").write_text('"""The docs example."""\n')
    (package / "bank.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("docs_routes_it")]:
        monkeypatch.delitem(sys.modules, name)
    return "docs_routes_it"


async def test_the_documented_domain_route_module_works(
    nats_server: EmbeddedNats, sqlite_url: str, docs_routes: str
) -> None:
    entity = key()
    async with (
        running_actors(nats_server.url, sqlite_url),
        running_gateway(nats_server.url, sqlite_url, route_package=docs_routes) as gateway,
    ):
        client = gateway.client
        await client.post(f"/v1/cmd/acct/{entity}/open", json={"owner": "a"}, headers=headers())
        sent = headers()
        first = await client.post(
            f"/v1/bank/accounts/{entity}/deposits", json={"cents": 250}, headers=sent
        )
        assert first.status_code == 200, first.text
        body: dict[str, Any] = first.json()
        assert body["command"] == "acct.deposit.v1"
        again = await client.post(
            f"/v1/bank/accounts/{entity}/deposits", json={"cents": 250}, headers=sent
        )
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        changed = await client.post(
            f"/v1/bank/accounts/{entity}/deposits", json={"cents": 999}, headers=sent
        )
        assert changed.status_code == 409
        balance = await client.get(f"/v1/bank/accounts/{entity}/balance")
        assert msgspec.json.decode(balance.content) == {"account": entity, "cents": 250}
        missing = await client.post(f"/v1/bank/accounts/{entity}/deposits", json={"cents": 1})
        assert missing.status_code == 400
        bad_key = await client.post(
            "/v1/bank/accounts/a.b/deposits", json={"cents": 1}, headers=headers()
        )
        assert bad_key.status_code == 422
        assert bad_key.json()["errors"][0]["path"] == "path.key"
