"""Contract validators: unknown fields, money, time zones, addresses, windows, scopes, tags."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from actors.dispatch.errors import MalformedRules
from actors.policy.rules import COMMANDS as POLICY_COMMANDS
from actors.policy.rules import EMITS as POLICY_EMITS
from actors.tickets.rules import COMMANDS as TICKET_COMMANDS
from actors.tickets.rules import EMITS as TICKET_EMITS
from actors.workflow.rules import EMITS as WORKFLOW_EMITS
from schemas.base import domain_of, name_of, tag_of, version_of
from schemas.dispatch import (
    ActivateBundle,
    ChangeNte,
    CommsEnvelope,
    Contact,
    DecisionRecorded,
    Money,
    QuietWindow,
    Scope,
    SendComms,
    TimeWindow,
)
from schemas.dispatch.bundle import QuietHoursProfile
from schemas.dispatch.tickets import TicketEventType
from tests.unit.dispatch.builders import Driver, create_ticket, env_for, make_bundle, rules_json

ENVELOPE: dict[str, Any] = {
    "envelope_id": "env-1",
    "channel": "sms",
    "direction": "outbound",
    "to": "+15555550100",
    "sender": "+15555550199",
    "body": "Your technician arrives at 10:00.",
}


def decode(cls: type[Any], data: dict[str, Any]) -> Any:
    return msgspec.json.decode(msgspec.json.encode(data), type=cls)


@pytest.mark.parametrize(
    "cls", [*TICKET_COMMANDS, *TICKET_EMITS, *POLICY_COMMANDS, *POLICY_EMITS, *WORKFLOW_EMITS]
)
def test_every_message_has_a_versioned_tag_in_its_domain(cls: type[Any]) -> None:
    assert tag_of(cls) == f"{domain_of(cls)}.{name_of(cls)}.v{version_of(cls)}"
    assert domain_of(cls) in {"tickets", "policy", "workflow"}
    assert cls.__struct_config__.frozen


def test_commands_refuse_unknown_fields_even_nested() -> None:
    body = {"type": "tickets.change_nte.v1", "nte": {"cents": 1, "currency": "USD"}, "reason": "x"}
    assert decode(ChangeNte, body).nte.cents == 1
    with pytest.raises(msgspec.ValidationError, match="unknown field `surprise`"):
        decode(ChangeNte, {**body, "surprise": True})
    with pytest.raises(msgspec.ValidationError, match=r"unknown field `dollars` - at `\$.nte`"):
        decode(ChangeNte, {**body, "nte": {"cents": 1, "currency": "USD", "dollars": 0.01}})


def test_events_tolerate_unknown_fields() -> None:
    event = {
        "type": "tickets.nte_changed.v1",
        "request_id": "r",
        "correlation_id": "c",
        "decision_id": "d",
        "at": "2025-06-02T15:00:00Z",
        "previous": {"cents": 1, "currency": "USD"},
        "nte": {"cents": 2, "currency": "USD"},
        "reason": "more pipe",
        "added_later": 1,
    }
    decoded = msgspec.convert(event, TicketEventType)
    assert decoded.request_id == "r"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cents": 12.5, "currency": "USD"}, "Expected `int`, got `float`"),
        ({"cents": -1, "currency": "USD"}, "Expected `int` >= 0"),
        ({"cents": 1, "currency": "usd"}, "Expected `str` matching"),
        ({"cents": "100", "currency": "USD"}, "Expected `int`, got `str`"),
    ],
)
def test_money_is_integer_cents(data: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        decode(Money, data)


def test_money_parses_decimal_strings_exactly() -> None:
    assert Money.parse("1250.50", "USD") == Money(cents=125050, currency="USD")
    assert Money.parse("0.1", "EUR").cents == 10
    assert Money.parse("7", "USD").text() == "USD 7.00"
    for bad in ("1.005", "-3", "1e3", "1,000", " 5", "0.1 "):
        with pytest.raises(ValueError, match="plain decimal string"):
            Money.parse(bad, "USD")


def test_datetimes_must_carry_an_offset() -> None:
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        decode(TimeWindow, {"start": "2025-06-02T10:00:00", "end": "2025-06-02T12:00:00Z"})
    with pytest.raises(msgspec.ValidationError, match="not after its start"):
        decode(TimeWindow, {"start": "2025-06-02T10:00:00Z", "end": "2025-06-02T10:00:00Z"})


def test_contacts_and_envelopes_check_addresses_per_channel() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"E\.164"):
        decode(Contact, {"name": "Pat", "phone": "555-0100"})
    with pytest.raises(msgspec.ValidationError, match="needs a phone or an email"):
        decode(Contact, {"name": "Pat"})
    assert decode(CommsEnvelope, ENVELOPE).channel == "sms"
    with pytest.raises(msgspec.ValidationError, match="must be an email address"):
        decode(CommsEnvelope, {**ENVELOPE, "channel": "email"})
    inbound = {"type": "tickets.send_comms.v1", "envelope": {**ENVELOPE, "direction": "inbound"}}
    with pytest.raises(msgspec.ValidationError, match="outbound envelope"):
        decode(SendComms, inbound)


def test_scopes_name_their_region_or_ticket() -> None:
    assert decode(Scope, {"kind": "tenant"}).label() == "tenant"
    assert decode(Scope, {"kind": "region", "id": "west"}).label() == "region:west"
    with pytest.raises(msgspec.ValidationError, match="needs the ticket id"):
        decode(Scope, {"kind": "ticket"})
    with pytest.raises(msgspec.ValidationError, match="takes no id"):
        decode(Scope, {"kind": "tenant", "id": "acme"})
    with pytest.raises(msgspec.ValidationError, match="Expected `str` matching"):
        decode(Scope, {"kind": "region", "id": "west.coast"})


def test_activate_bundle_takes_files_or_a_version() -> None:
    base = {"type": "policy.activate_bundle.v1", "expected_sha256": "0" * 64, "reason": "roll"}
    assert decode(ActivateBundle, {**base, "version": "v1"}).version == "v1"
    with pytest.raises(msgspec.ValidationError, match="either files or a version"):
        decode(ActivateBundle, base)
    files = {"manifest.json": "e30="}  # base64 on the wire
    assert decode(ActivateBundle, {**base, "files": files}).files == {"manifest.json": b"{}"}


def test_bundle_rules_validate_time_zones_and_windows() -> None:
    profile = {"time_zone": "America/Chicago", "windows": [{"start": "21:00", "end": "07:00"}]}
    assert decode(QuietHoursProfile, profile).time_zone == "America/Chicago"
    with pytest.raises(msgspec.ValidationError, match="time zone 'Mars/Olympus' is unknown"):
        decode(QuietHoursProfile, {**profile, "time_zone": "Mars/Olympus"})
    with pytest.raises(msgspec.ValidationError, match="not an IANA name"):
        decode(QuietHoursProfile, {**profile, "time_zone": "../etc/passwd"})
    with pytest.raises(msgspec.ValidationError, match="is empty"):
        decode(QuietWindow, {"start": "07:00", "end": "07:00"})
    with pytest.raises(msgspec.ValidationError, match="cannot start at 24:00"):
        decode(QuietWindow, {"start": "24:00", "end": "07:00"})
    with pytest.raises(msgspec.ValidationError, match="Expected `str` matching"):
        decode(QuietWindow, {"start": "7:00", "end": "08:00"})


def test_nte_thresholds_need_a_limit_and_percent_is_a_decimal_string() -> None:
    data = rules_json()
    data["policy/nte.json"]["default"] = {"ceiling_cents": 100}
    with pytest.raises(MalformedRules, match="absolute_cents, percent or both"):
        make_bundle({"policy/nte.json": data["policy/nte.json"]})
    data["policy/nte.json"]["default"] = {"percent": 12.5}
    with pytest.raises(MalformedRules, match=r"got `float` - at `\$.default.percent`"):
        make_bundle({"policy/nte.json": data["policy/nte.json"]})


def test_decision_record_round_trips_through_json() -> None:
    driver = Driver(env_for(make_bundle()))
    driver.send(create_ticket())
    recorded = next(e for e in driver.events if isinstance(e, DecisionRecorded))
    again = msgspec.json.decode(msgspec.json.encode(recorded), type=DecisionRecorded)
    assert again == recorded
