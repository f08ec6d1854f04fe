"""Dispatch over HTTP against a real ``troupe up``: decisions, holds, the kill switch, request
ids (replay and 409), trace context and correlation, reads and the optimizer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec
import nats
import pytest

from actors.dispatch.bundles import Bundle, shipped
from actors.dispatch.bundles.sources import upload
from actors.dispatch.optimizer import rank
from gateway.problems import PROBLEM_JSON
from schemas.dispatch import OptimizationInput
from tests.e2e.conftest import TroupeUp
from tests.support.jwks import SigningKey, claims, rsa_key
from tests.unit.dispatch.builders import create_ticket

pytestmark = [pytest.mark.e2e]

TENANT = "acme"
DISPATCHER = "user:alice"
APPROVER = "user:bob"
ONCALL = "user:oncall"
WRITE, READ, ADMIN = "dispatch:write", "dispatch:read", "dispatch:admin"
SCOPES = {
    **{
        f"tickets.{verb}": [WRITE]
        for verb in (
            "create_ticket",
            "propose_visit",
            "change_nte",
            "record_approval_decision",
            "attach_evidence",
        )
    },
    "tickets.read": [READ],
    "workflow.read": [READ],
    "policy.read": [READ],
    "policy.activate_bundle": [ADMIN],
    "policy.pause_autonomy": [ADMIN],
    "policy.resume_autonomy": [ADMIN],
    "dispatch.optimize": [READ],
    # troupe up runs the match actor too, whose secrets close events.read until configured.
    "events.read": [READ],
}
EVERYTHING = f"{WRITE} {READ} {ADMIN}"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
TRACESTATE = "rojo=00f067aa0ba902b7"

T = TypeVar("T")


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("dispatch-e2e")


@pytest.fixture(scope="module")
def troupe_env(key: SigningKey) -> dict[str, str]:
    return {
        "TROUPE_AUTH_ISSUER": "https://issuer.test/",
        "TROUPE_AUTH_AUDIENCE": "troupe-api",
        "TROUPE_AUTH_PUBLIC_KEY": key.public_pem(),
        "TROUPE_AUTH_REQUIRED_SCOPES": json.dumps(SCOPES),
        # Holds here last a day; nothing for the scheduler to do.
        "TROUPE_DISPATCH_EXPIRY_INTERVAL": "0",
    }


@dataclass
class Api:
    """An HTTP client that signs a token per call for the principal it acts as."""

    http: httpx.Client
    key: SigningKey

    def headers(
        self, who: str, tenant: str, scope: str, extra: dict[str, str] | None
    ) -> dict[str, str]:
        token = self.key.sign(claims(sub=who, tenant=tenant, scope=scope))
        return {"Authorization": f"Bearer {token}", **(extra or {})}

    def post(
        self,
        path: str,
        body: Any,
        *,
        who: str = DISPATCHER,
        tenant: str = TENANT,
        scope: str = EVERYTHING,
        idem: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = self.headers(who, tenant, scope, headers)
        sent["Idempotency-Key"] = idem or str(uuid.uuid4())
        return self.http.post(f"/v1/dispatch{path}", json=body, headers=sent)

    def get(
        self,
        path: str,
        *,
        who: str = DISPATCHER,
        tenant: str = TENANT,
        scope: str = EVERYTHING,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        return self.http.get(
            f"/v1{path}", headers=self.headers(who, tenant, scope, None), params=params
        )


async def _upload(nats_url: str, bundle: Bundle) -> str:
    nc = await nats.connect(nats_url)
    try:
        stored = await upload(nc.jetstream(), bundle.files)
    finally:
        await nc.close()
    return stored.name


@pytest.fixture(scope="module")
def starter() -> Bundle:
    return shipped("starter")


@pytest.fixture(scope="module")
def api(troupe_up: TroupeUp, key: SigningKey, starter: Bundle) -> Iterator[Api]:
    """The client, with the starter bundle uploaded and activated for the tenant over HTTP."""
    name = asyncio.run(_upload(troupe_up.nats_url, starter))
    assert name == starter.sha256
    with httpx.Client(base_url=troupe_up.base_url, timeout=30) as http:
        client = Api(http, key)
        activated = client.post(
            "/policy/activate-bundle",
            {"sha256": starter.sha256, "reason": "rollout"},
            who="user:admin",
        )
        assert activated.status_code == 200, activated.text
        assert [e["type"] for e in activated.json()["events"]] == ["policy.bundle_activated.v1"]
        yield client


def ticket_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def create_body(nte_cents: int = 100_000) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(create_ticket(nte_cents=nte_cents))
    body.pop("type")
    return body


def nte_body(cents: int) -> dict[str, Any]:
    return {"nte": {"cents": cents, "currency": "USD"}, "reason": "extra parts"}


def created(api: Api, ticket: str, **kwargs: Any) -> httpx.Response:
    response = api.post(f"/tickets/{ticket}", create_body(), **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["troupe-decision"] == "ALLOW"
    return response


def eventually(check: Callable[[], T | None], within: float = 20.0) -> T:
    """Poll ``check`` until it returns something, or fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing within {within}s")
        time.sleep(0.1)


def events(api: Api, subject: str, least: int) -> list[dict[str, Any]]:
    def page() -> list[dict[str, Any]] | None:
        response = api.get("/events", params={"subject": subject})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items if len(items) >= least else None

    return eventually(page)


def test_a_denied_command_is_a_problem_and_its_decision_and_timeline_are_readable(
    api: Api, starter: Bundle
) -> None:
    ticket = ticket_id()
    created(api, ticket)
    denied = api.post(f"/tickets/{ticket}/change-nte", nte_body(3_000_000))
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith(PROBLEM_JSON)
    problem = denied.json()
    assert problem["code"] == "nte.above_ceiling"
    assert "25000.00" in problem["detail"]
    details = problem["details"]
    assert (details["decision"], details["rule"], details["bundle_sha256"]) == (
        "DENY",
        "nte_threshold",
        starter.sha256,
    )
    assert denied.headers["troupe-decision"] == "DENY"

    decision = api.get(details["decision_url"].removeprefix("/v1"))
    assert decision.status_code == 200, decision.text
    record = decision.json()
    assert record["ticket_id"] == ticket
    assert record["decision"]["decision"] == "DENY"
    assert record["decision"]["reason_code"] == "nte.above_ceiling"
    assert record["decision"]["bundle_version"] == starter.version
    assert record["decision"]["parameters"]["nte"] == {"cents": 3_000_000, "currency": "USD"}
    assert [line["kind"] for line in record["timeline"]] == ["decision_recorded"]

    view = api.get(f"/dispatch/tickets/{ticket}")
    assert view.status_code == 200
    assert view.headers["etag"] == f'"{view.json()["version"]}"'
    state = view.json()["ticket"]
    assert state["nte"]["cents"] == 100_000
    assert [line["kind"] for line in state["timeline"]] == [
        "decision_recorded",
        "ticket_created",
        "decision_recorded",
    ]
    assert state["timeline"][-1]["decision_id"] == details["decision_id"]
    assert [d["decision"] for d in state["decisions"]] == ["ALLOW", "DENY"]

    # Another tenant sees none of it, and may not act on the ticket.
    assert api.get(f"/dispatch/tickets/{ticket}", tenant="globex").status_code == 404
    assert api.get(details["decision_url"].removeprefix("/v1"), tenant="globex").status_code == 404
    foreign = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000), tenant="globex")
    assert (foreign.status_code, foreign.json()["code"]) == (403, "tickets.tenant_mismatch")


def test_a_held_command_waits_for_an_approval_then_proceeds(api: Api) -> None:
    ticket = ticket_id()
    created(api, ticket)
    held = api.post(f"/tickets/{ticket}/change-nte", nte_body(200_000))
    assert held.status_code == 202, held.text
    assert held.headers["troupe-decision"] == "REQUIRE_APPROVAL"
    outcome = held.json()
    assert outcome["status"] == "applied"
    assert [e["type"] for e in outcome["events"]] == [
        "tickets.decision_recorded.v1",
        "tickets.approval_requested.v1",
    ]
    approval_id = outcome["events"][1]["data"]["approval_id"]
    assert held.headers["location"] == f"/v1/dispatch/approvals/{approval_id}"

    pending = api.get("/dispatch/approvals", params={"ticket": ticket})
    assert pending.status_code == 200
    [item] = pending.json()["items"]
    assert (item["ticket_id"], item["overdue"]) == (ticket, False)
    assert item["approval"]["approval_id"] == approval_id
    assert item["approval"]["command"]["nte"]["cents"] == 200_000
    assert item["approval"]["requested_by"] == DISPATCHER

    # The shadow workflow proposes the expiry at the deadline; it sends nothing itself.
    def expiry_proposed() -> list[dict[str, Any]] | None:
        found = api.get(f"/dispatch/tickets/{ticket}/proposals").json()["items"]
        return [p for p in found if p["kind"] == "expire_approval"] or None

    [proposal] = eventually(expiry_proposed)
    assert proposal["suggested"] == {
        "type": "tickets.expire_approval.v1",
        "approval_id": approval_id,
    }
    assert proposal["not_before"] == item["approval"]["expires_at"]

    # Whoever asked may not approve it; the attempt is a recorded denial.
    decide = {"approval_id": approval_id, "outcome": "approve", "note": "ok"}
    own = api.post(f"/tickets/{ticket}/record-approval-decision", decide)
    assert (own.status_code, own.json()["code"]) == (403, "approval.self_approval")

    approved = api.post(f"/tickets/{ticket}/record-approval-decision", decide, who=APPROVER)
    assert approved.status_code == 200, approved.text
    kinds = [e["type"] for e in approved.json()["events"]]
    assert kinds == [
        "tickets.decision_recorded.v1",
        "tickets.approval_resolved.v1",
        "tickets.nte_changed.v1",
    ]
    # The released effect carries the held request's ids, not the approval's.
    released = approved.json()["events"][2]["data"]
    assert released["request_id"] == outcome["events"][0]["data"]["request_id"]

    hold = api.get(f"/dispatch/approvals/{approval_id}")
    assert hold.status_code == 200
    assert (hold.json()["approval"]["status"], hold.json()["approval"]["resolved_by"]) == (
        "approved",
        APPROVER,
    )
    state = api.get(f"/dispatch/tickets/{ticket}").json()["ticket"]
    assert state["nte"]["cents"] == 200_000
    assert api.get("/dispatch/approvals", params={"ticket": ticket}).json()["items"] == []


def test_a_paused_scope_denies_the_next_action_until_it_is_resumed(api: Api) -> None:
    ticket = ticket_id()
    created(api, ticket)
    scope = {"scope": {"kind": "ticket", "id": ticket}, "reason": "storm drill"}
    unprivileged = api.post("/policy/pause-autonomy", scope, scope=WRITE)
    assert (unprivileged.status_code, unprivileged.json()["code"]) == (403, "insufficient_scope")

    paused = api.post("/policy/pause-autonomy", scope, who=ONCALL)
    assert paused.status_code == 200, paused.text
    assert [e["type"] for e in paused.json()["events"]] == ["policy.autonomy_paused.v1"]
    control = api.get("/dispatch/policy").json()
    assert {"kind": "ticket", "id": ticket} in [p["scope"] for p in control["paused"]]
    # The actor's own refusal, a problem like any other.
    again = api.post("/policy/pause-autonomy", scope, who=ONCALL)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM_JSON)

    denied = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000))
    assert (denied.status_code, denied.json()["code"]) == (403, "autonomy.paused")
    assert denied.json()["details"]["rule"] == "kill_switch"

    resumed = api.post("/policy/resume-autonomy", {**scope, "reason": "all clear"}, who=ONCALL)
    assert resumed.status_code == 200, resumed.text
    allowed = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000))
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["troupe-decision"] == "ALLOW"


def test_a_repeated_request_id_replays_status_and_body_exactly(api: Api) -> None:
    ticket = ticket_id()
    created(api, ticket)
    key = str(uuid.uuid4())
    first = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000), idem=key)
    assert first.status_code == 200
    again = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000), idem=key)
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["troupe-command-id"] == first.headers["troupe-command-id"]

    denial_key = str(uuid.uuid4())
    denied = api.post(f"/tickets/{ticket}/change-nte", nte_body(3_000_000), idem=denial_key)
    denied_again = api.post(f"/tickets/{ticket}/change-nte", nte_body(3_000_000), idem=denial_key)
    assert denied.status_code == 403
    assert (denied_again.status_code, denied_again.content) == (403, denied.content)

    state = api.get(f"/dispatch/tickets/{ticket}").json()["ticket"]
    assert [d["intent"] for d in state["decisions"]] == [
        "create_ticket",
        "change_nte",
        "change_nte",
    ]
    # The request id the actor recorded is the command id derived from the key.
    assert state["decisions"][1]["request_id"] == first.headers["troupe-command-id"]


def test_a_reused_request_id_with_another_body_is_a_409_naming_what_differs(api: Api) -> None:
    ticket, other = ticket_id(), ticket_id()
    created(api, ticket)
    created(api, other)
    key = str(uuid.uuid4())
    first = api.post(f"/tickets/{ticket}/change-nte", nte_body(110_000), idem=key)
    assert first.status_code == 200

    changed = api.post(f"/tickets/{ticket}/change-nte", nte_body(120_000), idem=key)
    assert changed.status_code == 409
    problem = changed.json()
    assert problem["code"] == "idempotency_key_reused"
    assert problem["mismatch"] == {"fields": ["body"], "body": ["/nte/cents"]}
    assert problem["details"]["differences"] == [
        {"path": "$.parameters.nte.cents", "recorded": 110_000, "requested": 120_000}
    ]
    assert problem["details"]["request_id"] == first.headers["troupe-command-id"]
    assert problem["details"]["decision_id"] == first.headers["troupe-decision-id"]

    elsewhere = api.post(f"/tickets/{other}/change-nte", nte_body(110_000), idem=key)
    assert elsewhere.status_code == 409
    assert elsewhere.json()["mismatch"]["fields"] == ["path"]
    assert {"path": "$.ticket", "recorded": ticket, "requested": other} in elsewhere.json()[
        "details"
    ]["differences"]
    # Neither reuse reached the actor.
    state = api.get(f"/dispatch/tickets/{ticket}").json()["ticket"]
    assert len(state["decisions"]) == 2
    assert len(api.get(f"/dispatch/tickets/{other}").json()["ticket"]["decisions"]) == 1


def test_traceparent_travels_to_the_workflow_actors_events(api: Api) -> None:
    ticket = ticket_id()
    response = created(api, ticket, headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert response.headers["troupe-trace-id"] == TRACE_ID
    for subject, least in ((f"evt.tickets.{ticket}.>", 2), (f"evt.workflow.{ticket}.>", 2)):
        for record in events(api, subject, least):
            assert record["headers"]["traceparent"].split("-")[1] == TRACE_ID, record["subject"]
            assert record["headers"]["tracestate"] == TRACESTATE
    proposals = api.get(f"/dispatch/tickets/{ticket}/proposals").json()
    assert [p["kind"] for p in proposals["items"]] == ["find_technician"]


def test_an_x_request_id_is_kept_as_the_correlation_id_and_mapped(api: Api) -> None:
    ticket = ticket_id()
    request_id = f"legacy-{uuid.uuid4().hex[:8]}"
    response = created(api, ticket, headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id
    assert response.headers["troupe-correlation-id"] == request_id
    decision = response.json()["events"][0]["data"]
    assert decision["correlation_id"] == request_id
    assert decision["command"]["correlation_id"] == request_id
    assert decision["command"]["request_id"] == response.headers["troupe-command-id"]

    state = api.get(f"/dispatch/tickets/{ticket}").json()["ticket"]
    assert {line["correlation_id"] for line in state["timeline"]} == {request_id}
    for subject in (f"evt.tickets.{ticket}.>", f"evt.workflow.{ticket}.>"):
        for record in events(api, subject, 2):
            assert record["headers"]["Troupe-Correlation-Id"] == request_id
    # The legacy trace id header maps the same way when no request id is sent.
    traced, legacy = ticket_id(), f"trace-{uuid.uuid4().hex[:8]}"
    other = created(api, traced, headers={"X-Trace-Id": legacy})
    assert other.headers["troupe-correlation-id"] == legacy


def test_the_optimizer_ranks_with_explanations_and_writes_nothing(api: Api) -> None:
    start = "2030-06-03T15:00:00Z"
    body = {
        "ticket_id": "t-opt",
        "site": {"lat": 41.88, "lon": -87.63},
        "window": {"start": start, "end": "2030-06-03T19:00:00Z"},
        "required_skills": ["plumbing"],
        "candidates": [
            {
                "technician_id": technician,
                "skills": skills,
                "location": {"lat": lat, "lon": -87.63},
                "availability": [{"start": start, "end": "2030-06-03T23:00:00Z"}],
                "current_load": load,
            }
            for technician, skills, lat, load in (
                ("tech-near", ["plumbing"], 41.90, 1),
                ("tech-far", ["plumbing"], 42.60, 0),
                ("tech-sparky", ["electrical"], 41.88, 0),
            )
        ],
    }
    answer = api.post("/optimize", body)
    assert answer.status_code == 200, answer.text
    output = answer.json()
    assert [r["technician_id"] for r in output["ranked"]] == ["tech-near", "tech-far"]
    assert all(r["explanation"] for r in output["ranked"])
    assert output["excluded"][0]["reasons"] == ["skills_missing"]
    expected = rank(msgspec.convert(body, OptimizationInput))
    assert output == msgspec.json.decode(msgspec.json.encode(expected))
    assert api.get("/dispatch/tickets/t-opt").status_code == 404
    bad = api.post("/optimize", {**body, "limit": 0})
    assert (bad.status_code, bad.json()["code"]) == (422, "validation")


def test_the_policy_reads_show_the_active_bundle_and_the_stored_ones(
    api: Api, starter: Bundle
) -> None:
    control = api.get("/dispatch/policy").json()
    assert control["active"]["sha256"] == starter.sha256
    assert control["activations"][0]["outcome"] == "activated"
    bundle = api.get("/dispatch/policy/bundle")
    assert bundle.status_code == 200
    assert bundle.json()["rules"]["nte"]["default"]["ceiling_cents"] == 2_500_000
    stored = api.get("/dispatch/policy/bundles").json()
    assert [b["name"] for b in stored] == [starter.sha256]
    assert api.get("/dispatch/policy/bundle", tenant="globex").status_code == 404
    unknown = api.post(
        "/policy/activate-bundle", {"sha256": "0" * 64, "reason": "typo"}, who="user:admin"
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "bundle.unknown_object")
    active = api.post(
        "/policy/activate-bundle", {"sha256": starter.sha256, "reason": "again"}, who="user:admin"
    )
    assert active.status_code == 409


def test_the_openapi_document_describes_the_dispatch_routes(api: Api) -> None:
    document = api.http.get("/schema/openapi.json").json()
    paths = document["paths"]
    change = paths["/v1/dispatch/tickets/{ticket}/change-nte"]["post"]
    assert change["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith(
        "#/components/schemas/ChangeNte"
    )
    assert {p["name"] for p in change["parameters"]} >= {"ticket", "Idempotency-Key"}
    for path in (
        "/v1/dispatch/tickets/{ticket}",
        "/v1/dispatch/decisions/{decision_id}",
        "/v1/dispatch/approvals",
        "/v1/dispatch/policy/activate-bundle",
        "/v1/dispatch/optimize",
    ):
        assert path in paths
