"""Normalization: one DispatchCommand per command, failing closed on anything missing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.errors import (
    InvalidParameters,
    MissingField,
    TicketMismatch,
    UnknownIntent,
)
from actors.dispatch.normalize import INTENTS, build, command_of, normalize, parse_command
from schemas.base import Command
from schemas.dispatch import AttachEvidence, ChangeNte, Money
from tests.unit.dispatch.builders import TENANT, TICKET, context, create_ticket, evidence


def test_a_command_becomes_one_normalized_record() -> None:
    command = create_ticket()
    normalized = normalize(command, context(message_id="req-9", correlation_id="corr-9"))
    assert normalized.request_id == "req-9"
    assert normalized.correlation_id == "corr-9"
    assert normalized.actor == "user:dispatcher"
    assert (normalized.tenant, normalized.ticket) == (TENANT, TICKET)
    assert normalized.intent == "create_ticket"
    assert "type" not in normalized.parameters
    assert normalized.parameters["nte"] == {"cents": 100_000, "currency": "USD"}
    assert command_of(normalized) == command


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"principal": None}, "actor"),
        ({"principal": "  "}, "actor"),
        ({"message_id": ""}, "request_id"),
        ({"correlation_id": ""}, "correlation_id"),
        ({"tenant": ""}, "tenant"),
    ],
)
def test_missing_required_fields_fail_closed(overrides: dict[str, str | None], field: str) -> None:
    with pytest.raises(MissingField) as caught:
        normalize(create_ticket(), context(**overrides))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert caught.value.code == "normalize.missing_field"


def test_evidence_for_another_ticket_is_refused() -> None:
    command = AttachEvidence(evidence=evidence("ev-1", "photo_after", ticket="t-other"))
    with pytest.raises(TicketMismatch, match="names ticket 't-other'"):
        normalize(command, context(command=AttachEvidence))


def test_unknown_intents_and_bad_parameters_name_the_problem() -> None:
    with pytest.raises(UnknownIntent):
        parse_command("launch_rocket", {})
    with pytest.raises(InvalidParameters, match=r"change_nte: .*at `\$.nte.cents`"):
        parse_command("change_nte", {"nte": {"cents": "lots", "currency": "USD"}, "reason": "r"})
    with pytest.raises(InvalidParameters, match="unknown field `ticket`"):
        parse_command(
            "change_nte",
            {"nte": {"cents": 1, "currency": "USD"}, "reason": "r", "ticket": TICKET},
        )

    class Stray(Command, frozen=True, tag="tickets.stray.v1"):
        pass

    with pytest.raises(UnknownIntent):
        normalize(Stray(), context())


def test_keys_must_be_subject_safe() -> None:
    with pytest.raises(InvalidParameters, match=r"tenant 'a\.b' is not a subject-safe key"):
        build(
            create_ticket(),
            request_id="r",
            correlation_id="c",
            actor="user:x",
            tenant="a.b",
            ticket=TICKET,
        )


def test_every_intent_is_reachable_by_name() -> None:
    assert set(INTENTS) == {
        "create_ticket",
        "propose_visit",
        "confirm_visit",
        "send_comms",
        "change_nte",
        "attach_evidence",
        "close_out",
        "record_approval_decision",
        "expire_approval",
        "manual_override",
    }


@settings(max_examples=40, deadline=None)
@given(
    cents=st.integers(0, 10**9),
    reason=st.text(min_size=1, max_size=40),
    rid=st.text("ab", min_size=1, max_size=8),
)
def test_fingerprint_depends_on_the_body_not_the_request_id(
    cents: int, reason: str, rid: str
) -> None:
    command = ChangeNte(nte=Money(cents=cents, currency="USD"), reason=reason)
    first = normalize(command, context(message_id=rid, command=ChangeNte))
    second = normalize(command, context(message_id=rid + "x", command=ChangeNte))
    changed = ChangeNte(nte=Money(cents=cents + 1, currency="USD"), reason=reason)
    third = normalize(changed, context(message_id=rid, command=ChangeNte))
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint != third.fingerprint
    assert command_of(first) == command
