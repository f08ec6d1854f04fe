"""The dispatch routes in-process, against the dispatch actors on real NATS and a real database."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from actors.dispatch.bundles import Bundle, load_bundle, seal, shipped_files
from actors.dispatch.bundles.sources import upload
from actors.dispatch.client import DispatchClient
from actors.kernel.bus import Bus
from actors.kernel.embedded import EmbeddedNats
from actors.kernel.host import engines
from actors.policy.actor import ACTOR as POLICY
from actors.tickets.actor import ACTOR as TICKETS
from actors.tickets.tables import decisions
from actors.workflow.actor import ACTOR as WORKFLOW
from gateway import idempotency
from gateway.app import Services, create_app
from gateway.auth import AuthConfig, Authenticator
from gateway.problems import PROBLEM_JSON
from tests.integration.dispatch.conftest import Stack, eventually, start
from tests.support.jwks import SigningKey, claims, rsa_key
from tests.unit.dispatch.builders import create_ticket, evidence, utc

pytestmark = pytest.mark.asyncio

TENANT = "acme"
DISPATCHER = "user:alice"
APPROVER = "user:bob"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("dispatch-routes")


@dataclass
class Web:
    """The gateway app with the dispatch routes, and a client signing a token per call."""

    client: httpx.AsyncClient
    services: Services
    stack: Stack
    key: SigningKey

    def _headers(self, who: str, tenant: str, extra: dict[str, str] | None) -> dict[str, str]:
        token = self.key.sign(claims(sub=who, tenant=tenant, scope="dispatch"))
        return {"Authorization": f"Bearer {token}", **(extra or {})}

    async def post(
        self,
        path: str,
        body: Any,
        *,
        who: str = DISPATCHER,
        tenant: str = TENANT,
        idem: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = self._headers(who, tenant, headers)
        sent.setdefault("Idempotency-Key", idem or str(uuid.uuid4()))
        return await self.client.post(f"/v1/dispatch{path}", json=body, headers=sent, params=params)

    async def get(
        self,
        path: str,
        *,
        who: str = DISPATCHER,
        tenant: str = TENANT,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.client.get(
            f"/v1{path}", headers=self._headers(who, tenant, None), params=params
        )


@contextlib.asynccontextmanager
async def serving(stack: Stack, key: SigningKey) -> AsyncIterator[Web]:
    """The gateway as ``troupe gateway`` runs it (its own connection), JWT auth on."""
    settings = stack.settings
    assert settings.nats_url is not None
    bus = await Bus.connect(settings.nats_url, settings, name="dispatch-routes")
    write, read = engines(settings)
    authenticator = Authenticator(
        AuthConfig(
            issuer="https://issuer.test/",
            audience=("troupe-api",),
            public_key_pem=key.public_pem(),
        )
    )
    services = Services(
        bus=bus,
        engine=write,
        read_engine=read,
        settings=settings,
        actors=(TICKETS, POLICY, WORKFLOW),
        authenticator=authenticator,
    )
    try:
        app = create_app(services)
        await services.start()
        try:
            transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway.test", timeout=60
            ) as client:
                yield Web(client=client, services=services, stack=stack, key=key)
        finally:
            await services.stop()
    finally:
        await bus.close()
        await write.dispose()
        await read.dispose()


@pytest.fixture
async def sqlite_stack(nats_server: EmbeddedNats, sqlite_url: str) -> AsyncIterator[Stack]:
    """The dispatch actors on SQLite, nothing activated."""
    host, nc, settings = await start(nats_server.url, sqlite_url)
    try:
        yield Stack(host=host, nc=nc, client=DispatchClient(nc), settings=settings)
    finally:
        await nc.close()
        await host.stop()


@pytest.fixture
async def web(sqlite_stack: Stack, key: SigningKey, starter: Bundle) -> AsyncIterator[Web]:
    """The routes over the dispatch actors on SQLite, the starter bundle active for the tenant."""
    await sqlite_stack.activate(starter)
    async with serving(sqlite_stack, key) as served:
        yield served


def body_of(command: msgspec.Struct) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(command))
    data.pop("type", None)
    return data


def nte(cents: int) -> dict[str, Any]:
    return {"nte": {"cents": cents, "currency": "USD"}, "reason": "extra parts"}


def ticket_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def test_every_ticket_command_has_a_route_and_the_reads_follow_the_ticket(
    any_stack: Stack, key: SigningKey, starter: Bundle
) -> None:
    await any_stack.activate(starter)
    ticket = ticket_id()
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    async with serving(any_stack, key) as web:

        async def ok(path: str, body: Any, status: int = 200, **kwargs: Any) -> httpx.Response:
            response = await web.post(f"/tickets/{ticket}{path}", body, **kwargs)
            assert response.status_code == status, (path, response.text)
            return response

        # Emergency tickets are exempt from quiet hours, so the wall clock does not matter.
        await ok("", body_of(create_ticket(priority="emergency")))
        window = {"start": tomorrow.isoformat(), "end": (tomorrow + timedelta(hours=2)).isoformat()}
        await ok("/propose-visit", {"visit_id": "v1", "technician_id": "tech-7", "window": window})
        await ok("/confirm-visit", {"visit_id": "v1"})
        email = {
            "envelope_id": "msg-1",
            "channel": "email",
            "direction": "outbound",
            "to": "pat@example.com",
            "sender": "dispatch@example.com",
            "body": "Your technician arrives tomorrow.",
        }
        await ok("/send-comms", {"envelope": email})
        held = await ok("/change-nte", nte(200_000), status=202)
        approval_id = held.json()["events"][1]["data"]["approval_id"]
        early = await ok("/expire-approval", {"approval_id": approval_id}, status=409)
        assert early.json()["code"] == "approval.not_due"
        await ok(
            "/record-approval-decision",
            {"approval_id": approval_id, "outcome": "reject", "note": "too much"},
            who=APPROVER,
        )
        override = await ok(
            "/manual-override",
            {
                "command": {"type": "tickets.change_nte.v1", **nte(300_000)},
                "justification": "customer signed the quote on site",
            },
        )
        assert [e["type"] for e in override.json()["events"]] == [
            "tickets.decision_recorded.v1",
            "tickets.override_applied.v1",
            "tickets.nte_changed.v1",
        ]
        kinds = ("photo_before", "photo_after", "moisture_reading", "signature")
        for n, kind in enumerate(kinds):
            record = evidence(f"e{n}", kind, ticket=ticket)
            await ok("/attach-evidence", {"evidence": msgspec.to_builtins(record)})
        await ok("/close-out", {"evidence_ids": ["e0", "e1", "e2", "e3"], "resolution": "fixed"})
        late = await ok("/change-nte", nte(310_000), status=409)
        assert late.json()["code"] == "ticket.closed"

        view = await web.get(f"/dispatch/tickets/{ticket}")
        assert view.status_code == 200
        state = view.json()["ticket"]
        assert (state["status"], state["nte"]["cents"]) == ("closed", 300_000)
        assert [d["intent"] for d in state["decisions"]] == [
            "create_ticket",
            "propose_visit",
            "confirm_visit",
            "send_comms",
            "change_nte",
            "expire_approval",
            "record_approval_decision",
            "manual_override",
            *["attach_evidence"] * 4,
            "close_out",
            "change_nte",
        ]
        linked = {line["decision_id"] for line in state["timeline"]}
        assert linked == {d["decision_id"] for d in state["decisions"]}

        not_due = state["decisions"][5]
        decision = await web.get(f"/dispatch/decisions/{not_due['decision_id']}")
        assert decision.status_code == 200
        assert decision.json()["decision"]["reason_code"] == "approval.not_due"
        assert decision.json()["timeline"][0]["seq"] == not_due["timeline_seq"]

        rejected = await web.get("/dispatch/approvals", params={"status": "rejected"})
        assert [i["approval"]["approval_id"] for i in rejected.json()["items"]] == [approval_id]
        assert (await web.get("/dispatch/approvals")).json() == {"items": [], "more": False}

        async def completed() -> dict[str, Any] | None:
            found = (await web.get(f"/dispatch/tickets/{ticket}/proposals")).json()
            return found if found["stage"] == "completed" else None

        proposals = await eventually(completed)
        assert {p["kind"] for p in proposals["items"]} >= {
            "find_technician",
            "confirm_visit",
            "notify_customer",
            "expire_approval",
            "close_out",
        }


async def test_a_command_that_does_not_normalize_is_refused_before_it_is_sent(web: Web) -> None:
    ticket = ticket_id()
    assert (await web.post(f"/tickets/{ticket}", body_of(create_ticket()))).status_code == 200
    stray = body_of(create_ticket())
    foreign = {"evidence": msgspec.to_builtins(evidence("e1", "photo_after", ticket="t-other"))}
    refused = await web.post(f"/tickets/{ticket}/attach-evidence", foreign)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    problem = refused.json()
    assert problem["code"] == "normalize.ticket_mismatch"
    assert [e["path"] for e in problem["errors"]] == ["$.evidence.ticket_id"]

    long_id = await web.post(
        f"/tickets/{ticket}/change-nte", nte(110_000), headers={"X-Request-Id": "r" * 201}
    )
    assert long_id.status_code == 422
    assert [e["path"] for e in long_id.json()["errors"]] == ["header.X-Request-Id"]

    unknown = await web.post(f"/tickets/{ticket}/change-nte", {**nte(110_000), "tip": 5})
    assert (unknown.status_code, unknown.json()["errors"][0]["path"]) == (422, "$.tip")
    wrong = await web.post(
        f"/tickets/{ticket}", {**stray, "nte": {"cents": "1", "currency": "USD"}}
    )
    assert (wrong.status_code, wrong.json()["errors"][0]["path"]) == (422, "$.nte.cents")
    keyless = await web.post(
        f"/tickets/{ticket}/change-nte", nte(110_000), headers={"Idempotency-Key": ""}
    )
    assert (keyless.status_code, keyless.json()["code"]) == (400, "idempotency_key_invalid")

    # None of them reached the actor: the ticket holds its creation decision only.
    rows = await web.stack.rows(decisions, ticket_id=ticket)
    assert [r.intent for r in rows] == ["create_ticket"]


async def test_a_lost_idempotency_record_still_cannot_replay_another_command(web: Web) -> None:
    ticket = ticket_id()
    assert (await web.post(f"/tickets/{ticket}", body_of(create_ticket()))).status_code == 200
    key = str(uuid.uuid4())
    first = await web.post(f"/tickets/{ticket}/change-nte", nte(110_000), idem=key)
    assert first.status_code == 200

    me = (await web.get("/me")).json()
    where = idempotency.storage_key(TENANT, me["id"], key)
    bucket = web.services.idempotency

    async def completed() -> idempotency.StoredRecord | None:
        stored = await bucket.get(where)
        return stored if stored is not None and stored.record.state == "completed" else None

    stored = await eventually(completed)
    assert await bucket.delete(where, stored.revision)

    # JetStream still knows the command id and hands back the first outcome: it is compared.
    changed = await web.post(f"/tickets/{ticket}/change-nte", nte(130_000), idem=key)
    assert changed.status_code == 409
    problem = changed.json()
    assert problem["code"] == "idempotency_key_reused"
    assert problem["details"]["differences"] == [
        {"path": "$.parameters.nte.cents", "recorded": 110_000, "requested": 130_000}
    ]
    assert problem["instance"] == first.headers["content-location"]
    stored = await eventually(completed)
    assert await bucket.delete(where, stored.revision)
    same = await web.post(f"/tickets/{ticket}/change-nte", nte(110_000), idem=key)
    assert (same.status_code, same.content) == (200, first.content)
    rows = await web.stack.rows(decisions, ticket_id=ticket)
    assert [r.intent for r in rows] == ["create_ticket", "change_nte"]


async def test_preview_answers_the_decision_it_would_record_and_records_nothing(web: Web) -> None:
    ticket = ticket_id()
    assert (await web.post(f"/tickets/{ticket}", body_of(create_ticket()))).status_code == 200
    preview = await web.post(
        f"/tickets/{ticket}/change-nte", nte(3_000_000), params={"mode": "preview"}
    )
    assert preview.status_code == 200, preview.text
    outcome = preview.json()
    assert outcome["status"] == "preview"
    assert outcome["events"][0]["data"]["decision"]["reason_code"] == "nte.above_ceiling"
    assert len(await web.stack.rows(decisions, ticket_id=ticket)) == 1


async def test_bundles_activate_by_hash_from_the_store_or_from_what_the_tenant_keeps(
    web: Web, starter: Bundle, strict: Bundle
) -> None:
    js = web.stack.nc.jetstream()
    await upload(js, strict.files)
    admin = "user:admin"
    request = {"sha256": strict.sha256, "reason": "tighter"}
    key = str(uuid.uuid4())
    to_strict = await web.post("/policy/activate-bundle", request, who=admin, idem=key)
    assert to_strict.status_code == 200, to_strict.text
    again = await web.post("/policy/activate-bundle", request, who=admin, idem=key)
    assert (again.status_code, again.content) == (200, to_strict.content)
    assert again.headers["idempotent-replayed"] == "true"
    reused = await web.post(
        "/policy/activate-bundle", {**request, "reason": "other"}, who=admin, idem=key
    )
    assert (reused.status_code, reused.json()["mismatch"]["body"]) == (409, ["/reason"])
    assert (await web.get("/dispatch/policy/bundle")).json()["version"] == strict.version

    # The starter bundle is not in the object store, but the tenant keeps it: a rollback.
    back = await web.post(
        "/policy/activate-bundle", {"sha256": starter.sha256, "reason": "rollback"}, who=admin
    )
    assert back.status_code == 200, back.text
    control = (await web.get("/dispatch/policy")).json()
    assert control["active"]["sha256"] == starter.sha256
    assert {k["version"] for k in control["kept"]} == {starter.version, strict.version}

    # A different bundle reusing the starter's version string is refused on the record.
    files = {p: d for p, d in shipped_files("starter").items() if p != "manifest.json"}
    files["README.md"] = b"same version, other content\n"
    impostor = load_bundle(seal(files, version=starter.version, created_at=utc(2025, 6, 1, 12, 0)))
    await upload(js, impostor.files)
    refused = await web.post(
        "/policy/activate-bundle", {"sha256": impostor.sha256, "reason": "oops"}, who=admin
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "bundle.version_conflict"
    attempts = (await web.get("/dispatch/policy")).json()["activations"]
    assert [a["outcome"] for a in attempts][-1] == "refused"
    listed = (await web.get("/dispatch/policy/bundles")).json()
    assert {b["name"] for b in listed} == {strict.sha256, impostor.sha256}
