"""Shadow replay records: recorded decisions against what another bundle would decide."""

from __future__ import annotations

import msgspec

from schemas.base import Key
from schemas.dispatch.common import AwareDatetime
from schemas.dispatch.records import DecisionValue
from schemas.dispatch.tickets import TicketEventType


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded ticket event in stream order, as replay reads it."""

    ticket_id: Key
    event: TicketEventType
    stream_seq: int = 0


class DecisionBrief(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of a decision a replay compares."""

    decision: DecisionValue
    reason_code: str
    rule: str
    bundle_version: str
    bundle_sha256: str


class ShadowRecord(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="dispatch.shadow_record.v1"
):
    """One JSON line of a replay: a recorded decision beside the would-be one."""

    bundle_version: str
    bundle_sha256: str
    """The bundle the would-be decision used: every record is stamped with it."""
    ticket_id: str
    tenant: str
    request_id: str
    correlation_id: str
    intent: str
    at: AwareDatetime
    stream_seq: int
    recorded: DecisionBrief
    would_be: DecisionBrief
    flipped: bool
    """True when the decision value differs (ALLOW, DENY, REQUIRE_APPROVAL)."""
    flip: str | None = None
    """``ALLOW->REQUIRE_APPROVAL`` when flipped."""
    reason_changed: bool = False
    carried: bool = False
    """True for decisions no bundle makes (kill switch, ticket state): copied, never flipped."""
    command_seq: int = 0
    """The command's sequence in the COMMANDS stream (0 once it aged out of the stream)."""


class ShadowSummary(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="dispatch.shadow_summary.v1"
):
    """Totals of one replay, the last line of its artefact."""

    bundle_version: str
    bundle_sha256: str
    decisions: int
    flipped: int
    carried: int
    reason_changed: int
    flips: dict[str, int]
    tenant: str = ""
    """The tenant these totals cover ('' for a replay of one bundle over every tenant)."""
    commands: int = 0
    """Ticket commands found in the COMMANDS stream for the replayed span."""
    undecided: int = 0
    """Of those, commands with no recorded decision: refused before any policy ran (unknown
    ticket, another tenant's ticket, a command that does not normalize) or not yet handled."""


__all__ = ["DecisionBrief", "HistoryEntry", "ShadowRecord", "ShadowSummary"]
