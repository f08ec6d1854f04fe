"""Mastery commands and events: proc requests checked against expirations (key: encounter id)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from schemas.base import Command, Event, Key, PositiveInt

MasteryName = Annotated[
    str, Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="A mastery, e.g. rapid_response.")
]
ProcCount = Annotated[int, Meta(ge=1, le=1000)]

RAPID_RESPONSE = "rapid_response"


# Commands (cmd.mastery.<encounter_id>.<verb>)


class RequestProc(Command, frozen=True, tag="mastery.request_proc.v1"):
    """Ask for ``count`` procs of ``mastery`` for ``holder`` when step ``step`` resolves.

    Strict mode: ``count`` must equal the qualifying expirations of that step.
    """

    holder: Key
    mastery: MasteryName
    count: ProcCount
    step: PositiveInt


# Events (evt.mastery.<encounter_id>.<name>)


class ProcRequested(Event, frozen=True, tag="mastery.proc_requested.v1"):
    """A proc request was recorded; it is checked when its step's expirations resolve."""

    request_id: str
    holder: str
    mastery: str
    count: int
    step: int


class MasteryProc(Event, frozen=True, tag="mastery.mastery_proc.v1"):
    """A mastery triggered, caused by the expiration of effect ``instance_id`` in ``step``."""

    request_id: str
    holder: str
    mastery: str
    step: int
    instance_id: str
    owner: str
    effect_name: str
    ordinal: int
    """1-based position of this proc among the ``count`` of its request."""
    count: int


class ProcRequestRejected(Event, frozen=True, tag="mastery.proc_request_rejected.v1"):
    """A recorded proc request failed validation: no proc was emitted for it."""

    request_id: str
    holder: str
    mastery: str
    step: int
    code: str
    reason: str
    expected: int
    requested: int


class MasteryResolved(Event, frozen=True, tag="mastery.mastery_resolved.v1"):
    """Every proc and rejection of ``step`` has been emitted: the step may end."""

    step: int
    procs: int = 0
    rejected: int = 0


class MasteryClosed(Event, frozen=True, tag="mastery.mastery_closed.v1"):
    """The encounter ended: requests still pending were rejected, new ones are refused."""

    resolved_through: int
    rejected: int


MASTERY_COMMANDS: tuple[type[Command], ...] = (RequestProc,)
MASTERY_EVENTS: tuple[type[Event], ...] = (
    ProcRequested,
    MasteryProc,
    ProcRequestRejected,
    MasteryResolved,
    MasteryClosed,
)
MasteryEvent = ProcRequested | MasteryProc | ProcRequestRejected | MasteryResolved | MasteryClosed
