"""Pure rules of effects: apply, remove, and expire with full attribution when a step ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from schemas.base import Command, Context, Decision, Event, Rejection, RejectionKind
from schemas.effects import (
    ApplyEffect,
    EffectApplied,
    EffectExpired,
    EffectKind,
    EffectRemoved,
    EffectsClosed,
    Expiration,
    ExpirationsResolved,
    RemovalReason,
    RemoveEffect,
)
from schemas.encounter import EncounterEnded, TurnEnding

MAX_ACTIVE_EFFECTS = 500
"""Most effects active at once in one encounter."""
MAX_INSTANCES = 5000
"""Most effect instances one encounter may ever see (instance ids are never reused)."""


class ActiveEffect(msgspec.Struct, frozen=True, kw_only=True):
    """An effect instance in force."""

    instance_id: str
    owner: str
    placed_by: str
    kind: EffectKind
    name: str
    duration: int
    applied_step: int
    expires_at_step: int


class EffectsState(msgspec.Struct, frozen=True, kw_only=True):
    """The effects of one encounter.

    ``resolved_through`` is the last step whose expirations were emitted, learned
    from the encounter's ``TurnEnding`` events; ``used_ids`` keeps every instance id
    ever applied so an id can never come back after it expired.
    """

    encounter_id: str
    resolved_through: int = 0
    effects: tuple[ActiveEffect, ...] = ()
    used_ids: tuple[str, ...] = ()
    closed: bool = False

    @property
    def current_step(self) -> int:
        """The step an effect applied now starts in: the first step not yet ended."""
        return self.resolved_through + 1

    def effect(self, instance_id: str) -> ActiveEffect | None:
        """The active effect with that id, if any."""
        for e in self.effects:
            if e.instance_id == instance_id:
                return e
        return None


def initial_state(key: str) -> EffectsState:
    """The effects of an encounter id never seen before."""
    return EffectsState(encounter_id=key)


def expires_at(applied_step: int, duration: int) -> int:
    """The step at whose end an effect of ``duration`` applied during ``applied_step`` expires.

    The step it is applied in counts as the first: duration 1 lasts to the end of
    the current turn, duration 2 to the end of the next one.
    """
    return applied_step + duration - 1


def _reject(kind: RejectionKind, code: str, reason: str, **details: Any) -> Rejection:
    return Rejection(kind=kind, code=code, reason=reason, details=details)


def _closed(state: EffectsState) -> Rejection:
    return _reject(
        "conflict",
        "encounter_ended",
        f"encounter {state.encounter_id} has ended; its effects are closed",
    )


def _apply(state: EffectsState, cmd: ApplyEffect) -> Decision:
    if state.closed:
        return _closed(state)
    if cmd.instance_id in state.used_ids:
        return _reject(
            "conflict",
            "duplicate_instance",
            f"effect instance {cmd.instance_id} was already applied in encounter "
            f"{state.encounter_id}; every application needs a new instance_id",
            instance_id=cmd.instance_id,
        )
    if len(state.effects) >= MAX_ACTIVE_EFFECTS or len(state.used_ids) >= MAX_INSTANCES:
        return _reject(
            "invalid",
            "too_many_effects",
            f"encounter {state.encounter_id} holds at most {MAX_ACTIVE_EFFECTS} active and "
            f"{MAX_INSTANCES} total effect instances",
            active=len(state.effects),
            total=len(state.used_ids),
        )
    step = state.current_step
    return [
        EffectApplied(
            instance_id=cmd.instance_id,
            owner=cmd.owner,
            placed_by=cmd.placed_by,
            kind=cmd.kind,
            name=cmd.name,
            duration=cmd.duration,
            applied_step=step,
            expires_at_step=expires_at(step, cmd.duration),
        )
    ]


def _remove(state: EffectsState, cmd: RemoveEffect) -> Decision:
    if state.closed:
        return _closed(state)
    effect = state.effect(cmd.instance_id)
    if effect is None:
        if cmd.instance_id in state.used_ids:
            return _reject(
                "conflict",
                "effect_gone",
                f"effect instance {cmd.instance_id} has already expired or been removed",
                instance_id=cmd.instance_id,
            )
        return _reject(
            "not_found",
            "unknown_effect",
            f"encounter {state.encounter_id} has no effect instance {cmd.instance_id}",
            instance_id=cmd.instance_id,
        )
    return [_removed(effect, "removed", cmd.note)]


def _removed(effect: ActiveEffect, reason: RemovalReason, note: str | None = None) -> EffectRemoved:
    return EffectRemoved(
        instance_id=effect.instance_id,
        owner=effect.owner,
        placed_by=effect.placed_by,
        kind=effect.kind,
        name=effect.name,
        reason=reason,
        note=note,
    )


def _turn_ending(state: EffectsState, event: TurnEnding) -> Decision:
    # A step at or before resolved_through was already handled: a redelivery.
    if state.closed or event.step <= state.resolved_through:
        return []
    # '<=' rather than '==' so that no effect can outlive a step it should have ended in.
    expiring = [e for e in state.effects if e.expires_at_step <= event.step]
    expired = [
        EffectExpired(
            instance_id=e.instance_id,
            owner=e.owner,
            placed_by=e.placed_by,
            kind=e.kind,
            name=e.name,
            step=event.step,
            applied_step=e.applied_step,
            duration=e.duration,
        )
        for e in expiring
    ]
    resolved = ExpirationsResolved(
        step=event.step,
        count=len(expired),
        expirations=tuple(
            Expiration(
                instance_id=e.instance_id,
                owner=e.owner,
                placed_by=e.placed_by,
                kind=e.kind,
                name=e.name,
            )
            for e in expiring
        ),
    )
    return [*expired, resolved]


def _encounter_ended(state: EffectsState) -> Decision:
    if state.closed:
        return []
    removed = [_removed(e, "encounter_ended") for e in state.effects]
    return [
        *removed,
        EffectsClosed(resolved_through=state.resolved_through, removed=len(removed)),
    ]


def decide(state: EffectsState, message: Command | Event, ctx: Context) -> Decision:
    """Decide an effects command, or react to the encounter's ``TurnEnding``/``EncounterEnded``."""
    match message:
        case ApplyEffect():
            return _apply(state, message)
        case RemoveEffect():
            return _remove(state, message)
        case TurnEnding():
            return _turn_ending(state, message)
        case EncounterEnded():
            return _encounter_ended(state)
        case Command():
            return _reject(
                "invalid",
                "unsupported_message",
                f"effects do not handle {type(message).__name__}",
            )
    return []


def _without(state: EffectsState, instance_id: str) -> EffectsState:
    kept = tuple(e for e in state.effects if e.instance_id != instance_id)
    return msgspec.structs.replace(state, effects=kept)


def evolve(state: EffectsState, event: Event) -> EffectsState:
    """Apply one effects event; other domains' events leave the state as it is."""
    replace = msgspec.structs.replace
    match event:
        case EffectApplied():
            effect = ActiveEffect(
                instance_id=event.instance_id,
                owner=event.owner,
                placed_by=event.placed_by,
                kind=event.kind,
                name=event.name,
                duration=event.duration,
                applied_step=event.applied_step,
                expires_at_step=event.expires_at_step,
            )
            return replace(
                state,
                effects=(*state.effects, effect),
                used_ids=(*state.used_ids, event.instance_id),
            )
        case EffectRemoved() | EffectExpired():
            return _without(state, event.instance_id)
        case ExpirationsResolved():
            return replace(state, resolved_through=max(state.resolved_through, event.step))
        case EffectsClosed():
            return replace(state, closed=True, effects=())
    return state


def fold(state: EffectsState, events: Sequence[Event]) -> EffectsState:
    """``evolve`` over ``events`` in order."""
    for event in events:
        state = evolve(state, event)
    return state
