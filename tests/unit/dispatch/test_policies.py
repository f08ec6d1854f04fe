"""The starter policies through ``decide_policy``: quiet hours, NTE approvals, closeout evidence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.bundles import Bundle
from actors.dispatch.normalize import normalize
from actors.dispatch.policies import decide_policy, nte_change
from schemas.base import Command
from schemas.dispatch import (
    AttachEvidence,
    ChangeNte,
    CloseOut,
    CommsEnvelope,
    ConfirmVisit,
    ManualOverride,
    Money,
    PolicyDecision,
    ProposeVisit,
    RecordApprovalDecision,
    SendComms,
    TicketState,
)
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    Driver,
    context,
    create_ticket,
    env_for,
    evidence,
    make_bundle,
    rules_json,
    utc,
    window,
)

STARTER = make_bundle()
NINE_PM_CDT = utc(2025, 6, 3, 2, 0)  # Monday 21:00 in Chicago


def sms(channel: str = "sms") -> SendComms:
    to, sender = (
        ("pat@example.com", "ops@example.com")
        if channel == "email"
        else ("+15555550100", "+15555550199")
    )
    envelope = msgspec.convert(
        {
            "envelope_id": "env-1",
            "channel": channel,
            "direction": "outbound",
            "to": to,
            "sender": sender,
            "body": "Your technician is on the way.",
        },
        CommsEnvelope,
    )
    return SendComms(envelope=envelope)


def ticket(bundle: Bundle = STARTER, **create: Any) -> TicketState:
    driver = Driver(env_for(bundle))
    driver.send(create_ticket(**create))
    return driver.state


def decide(
    command: Command,
    state: TicketState,
    now: datetime = MONDAY_10_CDT,
    bundle: Bundle = STARTER,
    principal: str = "user:dispatcher",
) -> PolicyDecision:
    normalized = normalize(
        command, context(message_id="req-x", principal=principal, command=type(command))
    )
    return decide_policy(bundle, normalized, state, now)


# Quiet hours ---------------------------------------------------------------------------


def test_outbound_sms_is_held_back_from_the_first_quiet_minute() -> None:
    state = ticket()
    before = decide(sms(), state, NINE_PM_CDT - timedelta(seconds=1))
    at = decide(sms(), state, NINE_PM_CDT)
    assert (before.decision, before.reason_code) == ("ALLOW", "quiet_hours.clear")
    assert (at.decision, at.reason_code) == ("DENY", "quiet_hours.active")
    assert at.rule == "quiet_hours"
    assert at.inputs["time_zone"] == "America/Chicago"
    assert at.inputs["local_time"] == "Mon 2025-06-02 21:00:00 CDT"
    assert at.inputs["window"] == "21:00-07:00"
    assert at.inputs["quiet_until"] == "2025-06-03T12:00:00Z"
    assert "retry at 2025-06-03 07:00 CDT" in at.explanation
    assert (at.bundle_version, at.bundle_sha256) == (STARTER.version, STARTER.sha256)


def test_quiet_hours_end_on_the_minute() -> None:
    state = ticket()
    assert decide(sms(), state, utc(2025, 6, 3, 11, 59, 59)).decision == "DENY"
    assert decide(sms(), state, utc(2025, 6, 3, 12, 0)).decision == "ALLOW"


def test_visit_confirmation_is_gated_whatever_the_channels() -> None:
    state = ticket()
    assert decide(ConfirmVisit(visit_id="v1"), state, NINE_PM_CDT).decision == "DENY"
    email = decide(sms("email"), state, NINE_PM_CDT)
    assert (email.decision, email.reason_code) == ("ALLOW", "quiet_hours.channel_not_gated")


def test_emergencies_are_exempt() -> None:
    made = decide(sms(), ticket(priority="emergency"), NINE_PM_CDT)
    assert (made.decision, made.reason_code) == ("ALLOW", "quiet_hours.exempt_priority")
    assert made.inputs["quiet_until"] == "2025-06-03T12:00:00Z"


def test_regions_use_their_own_time_zone() -> None:
    west = decide(sms(), ticket(region="west"), NINE_PM_CDT)  # 19:00 in Los Angeles
    east = decide(sms(), ticket(region="east"), utc(2025, 6, 3, 1, 30))  # 21:30 in New York
    assert west.decision == "ALLOW"
    assert west.inputs["time_zone"] == "America/Los_Angeles"
    assert east.decision == "DENY"
    assert east.inputs["time_zone"] == "America/New_York"


def test_a_tenant_profile_replaces_the_default() -> None:
    data = rules_json()["policy/quiet_hours.json"]
    data["tenants"]["acme"] = {
        "time_zone": "Europe/Berlin",
        "windows": [{"start": "20:00", "end": "08:00"}],
    }
    bundle = make_bundle({"policy/quiet_hours.json": data})
    state = ticket(bundle)
    made = decide(sms(), state, utc(2025, 6, 2, 18, 0), bundle)  # 20:00 CEST
    assert made.decision == "DENY"
    assert made.inputs["time_zone"] == "Europe/Berlin"


def test_quiet_hours_across_spring_forward_in_a_decision() -> None:
    state = ticket(region="east")
    assert decide(sms(), state, utc(2025, 3, 9, 10, 59, 59)).decision == "DENY"  # 06:59:59 EDT
    assert decide(sms(), state, utc(2025, 3, 9, 11, 0)).decision == "ALLOW"  # 07:00 EDT


# NTE ----------------------------------------------------------------------------------------


def nte(cents: int) -> ChangeNte:
    return ChangeNte(nte=Money(cents=cents, currency="USD"), reason="more pipe needed")


@pytest.mark.parametrize(
    ("current", "requested", "expected", "reason"),
    [
        (100_000, 120_000, "ALLOW", "nte.within_threshold"),  # +20 % exactly: allowed
        (100_000, 120_001, "REQUIRE_APPROVAL", "nte.approval_required"),  # a cent over 20 %
        (1_000_000, 1_050_000, "ALLOW", "nte.within_threshold"),  # +USD 500.00 exactly
        (1_000_000, 1_050_001, "REQUIRE_APPROVAL", "nte.approval_required"),  # a cent over
        (100_000, 90_000, "ALLOW", "nte.not_increased"),
        (100_000, 100_000, "ALLOW", "nte.not_increased"),
        (2_480_000, 2_500_000, "ALLOW", "nte.within_threshold"),  # at the ceiling
        (2_480_000, 2_500_001, "DENY", "nte.above_ceiling"),
    ],
)
def test_nte_thresholds_and_their_equality(
    current: int, requested: int, expected: str, reason: str
) -> None:
    made = decide(nte(requested), ticket(nte_cents=current))
    assert (made.decision, made.reason_code) == (expected, reason)
    assert made.inputs["delta_cents"] == requested - current
    assert made.rule == "nte_threshold"


def test_either_threshold_triggers_and_both_are_explained() -> None:
    made = decide(nte(200_000), ticket(nte_cents=100_000))
    assert "more than USD 500.00 and more than 20% of the current NTE" in made.explanation


def test_percent_thresholds_are_exact_decimals() -> None:
    data = {"default": {"percent": "12.5"}, "tenants": {}}
    bundle = make_bundle({"policy/nte.json": data})
    limit = msgspec.convert({"cents": 1000, "currency": "USD"}, Money)
    assert nte_change(bundle, "acme", limit, Money(cents=1125, currency="USD")).decision == "ALLOW"
    assert (
        nte_change(bundle, "acme", limit, Money(cents=1126, currency="USD")).decision
        == "REQUIRE_APPROVAL"
    )
    zero = Money(cents=0, currency="USD")
    assert nte_change(bundle, "acme", zero, Money(cents=1, currency="USD")).decision == (
        "REQUIRE_APPROVAL"
    )


def test_tenant_nte_thresholds() -> None:
    data = rules_json()["policy/nte.json"]
    data["tenants"]["acme"] = {"absolute_cents": 1000}
    bundle = make_bundle({"policy/nte.json": data})
    state = ticket(bundle, nte_cents=100_000)
    assert decide(nte(101_001), state, bundle=bundle).decision == "REQUIRE_APPROVAL"
    assert decide(nte(101_000), state, bundle=bundle).decision == "ALLOW"


# Closeout evidence ---------------------------------------------------------------------------


def with_evidence(*kinds: str, template: str = "water_leak") -> TicketState:
    driver = Driver(env_for(STARTER))
    driver.send(create_ticket(template=template))
    for i, kind in enumerate(kinds):
        driver.send(AttachEvidence(evidence=evidence(f"ev-{i}", kind)))
    return driver.state


def close(*ids: str) -> CloseOut:
    return CloseOut(evidence_ids=ids, resolution="Replaced the trap")


def test_closeout_denied_until_the_template_evidence_is_cited() -> None:
    state = with_evidence("photo_before", "photo_after", "moisture_reading")
    made = decide(close("ev-0", "ev-1", "ev-2"), state)
    assert (made.decision, made.reason_code) == ("DENY", "closeout.missing_evidence")
    assert made.inputs["missing"] == ["signature=1"]
    assert "still needs 1 x signature" in made.explanation
    complete = with_evidence("photo_before", "photo_after", "moisture_reading", "signature")
    made = decide(close("ev-0", "ev-1", "ev-2", "ev-3"), complete)
    assert (made.decision, made.reason_code) == ("ALLOW", "closeout.evidence_complete")


def test_attached_but_uncited_evidence_does_not_count() -> None:
    state = with_evidence("photo_before", "photo_after", "moisture_reading", "signature")
    made = decide(close("ev-0", "ev-1", "ev-2"), state)
    assert made.inputs["missing"] == ["signature=1"]


def test_counts_matter_and_repeated_citations_count_once() -> None:
    state = with_evidence("photo_after", "inspection_form", "signature", template="electrical")
    made = decide(close("ev-0", "ev-0", "ev-1", "ev-2"), state)
    assert made.inputs["missing"] == ["photo_after=1"]


def test_citing_unknown_evidence_is_denied() -> None:
    made = decide(close("ev-404"), with_evidence())
    assert (made.decision, made.reason_code) == ("DENY", "closeout.unknown_evidence")


def test_a_template_missing_from_the_bundle_fails_closed() -> None:
    state = ticket()
    data = {"templates": {"hvac_repair": {"required": {"photo_after": 1}}}}
    bundle = make_bundle({"policy/evidence.json": data})
    made = decide(close(), state, bundle=bundle)
    assert (made.decision, made.reason_code) == ("DENY", "closeout.unknown_template")


# Approvers and overrides -------------------------------------------------------------------


def test_only_listed_approvers_may_decide() -> None:
    decision = RecordApprovalDecision(approval_id="apr_x", outcome="approve")
    assert decide(decision, ticket(), principal="svc:autopilot").reason_code == (
        "approval.not_permitted"
    )
    assert decide(decision, ticket(), principal="user:manager").reason_code == "approval.permitted"


def test_overrides_need_an_override_principal() -> None:
    command = ManualOverride(command=ConfirmVisit(visit_id="v1"), justification="customer asked")
    assert decide(command, ticket(), principal="svc:autopilot").reason_code == (
        "override.not_permitted"
    )
    assert decide(command, ticket(), principal="user:lead").reason_code == "override.permitted"


def test_unrestricted_intents_are_allowed_by_default() -> None:
    made = decide(
        ProposeVisit(visit_id="v1", technician_id="tech-7", window=window(MONDAY_10_CDT)),
        ticket(),
    )
    assert (made.decision, made.reason_code, made.rule) == ("ALLOW", "default.allowed", "default")


def test_creating_a_ticket_needs_a_known_template() -> None:
    made = decide(create_ticket(template="volcano"), TicketState(ticket_id="t-100"))
    assert (made.decision, made.reason_code) == ("DENY", "ticket.unknown_template")


@settings(max_examples=40, deadline=None)
@given(
    current=st.integers(0, 2_000_000),
    requested=st.integers(0, 3_000_000),
    minutes=st.integers(0, 7 * 24 * 60),
)
def test_decisions_are_deterministic_across_retries(
    current: int, requested: int, minutes: int
) -> None:
    state = ticket(nte_cents=current)
    now = MONDAY_10_CDT + timedelta(minutes=minutes)
    for command in (nte(requested), sms(), ConfirmVisit(visit_id="v1")):
        first = decide(command, state, now)
        again = decide(command, state, now)
        assert msgspec.json.encode(first) == msgspec.json.encode(again)
        assert first.bundle_sha256 == STARTER.sha256
