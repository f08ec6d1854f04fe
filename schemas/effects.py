"""Effect commands and events: timed buffs and debuffs with attribution (key: encounter id)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from schemas.base import Command, Event, Key, Name

EffectKind = Literal["BUFF", "DEBUFF"]
Duration = Annotated[int, Meta(ge=1, le=10_000, description="Length in turn steps.")]
RemovalReason = Literal["removed", "encounter_ended"]


class Expiration(msgspec.Struct, frozen=True, kw_only=True):
    """One expired effect instance, with the attribution mastery rules check."""

    instance_id: str
    owner: str
    placed_by: str
    kind: EffectKind
    name: str


# Commands (cmd.effects.<encounter_id>.<verb>)


class ApplyEffect(Command, frozen=True, tag="effects.apply_effect.v1"):
    """Put an effect instance on ``owner``, placed by ``placed_by``, for ``duration`` steps."""

    instance_id: Key
    owner: Key
    placed_by: Key
    kind: EffectKind
    name: Name
    duration: Duration


class RemoveEffect(Command, frozen=True, tag="effects.remove_effect.v1"):
    """End an effect early (dispelled, concentration broken): no expiration, no procs."""

    instance_id: Key
    note: Name | None = None


# Events (evt.effects.<encounter_id>.<name>)


class EffectApplied(Event, frozen=True, tag="effects.effect_applied.v1"):
    """An effect instance was applied; it expires when step ``expires_at_step`` ends."""

    instance_id: str
    owner: str
    placed_by: str
    kind: EffectKind
    name: str
    duration: int
    applied_step: int
    expires_at_step: int


class EffectRemoved(Event, frozen=True, tag="effects.effect_removed.v1"):
    """An effect instance ended before its expiry (by command or with the encounter)."""

    instance_id: str
    owner: str
    placed_by: str
    kind: EffectKind
    name: str
    reason: RemovalReason
    note: str | None = None


class EffectExpired(Event, frozen=True, tag="effects.effect_expired.v1"):
    """An effect instance ran out at the end of ``step``."""

    instance_id: str
    owner: str
    placed_by: str
    kind: EffectKind
    name: str
    step: int
    applied_step: int
    duration: int


class ExpirationsResolved(Event, frozen=True, tag="effects.expirations_resolved.v1"):
    """Every expiration of ``step`` has been emitted; ``expirations`` lists them in order."""

    step: int
    count: int
    expirations: tuple[Expiration, ...] = ()


class EffectsClosed(Event, frozen=True, tag="effects.effects_closed.v1"):
    """The encounter ended: no effect can be applied any more."""

    resolved_through: int
    removed: int


EFFECTS_COMMANDS: tuple[type[Command], ...] = (ApplyEffect, RemoveEffect)
EFFECTS_EVENTS: tuple[type[Event], ...] = (
    EffectApplied,
    EffectRemoved,
    EffectExpired,
    ExpirationsResolved,
    EffectsClosed,
)
EffectsCommand = ApplyEffect | RemoveEffect
EffectsEvent = EffectApplied | EffectRemoved | EffectExpired | ExpirationsResolved | EffectsClosed
