"""How the dispatch routes map outcomes to HTTP answers: pure functions, no servers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import pytest

from actors.dispatch.bundles import shipped
from actors.dispatch.errors import InvalidParameters, MissingField, TicketMismatch
from actors.dispatch.normalize import build
from gateway.dispatch import answers
from gateway.problems import PROBLEM_JSON
from schemas.base import Decision, Event, Rejection, tag_of
from schemas.dispatch import BundleActivationRefused, ChangeNte, CloseOut, Money, PauseAutonomy
from schemas.envelope import EmittedEvent, Outcome
from schemas.subjects import event_subject_for
from tests.unit.dispatch.builders import TICKET, Driver, create_ticket, env_for

STATUS_URL = "/v1/outcomes/tickets/cmd-1"
HEADERS = {
    "troupe-command-id": "cmd-1",
    "content-location": STATUS_URL,
    "etag": '"3"',
    "content-type": answers.JSON,
}


def outcome_of(
    decision: Decision, *, command_id: str, key: str = TICKET, command: type = ChangeNte
) -> Outcome:
    assert isinstance(decision, Sequence)
    emitted = [e for e in decision if isinstance(e, Event)]
    return Outcome(
        command_id=command_id,
        domain="tickets",
        key=key,
        command=tag_of(command),
        status="applied",
        events=[
            EmittedEvent(
                id=f"evt-{i}",
                subject=event_subject_for(type(e), key),
                type=tag_of(type(e)),
                data=msgspec.Raw(msgspec.json.encode(e)),
            )
            for i, e in enumerate(emitted)
        ],
        version=3,
    )


def answer_of(outcome: Outcome) -> answers.Answer:
    return answers.Answer(
        status=200, body=msgspec.json.encode(outcome), media_type=answers.JSON, headers=HEADERS
    )


@pytest.fixture
def driver() -> Driver:
    drive = Driver(env_for(shipped("starter")))
    assert not isinstance(drive.send(create_ticket(), request_id="create-1"), Rejection)
    return drive


def nte(cents: int) -> ChangeNte:
    return ChangeNte(nte=Money(cents=cents, currency="USD"), reason="extra parts")


def shaped(outcome: Outcome, command: ChangeNte | CloseOut, request_id: str) -> answers.Answer:
    normalized = build(
        command,
        request_id=request_id,
        correlation_id=f"corr-{request_id}",
        actor="user:dispatcher",
        tenant="acme",
        ticket=TICKET,
    )
    return answers.shape(
        answer_of(outcome), key=TICKET, command=tag_of(type(command)), requested=normalized
    )


def test_an_allowed_command_keeps_its_outcome_and_names_its_decision(driver: Driver) -> None:
    command = nte(110_000)
    outcome = outcome_of(driver.send(command, request_id="r-1"), command_id="r-1")
    answer = shaped(outcome, command, "r-1")
    assert (answer.status, answer.body) == (200, msgspec.json.encode(outcome))
    assert answer.headers[answers.DECISION_HEADER] == "ALLOW"
    assert answer.headers["etag"] == '"3"'
    assert answer.headers[answers.CORRELATION_HEADER] == "corr-r-1"


def test_a_policy_denial_is_a_403_and_a_state_denial_a_409(driver: Driver) -> None:
    command = nte(3_000_000)
    outcome = outcome_of(driver.send(command, request_id="r-2"), command_id="r-2")
    answer = shaped(outcome, command, "r-2")
    assert (answer.status, answer.media_type) == (403, PROBLEM_JSON)
    problem = msgspec.json.decode(answer.body)
    assert (problem["code"], problem["instance"], problem["command_id"]) == (
        "nte.above_ceiling",
        STATUS_URL,
        "r-2",
    )
    assert problem["details"]["decision_url"].startswith("/v1/dispatch/decisions/dec_")
    assert "etag" not in answer.headers
    assert "content-location" not in answer.headers
    assert answer.headers["troupe-command-id"] == "cmd-1"

    closing = CloseOut(evidence_ids=("nope",), resolution="fixed")
    state = outcome_of(driver.send(closing, request_id="r-3"), command_id="r-3", command=CloseOut)
    assert shaped(state, closing, "r-3").status == 403  # unknown evidence: a policy rule
    driver.state = msgspec.structs.replace(driver.state, status="closed")
    late = outcome_of(driver.send(nte(120_000), request_id="r-4"), command_id="r-4")
    answer = shaped(late, nte(120_000), "r-4")
    problem = msgspec.json.decode(answer.body)
    assert (answer.status, problem["code"], problem["type"]) == (
        409,
        "ticket.closed",
        "tag:troupe,2025:problems/dispatch_conflict",
    )


def test_a_hold_is_a_202_with_the_location_of_the_approval(driver: Driver) -> None:
    command = nte(200_000)
    outcome = outcome_of(driver.send(command, request_id="r-5"), command_id="r-5")
    answer = shaped(outcome, command, "r-5")
    held = answers.held_of(outcome)
    assert held is not None
    assert answer.status == 202
    assert answer.headers["location"] == f"/v1/dispatch/approvals/{held.approval_id}"
    assert answer.headers[answers.DECISION_HEADER] == "REQUIRE_APPROVAL"


def test_an_outcome_of_another_command_under_the_same_id_is_a_409(driver: Driver) -> None:
    outcome = outcome_of(driver.send(nte(110_000), request_id="r-6"), command_id="r-6")
    answer = shaped(outcome, nte(150_000), "r-6")
    problem = msgspec.json.decode(answer.body)
    assert (answer.status, problem["code"]) == (409, answers.REUSED_CODE)
    assert problem["details"]["differences"] == [
        {"path": "$.parameters.nte.cents", "recorded": 110_000, "requested": 150_000}
    ]
    # Without a recorded decision the target and the command type are compared.
    pause = msgspec.structs.replace(outcome, events=[], command=tag_of(PauseAutonomy))
    found = answers.reuse_of(pause, key="other", command=tag_of(ChangeNte), requested=None)
    assert found is not None
    assert [path for path, _, _ in found.differences] == ["$.key", "$.command"]
    assert (
        answers.reuse_of(pause, key=TICKET, command=tag_of(PauseAutonomy), requested=None) is None
    )


@pytest.mark.parametrize(
    ("code", "status"), [("bundle.version_conflict", 409), ("bundle.tampered", 422)]
)
def test_a_refused_activation_is_a_problem_with_its_error_code(code: str, status: int) -> None:
    refused = BundleActivationRefused(
        error_code=code,
        error="the bundle does not verify",
        requested_by="user:admin",
        reason="rollout",
        expected_sha256="0" * 64,
        at=datetime(2025, 6, 2, tzinfo=UTC),
    )
    outcome = outcome_of([refused], command_id="act-1", key="acme")
    answer = answers.shape(answer_of(outcome), key="acme", command=outcome.command, requested=None)
    problem = msgspec.json.decode(answer.body)
    assert (answer.status, problem["code"], problem["details"]["tenant"]) == (status, code, "acme")


def test_other_answers_pass_through_unchanged() -> None:
    pending = answers.Answer(status=202, body=b'{"status":"pending"}', media_type=answers.JSON)
    assert answers.shape(pending, key=TICKET, command="x", requested=None) is pending
    problem = answers.Answer(status=404, body=b"{}", media_type=PROBLEM_JSON)
    assert answers.shape(problem, key=TICKET, command="x", requested=None) is problem


def test_normalization_failures_name_where_the_missing_piece_comes_from() -> None:
    actor = answers.normalization_problem(MissingField("actor", "who sent it"))
    assert (actor.status, actor.code) == (403, "normalize.missing_field")
    correlation = answers.normalization_problem(MissingField("correlation_id", "set it"))
    assert [e.path for e in correlation.errors] == ["header.Troupe-Correlation-Id"]
    mismatch = answers.normalization_problem(TicketMismatch("evidence.ticket_id", "t-2", "t-1"))
    assert [e.path for e in mismatch.errors] == ["$.evidence.ticket_id"]
    invalid = answers.normalization_problem(
        InvalidParameters("change_nte", "Expected `int`, got `str` - at `$.nte.cents`")
    )
    assert (invalid.status, invalid.code, [e.path for e in invalid.errors]) == (
        422,
        "normalize.invalid_parameters",
        ["$.nte.cents"],
    )
