"""Value types shared by the dispatch contracts: money, places, windows, scopes, evidence, comms."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from schemas.base import Key, Name, Text

AwareDatetime = Annotated[datetime, Meta(tz=True, description="RFC 3339 with an offset.")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
Sha256Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="Lower-case hex.")]
Token = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""A lower-case identifier: evidence kinds, incident templates, skills."""
Principal = Annotated[str, Meta(min_length=1, max_length=200)]
Priority = Literal["low", "normal", "high", "emergency"]
Channel = Literal["sms", "email", "voice"]
Cents = Annotated[int, Meta(ge=0, le=10**13, description="Integer minor units (cents).")]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0)]

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MONEY_TEXT = re.compile(r"^[0-9]{1,11}(\.[0-9]{1,2})?$")


def check_time_zone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone known to ``zoneinfo``, else raise ValueError."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        raise ValueError(f"time zone {name!r} is not an IANA name such as 'America/Chicago'")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(
            f"time zone {name!r} is unknown; use an IANA name such as 'America/Chicago'"
        ) from err
    return name


class Money(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An amount in integer minor units of one currency; never a float."""

    cents: Cents
    currency: Currency

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Build from a decimal string ("1250.50"); more than two decimals or a sign is refused."""
        if not _MONEY_TEXT.match(amount):
            raise ValueError(
                f"amount {amount!r} must be a plain decimal string with at most two decimals"
            )
        cents = int(Decimal(amount) * 100)
        return msgspec.convert({"cents": cents, "currency": currency}, cls)

    def text(self) -> str:
        """``USD 1250.50``: for explanations."""
        return f"{self.currency} {self.cents // 100}.{self.cents % 100:02d}"


class GeoPoint(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A WGS84 position in decimal degrees."""

    lat: Latitude
    lon: Longitude


class Site(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the work happens."""

    location: GeoPoint
    address: Text = ""


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who to tell about the ticket; at least one way to reach them."""

    name: Name
    phone: str | None = None
    email: str | None = None

    def __post_init__(self) -> None:
        if self.phone is None and self.email is None:
            raise ValueError("a contact needs a phone or an email")
        if self.phone is not None and not E164.match(self.phone):
            raise ValueError(f"phone {self.phone!r} is not E.164 (+15555550100)")
        if self.email is not None and not EMAIL.match(self.email):
            raise ValueError(f"email {self.email!r} is not an address")


class TimeWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A half-open interval [start, end) of instants."""

    start: AwareDatetime
    end: AwareDatetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after its start")


ScopeKind = Literal["tenant", "region", "ticket"]


class Scope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a kill switch covers: a whole tenant, one of its regions, or one ticket."""

    kind: ScopeKind
    id: Key | None = None
    """The region or ticket id; absent for the tenant scope (the tenant is the entity key)."""

    def __post_init__(self) -> None:
        if self.kind == "tenant" and self.id is not None:
            raise ValueError("a tenant scope takes no id: the tenant is the entity key")
        if self.kind != "tenant" and self.id is None:
            raise ValueError(f"a {self.kind} scope needs the {self.kind} id")

    def label(self) -> str:
        """``region:west``: for explanations and reason details."""
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


RetentionClass = Literal["standard", "legal_hold", "short"]
RedactionState = Literal["none", "pending", "redacted"]


class EvidenceRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An immutable reference to one stored artefact (photo, signature, invoice) of a ticket."""

    evidence_id: Key
    ticket_id: Key
    kind: Token
    """What it shows, matched against incident templates (``photo_after``, ``signature``)."""
    sha256: Sha256Hex
    size_bytes: Annotated[int, Meta(gt=0, le=5 * 1024**3)]
    content_type: Annotated[str, Meta(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]
    object_name: Annotated[str, Meta(min_length=1, max_length=1024)]
    captured_at: AwareDatetime
    captured_by: Principal
    retention_class: RetentionClass = "standard"
    redaction_state: RedactionState = "none"


class CommsEnvelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One message to or from a customer, normalized across providers."""

    envelope_id: Key
    channel: Channel
    direction: Literal["inbound", "outbound"]
    to: Annotated[str, Meta(min_length=3, max_length=320)]
    sender: Annotated[str, Meta(min_length=3, max_length=320)]
    body: Annotated[str, Meta(min_length=1, max_length=4000)]
    template: Token | None = None
    provider: Annotated[str, Meta(max_length=64)] = ""
    provider_message_id: Annotated[str, Meta(max_length=200)] | None = None
    raw_payload: Annotated[str, Meta(max_length=65_536)] | None = None
    """The provider's payload as received, kept verbatim for inbound messages."""

    def __post_init__(self) -> None:
        address = EMAIL if self.channel == "email" else E164
        for field, value in (("to", self.to), ("sender", self.sender)):
            if not address.match(value):
                shape = "an email address" if self.channel == "email" else "E.164 (+15555550100)"
                raise ValueError(f"{field} {value!r} of a {self.channel} message must be {shape}")


__all__ = [
    "E164",
    "EMAIL",
    "AwareDatetime",
    "Cents",
    "Channel",
    "CommsEnvelope",
    "Contact",
    "Currency",
    "EvidenceRecord",
    "GeoPoint",
    "Money",
    "Principal",
    "Priority",
    "RedactionState",
    "RetentionClass",
    "Scope",
    "ScopeKind",
    "Sha256Hex",
    "Site",
    "TimeWindow",
    "Token",
    "check_time_zone",
]
