"""Pure rules of masteries: proc requests are honoured only for real qualifying expirations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from schemas.base import Command, Context, Decision, Event, Rejection, RejectionKind
from schemas.effects import Expiration, ExpirationsResolved
from schemas.encounter import EncounterEnded
from schemas.mastery import (
    RAPID_RESPONSE,
    MasteryClosed,
    MasteryProc,
    MasteryResolved,
    ProcRequested,
    ProcRequestRejected,
    RequestProc,
)

MAX_PENDING = 200
"""Most proc requests one encounter may hold waiting for their steps."""


@dataclass(frozen=True)
class Mastery:
    """A mastery that triggers on expirations: which expirations of a step qualify for a holder."""

    name: str
    qualifies: Callable[[Expiration, str], bool]
    rule: str
    """The qualification in words, quoted in rejection reasons."""

    def qualifying(self, expirations: Sequence[Expiration], holder: str) -> list[Expiration]:
        """The expirations of one step that count for ``holder``, in expiration order."""
        return [e for e in expirations if self.qualifies(e, holder)]


def _rapid_response(expiration: Expiration, holder: str) -> bool:
    return expiration.kind == "BUFF" and expiration.placed_by == holder


MASTERIES: Mapping[str, Mastery] = {
    RAPID_RESPONSE: Mastery(
        name=RAPID_RESPONSE,
        qualifies=_rapid_response,
        rule="a BUFF placed by the holder expires",
    ),
}


class PendingRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded proc request waiting for its step's expirations."""

    request_id: str
    holder: str
    mastery: str
    count: int
    step: int


class MasteryState(msgspec.Struct, frozen=True, kw_only=True):
    """The mastery requests of one encounter; ``resolved_through`` is the last resolved step."""

    encounter_id: str
    resolved_through: int = 0
    pending: tuple[PendingRequest, ...] = ()
    closed: bool = False


def initial_state(key: str) -> MasteryState:
    """The mastery state of an encounter id never seen before."""
    return MasteryState(encounter_id=key)


def _reject(kind: RejectionKind, code: str, reason: str, **details: Any) -> Rejection:
    return Rejection(kind=kind, code=code, reason=reason, details=details)


def _request(state: MasteryState, cmd: RequestProc, ctx: Context) -> Decision:
    if state.closed:
        return _reject(
            "conflict",
            "encounter_ended",
            f"encounter {state.encounter_id} has ended; no proc can be requested",
        )
    if cmd.mastery not in MASTERIES:
        known = ", ".join(sorted(MASTERIES))
        return _reject(
            "invalid",
            "unknown_mastery",
            f"unknown mastery {cmd.mastery!r}; known masteries: {known}",
            mastery=cmd.mastery,
        )
    if cmd.step <= state.resolved_through:
        return _reject(
            "conflict",
            "step_resolved",
            f"step {cmd.step} of encounter {state.encounter_id} is already resolved "
            f"(resolved through step {state.resolved_through}); request procs before "
            "the step ends",
            step=cmd.step,
            resolved_through=state.resolved_through,
        )
    for p in state.pending:
        if (p.holder, p.mastery, p.step) == (cmd.holder, cmd.mastery, cmd.step):
            return _reject(
                "conflict",
                "duplicate_request",
                f"{cmd.holder} already requested {cmd.mastery} for step {cmd.step} "
                f"({p.count} procs)",
                request_id=p.request_id,
            )
    if len(state.pending) >= MAX_PENDING:
        return _reject(
            "invalid",
            "too_many_requests",
            f"encounter {state.encounter_id} holds at most {MAX_PENDING} pending proc requests",
            limit=MAX_PENDING,
        )
    return [
        ProcRequested(
            request_id=ctx.message_id,
            holder=cmd.holder,
            mastery=cmd.mastery,
            count=cmd.count,
            step=cmd.step,
        )
    ]


def _refuse(req: PendingRequest, code: str, reason: str, expected: int) -> ProcRequestRejected:
    return ProcRequestRejected(
        request_id=req.request_id,
        holder=req.holder,
        mastery=req.mastery,
        step=req.step,
        code=code,
        reason=reason,
        expected=expected,
        requested=req.count,
    )


def validate(req: PendingRequest, resolved: ExpirationsResolved) -> list[Event]:
    """The procs a request earns in a resolved step, or the one rejection explaining why not."""
    mastery = MASTERIES.get(req.mastery)
    if mastery is None:
        return [_refuse(req, "unknown_mastery", f"unknown mastery {req.mastery!r}", 0)]
    if req.step != resolved.step:
        return [
            _refuse(
                req,
                "step_missed",
                f"step {req.step} never resolved before step {resolved.step}",
                0,
            )
        ]
    qualifying = mastery.qualifying(resolved.expirations, req.holder)
    if len(qualifying) == req.count:
        return [
            MasteryProc(
                request_id=req.request_id,
                holder=req.holder,
                mastery=req.mastery,
                step=req.step,
                instance_id=e.instance_id,
                owner=e.owner,
                effect_name=e.name,
                ordinal=i,
                count=req.count,
            )
            for i, e in enumerate(qualifying, start=1)
        ]
    q = len(qualifying)
    if q:
        code = "count_mismatch"
        reason = (
            f"{req.holder} requested {req.count} {req.mastery} procs in step {req.step}, "
            f"but {q} qualifying expirations occurred ({mastery.rule})"
        )
    else:
        others = sorted(
            {e.placed_by for e in resolved.expirations if mastery.qualifies(e, e.placed_by)}
        )
        if others:
            code = "holder_mismatch"
            reason = (
                f"{req.holder} requested {req.count} {req.mastery} procs in step {req.step}, "
                f"but the qualifying expirations there were placed by {', '.join(others)}"
            )
        else:
            code = "no_qualifying_expirations"
            reason = (
                f"{req.holder} requested {req.count} {req.mastery} procs in step {req.step}, "
                f"but no qualifying expiration occurred ({mastery.rule})"
            )
    return [_refuse(req, code, reason, q)]


def _expirations_resolved(state: MasteryState, event: ExpirationsResolved) -> Decision:
    if state.closed or event.step <= state.resolved_through:
        return []
    # Sorted so the emitted order never depends on which request happened to arrive first.
    due = sorted(
        (r for r in state.pending if r.step <= event.step),
        key=lambda r: (r.step, r.holder, r.mastery, r.request_id),
    )
    out: list[Event] = []
    for req in due:
        out.extend(validate(req, event))
    procs = sum(isinstance(e, MasteryProc) for e in out)
    out.append(MasteryResolved(step=event.step, procs=procs, rejected=len(out) - procs))
    return out


def _encounter_ended(state: MasteryState) -> Decision:
    if state.closed:
        return []
    refused = [
        _refuse(
            req,
            "encounter_ended",
            f"the encounter ended before step {req.step} resolved",
            0,
        )
        for req in sorted(state.pending, key=lambda r: (r.step, r.holder, r.mastery))
    ]
    return [*refused, MasteryClosed(resolved_through=state.resolved_through, rejected=len(refused))]


def decide(state: MasteryState, message: Command | Event, ctx: Context) -> Decision:
    """Decide a proc request, or resolve procs when a step's expirations are complete."""
    match message:
        case RequestProc():
            return _request(state, message, ctx)
        case ExpirationsResolved():
            return _expirations_resolved(state, message)
        case EncounterEnded():
            return _encounter_ended(state)
        case Command():
            return _reject(
                "invalid",
                "unsupported_message",
                f"mastery does not handle {type(message).__name__}",
            )
    return []


def evolve(state: MasteryState, event: Event) -> MasteryState:
    """Apply one mastery event; other domains' events leave the state as it is."""
    replace = msgspec.structs.replace
    match event:
        case ProcRequested():
            req = PendingRequest(
                request_id=event.request_id,
                holder=event.holder,
                mastery=event.mastery,
                count=event.count,
                step=event.step,
            )
            return replace(state, pending=(*state.pending, req))
        case ProcRequestRejected():
            kept = tuple(p for p in state.pending if p.request_id != event.request_id)
            return replace(state, pending=kept)
        case MasteryResolved():
            return replace(
                state,
                resolved_through=max(state.resolved_through, event.step),
                pending=tuple(p for p in state.pending if p.step > event.step),
            )
        case MasteryClosed():
            return replace(state, closed=True, pending=())
    return state


def fold(state: MasteryState, events: Sequence[Event]) -> MasteryState:
    """``evolve`` over ``events`` in order."""
    for event in events:
        state = evolve(state, event)
    return state
