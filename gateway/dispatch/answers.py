"""How dispatch commands answer over HTTP: decisions pick the status, reused ids a 409."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from actors.dispatch.client import differences
from actors.dispatch.errors import (
    InvalidParameters,
    MissingField,
    NormalizationError,
    RequestMismatch,
    TicketMismatch,
)
from gateway.problems import (
    PROBLEM_JSON,
    TYPE_BASE,
    FieldError,
    Problem,
    conflict,
    field_error_from_message,
    forbidden,
    validation_failed,
)
from schemas.base import tag_of
from schemas.dispatch.policy import BundleActivationRefused
from schemas.dispatch.records import DispatchCommand
from schemas.dispatch.tickets import ApprovalRequested, DecisionRecorded
from schemas.envelope import Outcome

__all__ = [
    "CORRELATION_HEADER",
    "DECISION_HEADER",
    "DECISION_ID_HEADER",
    "JSON",
    "PREFIX",
    "REUSED_CODE",
    "Answer",
    "approval_url",
    "decision_of",
    "decision_url",
    "denial_problem",
    "enriched",
    "held_of",
    "normalization_problem",
    "refusal_of",
    "refusal_problem",
    "reuse_of",
    "reused_problem",
    "shape",
]

JSON: Final = "application/json"
PREFIX: Final = "/v1/dispatch"
"""Where the dispatch routes live (the gateway mounts route modules under /v1)."""
DECISION_HEADER: Final = "troupe-decision"
"""``ALLOW``, ``DENY`` or ``REQUIRE_APPROVAL``: the decision recorded for the command."""
DECISION_ID_HEADER: Final = "troupe-decision-id"
CORRELATION_HEADER: Final = "troupe-correlation-id"
"""The correlation id the decision was recorded with."""
REUSED_CODE: Final = "idempotency_key_reused"

_OUTCOME = msgspec.json.Decoder(Outcome)
_ENCODER = msgspec.json.Encoder()
_DECISION: Final = tag_of(DecisionRecorded)
_HELD: Final = tag_of(ApprovalRequested)
_REFUSED: Final = tag_of(BundleActivationRefused)
_CARRIED: Final = frozenset(
    {"troupe-command-id", "idempotent-replayed", "content-location", "preference-applied", "etag"}
)
"""Headers of the gateway's answer that stay on the dispatch answer."""
_ABOUT_SUCCESS: Final = frozenset({"content-location", "etag"})
"""Headers that describe a successful outcome's representation; dropped from problems."""
_MISSING_PATHS: Final = {
    "request_id": "header.Idempotency-Key",
    "correlation_id": "header.Troupe-Correlation-Id",
    "tenant": "token.tenant",
    "ticket": "path.ticket",
}


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """An HTTP answer before it becomes a framework response."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = {}


def decision_url(decision_id: str) -> str:
    """Where a recorded decision is read."""
    return f"{PREFIX}/decisions/{decision_id}"


def approval_url(approval_id: str) -> str:
    """Where a hold is read."""
    return f"{PREFIX}/approvals/{approval_id}"


def _events_of(outcome: Outcome, tag: str) -> list[bytes]:
    return [bytes(e.data) for e in outcome.events if e.type == tag]


def decision_of(outcome: Outcome) -> DecisionRecorded | None:
    """The decision recorded for the outcome's own command.

    An approval releases its held command's effects in the same outcome; those carry the
    held request's ids, so the command's own decision is the one with its request id.
    """
    found = [msgspec.json.decode(d, type=DecisionRecorded) for d in _events_of(outcome, _DECISION)]
    own = [d for d in found if d.request_id == outcome.command_id]
    return next(iter(own or found), None)


def held_of(outcome: Outcome) -> ApprovalRequested | None:
    """The hold the outcome's command was put under, if any."""
    for data in _events_of(outcome, _HELD):
        held = msgspec.json.decode(data, type=ApprovalRequested)
        if held.request_id == outcome.command_id:
            return held
    return None


def refusal_of(outcome: Outcome) -> BundleActivationRefused | None:
    """The recorded refusal of a bundle activation, if that is what the outcome holds."""
    for data in _events_of(outcome, _REFUSED):
        return msgspec.json.decode(data, type=BundleActivationRefused)
    return None


def reuse_of(
    outcome: Outcome, *, key: str, command: str, requested: DispatchCommand | None
) -> RequestMismatch | None:
    """Whether ``outcome`` answers a different command than the one requested under its id.

    A ticket outcome with a decision is compared on the normalized command (intent,
    tenant, ticket, actor, parameters); anything else on its target and command type.
    """
    recorded = decision_of(outcome) if requested is not None else None
    if recorded is not None and requested is not None:
        if recorded.command.fingerprint == requested.fingerprint:
            return None
        return RequestMismatch(
            outcome.command_id,
            differences(recorded.command, requested),
            decision_id=recorded.decision_id,
        )
    found: list[tuple[str, object, object]] = []
    if outcome.key != key:
        found.append(("$.key", outcome.key, key))
    if outcome.command != command:
        found.append(("$.command", outcome.command, command))
    return RequestMismatch(outcome.command_id, found) if found else None


def _reuse_detail(mismatch: RequestMismatch) -> str:
    where = ", ".join(path for path, _, _ in mismatch.differences)
    differs = f"it differs at {where}" if where else "it differs"
    return (
        f"this Idempotency-Key was already used for a different command ({differs}); send the "
        "original request again to get its answer, or use a new key for a new operation"
    )


def reused_problem(mismatch: RequestMismatch) -> Problem:
    """409 for a request id the bus already carried another command under."""
    problem = conflict(_reuse_detail(mismatch), code=REUSED_CODE)
    return msgspec.structs.replace(problem, details=mismatch.details())


def enriched(problem: Problem, mismatch: RequestMismatch) -> Problem:
    """The gateway's ``idempotency_key_reused`` problem with the normalized differences added."""
    return msgspec.structs.replace(
        problem, detail=_reuse_detail(mismatch), details=mismatch.details()
    )


def normalization_problem(error: NormalizationError) -> Problem:
    """A command that does not normalize, refused before anything is sent (fail closed)."""
    message = str(error)
    if isinstance(error, MissingField) and error.field == "actor":
        return forbidden(message, code=error.code)
    if isinstance(error, MissingField):
        field = FieldError(path=_MISSING_PATHS.get(error.field, "$"), message=message)
    elif isinstance(error, TicketMismatch):
        field = FieldError(path=f"$.{error.field}", message=message)
    elif isinstance(error, InvalidParameters):
        field = field_error_from_message(error.detail)
    else:
        field = FieldError(path="$", message=message)
    return msgspec.structs.replace(validation_failed([field], detail=message), code=error.code)


def denial_problem(outcome: Outcome, recorded: DecisionRecorded) -> Problem:
    """A recorded ``DENY`` as a problem; the decision stays on the ticket's timeline."""
    decision = recorded.decision
    state = decision.rule == "ticket_state"
    details: dict[str, Any] = {
        "decision": decision.decision,
        "decision_id": recorded.decision_id,
        "decision_url": decision_url(recorded.decision_id),
        "request_id": recorded.request_id,
        "correlation_id": recorded.correlation_id,
        "rule": decision.rule,
        "reason_code": decision.reason_code,
        "bundle_version": decision.bundle_version,
        "bundle_sha256": decision.bundle_sha256,
        "control_revision": recorded.control_revision,
        "inputs": dict(decision.inputs),
        "ticket": outcome.key,
        "version": outcome.version,
        "events": [e.type for e in outcome.events],
    }
    return Problem(
        type=TYPE_BASE + ("dispatch_conflict" if state else "dispatch_denied"),
        title="Not possible in the ticket's state" if state else "Denied by policy",
        status=409 if state else 403,
        detail=decision.explanation,
        code=decision.reason_code,
        details=details,
        command_id=outcome.command_id,
    )


def refusal_problem(outcome: Outcome, refused: BundleActivationRefused) -> Problem:
    """A recorded refusal to activate a bundle; the active bundle did not change."""
    version_taken = refused.error_code == "bundle.version_conflict"
    return Problem(
        type=TYPE_BASE + "bundle_refused",
        title="Bundle activation refused",
        status=409 if version_taken else 422,
        detail=refused.error,
        code=refused.error_code,
        details={
            "expected_sha256": refused.expected_sha256,
            "version": refused.version,
            "active_version": refused.active_version,
            "active_sha256": refused.active_sha256,
            "tenant": outcome.key,
        },
        command_id=outcome.command_id,
    )


def _problem(problem: Problem, headers: Mapping[str, str], instance: str | None) -> Answer:
    kept = {k: v for k, v in headers.items() if k not in _ABOUT_SUCCESS}
    if instance is not None:
        problem = msgspec.structs.replace(problem, instance=instance)
    return Answer(
        status=problem.status, body=_ENCODER.encode(problem), media_type=PROBLEM_JSON, headers=kept
    )


def shape(answer: Answer, *, key: str, command: str, requested: DispatchCommand | None) -> Answer:
    """The dispatch answer for the gateway's answer to one command.

    The gateway answers 200 whenever the actor recorded something, and a ticket actor
    records a denial too; so the decision in the outcome picks the status:

    - ``ALLOW``: 200, the outcome unchanged;
    - ``REQUIRE_APPROVAL``: 202, the outcome unchanged, ``Location`` the hold;
    - ``DENY``: a problem, 409 when the ticket's state forbids it (rule ``ticket_state``),
      403 for every policy rule, ``code`` the reason code;
    - a refused bundle activation: a problem, 409 for ``bundle.version_conflict``, else 422.

    ``command`` is the wire tag sent; ``requested`` the normalized ticket command (None for
    policy commands). An outcome that belongs to another command under the same id (the
    idempotency record was lost while the bus still remembered the id) becomes a 409. All
    of it is a pure function of the stored response, so a replay maps to the same answer.
    """
    if answer.status != 200 or answer.media_type != JSON:
        return answer
    try:
        outcome = _OUTCOME.decode(answer.body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return answer
    if outcome.status != "applied":
        return answer
    headers = {k: v for k, v in answer.headers.items() if k in _CARRIED}
    status_url = headers.get("content-location")
    reused = reuse_of(outcome, key=key, command=command, requested=requested)
    if reused is not None:
        return _problem(reused_problem(reused), headers, status_url)
    recorded = decision_of(outcome)
    if recorded is not None:
        headers[DECISION_HEADER] = recorded.decision.decision
        headers[DECISION_ID_HEADER] = recorded.decision_id
        headers[CORRELATION_HEADER] = recorded.correlation_id
        match recorded.decision.decision:
            case "DENY":
                return _problem(denial_problem(outcome, recorded), headers, status_url)
            case "REQUIRE_APPROVAL":
                held = held_of(outcome)
                if held is not None:
                    headers["location"] = approval_url(held.approval_id)
                return Answer(status=202, body=answer.body, media_type=JSON, headers=headers)
            case _:
                return Answer(status=200, body=answer.body, media_type=JSON, headers=headers)
    refused = refusal_of(outcome)
    if refused is not None:
        return _problem(refusal_problem(outcome, refused), headers, status_url)
    return Answer(status=200, body=answer.body, media_type=JSON, headers=headers)
