"""The policy bundle file formats: the manifest and the rule files, all strict JSON."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from schemas.base import Key
from schemas.dispatch.common import (
    AwareDatetime,
    Channel,
    Priority,
    Sha256Hex,
    Token,
    check_time_zone,
)
from schemas.dispatch.policy import BundleVersion

BUNDLE_FORMAT: Literal[1] = 1
MANIFEST = "manifest.json"
QUIET_HOURS_FILE = "policy/quiet_hours.json"
NTE_FILE = "policy/nte.json"
EVIDENCE_FILE = "policy/evidence.json"
APPROVALS_FILE = "policy/approvals.json"
RULE_FILES = (QUIET_HOURS_FILE, NTE_FILE, EVIDENCE_FILE, APPROVALS_FILE)

ClockTime = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
"""``HH:MM`` wall-clock time; ``24:00`` only as a window's end (midnight after its day)."""
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Percent = Annotated[str, Meta(pattern=r"^[0-9]{1,4}(\.[0-9]{1,4})?$")]
"""A decimal string such as ``"10"`` or ``"12.5"`` (never a float)."""
PrincipalPattern = Annotated[str, Meta(min_length=1, max_length=200)]
"""A principal or an ``fnmatch`` pattern (``user:*``), matched case-sensitively."""

_TZ_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")


def _zone(name: str) -> str:
    if not _TZ_NAME.match(name):
        raise ValueError(f"time zone {name!r} is not an IANA name such as 'America/Chicago'")
    return check_time_zone(name)


class BundleManifest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``manifest.json``: what the bundle is and the digests that seal it."""

    format: Literal[1]
    version: BundleVersion
    created_at: AwareDatetime
    sha256: Sha256Hex
    """The bundle hash over the canonical serialisation (see docs/dispatch.md)."""
    files: dict[str, Sha256Hex]
    """Every other file of the bundle -> the sha256 of its normalized bytes."""


class QuietWindow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Wall-clock quiet hours [start, end); a window whose end is not after its start crosses
    midnight. ``days`` are the days a window starts on (all days when empty)."""

    start: ClockTime
    end: ClockTime
    days: tuple[Weekday, ...] = ()

    def __post_init__(self) -> None:
        if self.start == "24:00":
            raise ValueError("a quiet window cannot start at 24:00; use 00:00")
        if self.start == self.end:
            raise ValueError(f"quiet window {self.start}-{self.end} is empty")
        if len(set(self.days)) != len(self.days):
            raise ValueError("quiet window days repeat")

    def label(self) -> str:
        """``21:00-07:00`` (with its days, when limited)."""
        days = "" if not self.days else " " + ",".join(self.days)
        return f"{self.start}-{self.end}{days}"


class RegionQuietHours(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A region's differences from its tenant's profile."""

    time_zone: str | None = None
    windows: tuple[QuietWindow, ...] | None = None

    def __post_init__(self) -> None:
        if self.time_zone is not None:
            _zone(self.time_zone)


class QuietHoursProfile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Quiet hours of one tenant, in its time zone."""

    time_zone: str
    windows: tuple[QuietWindow, ...]
    exempt_priorities: tuple[Priority, ...] = ()
    """Ticket priorities that may reach the customer during quiet hours (``emergency``)."""
    gated_channels: tuple[Channel, ...] = ("sms", "voice", "email")
    """Outbound channels quiet hours hold back; visit confirmations are always gated."""
    regions: dict[Key, RegionQuietHours] = {}

    def __post_init__(self) -> None:
        _zone(self.time_zone)


class QuietHoursPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``policy/quiet_hours.json``."""

    default: QuietHoursProfile
    tenants: dict[Key, QuietHoursProfile] = {}


class NteThresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When an NTE increase needs an approval, and the most any ticket may reach.

    An increase needs approval when it is strictly greater than
    ``absolute_cents`` or strictly greater than ``percent`` of the current NTE
    (either one suffices); an increase exactly at a threshold is allowed.
    """

    absolute_cents: Annotated[int, Meta(ge=0)] | None = None
    percent: Percent | None = None
    ceiling_cents: Annotated[int, Meta(ge=0)] | None = None
    """A new NTE strictly above this is denied outright."""

    def __post_init__(self) -> None:
        if self.absolute_cents is None and self.percent is None:
            raise ValueError("NTE thresholds need absolute_cents, percent or both")

    def percent_value(self) -> Decimal | None:
        """``percent`` as an exact Decimal."""
        return None if self.percent is None else Decimal(self.percent)


class NtePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``policy/nte.json``."""

    default: NteThresholds
    tenants: dict[Key, NteThresholds] = {}


class EvidenceRequirement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a closeout of one incident template must cite: evidence kind -> how many."""

    required: dict[Token, Annotated[int, Meta(ge=1, le=100)]]
    description: str = ""


class EvidencePolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``policy/evidence.json``: the incident templates; a ticket's template must be listed."""

    templates: dict[Token, EvidenceRequirement]

    def __post_init__(self) -> None:
        if not self.templates:
            raise ValueError("the evidence policy lists no incident templates")


class ApprovalPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``policy/approvals.json``: who may approve and override, and how long a hold lasts."""

    ttl_seconds: Annotated[int, Meta(ge=60, le=30 * 24 * 3600)]
    approver_principals: tuple[PrincipalPattern, ...]
    allow_self_approval: bool = False
    override_principals: tuple[PrincipalPattern, ...] = ()


class BundleArchive(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="dispatch.bundle_archive.v1",
):
    """A whole bundle in one JSON document: how a bundle is kept in one file or one object of
    the JetStream object store. ``files`` maps every path (manifest.json included) to its
    bytes, base64 in JSON."""

    files: dict[str, bytes]


class BundleRules(msgspec.Struct, frozen=True, kw_only=True):
    """All the rule files of a bundle, parsed."""

    quiet_hours: QuietHoursPolicy
    nte: NtePolicy
    evidence: EvidencePolicy
    approvals: ApprovalPolicy


__all__ = [
    "APPROVALS_FILE",
    "BUNDLE_FORMAT",
    "EVIDENCE_FILE",
    "MANIFEST",
    "NTE_FILE",
    "QUIET_HOURS_FILE",
    "RULE_FILES",
    "WEEKDAYS",
    "ApprovalPolicy",
    "BundleArchive",
    "BundleManifest",
    "BundleRules",
    "ClockTime",
    "EvidencePolicy",
    "EvidenceRequirement",
    "NtePolicy",
    "NteThresholds",
    "Percent",
    "QuietHoursPolicy",
    "QuietHoursProfile",
    "QuietWindow",
    "RegionQuietHours",
    "Weekday",
]
