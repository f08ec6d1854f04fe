"""Pure rules of the encounter: setup, seeded initiative, the turn-step state machine, the end."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from actors.dnd import Advantage, Dnd5eRuleset, Ruleset
from actors.encounter.flags import ALLOWED
from schemas.base import Command, Context, Decision, Event, Message, Rejection, RejectionKind
from schemas.encounter import (
    AddCombatant,
    CombatantAdded,
    CombatantDefeated,
    CombatantRemoved,
    CreateEncounter,
    DefeatCombatant,
    EncounterCreated,
    EncounterEnded,
    EncounterStarted,
    EndEncounter,
    InitiativeRoll,
    InitiativeRolled,
    InitiativeSet,
    NextTurn,
    RemoveCombatant,
    RollInitiative,
    SetInitiative,
    SkipCombatant,
    SkipScheduled,
    StartEncounter,
    TurnEnded,
    TurnEnding,
    TurnSkipped,
    TurnStarted,
)
from schemas.flags import FlagVerdict
from schemas.mastery import MasteryResolved

MAX_COMBATANTS = 200
"""Most combatants one encounter holds (defeated ones included)."""

RULESET: Ruleset = Dnd5eRuleset()

EncounterStatus = Literal["new", "setup", "active", "ended"]


class Combatant(msgspec.Struct, frozen=True, kw_only=True):
    """One combatant as the encounter tracks it."""

    combatant_id: str
    name: str
    dexterity_modifier: int = 0
    initiative_bonus: int = 0
    initiative: int | None = None
    defeated: bool = False
    skip_next: bool = False
    character_ref: str | None = None


class EncounterState(msgspec.Struct, frozen=True, kw_only=True):
    """An encounter: ``new`` until created, then ``setup`` -> ``active`` -> ``ended``.

    ``step`` counts turns over the whole encounter (1 is the first); ``ending`` is
    true between ``TurnEnding(step)`` and ``TurnEnded(step)``. ``draws`` counts the
    RNG draws made so far, so the next roll is seeded by ``(seed, draws)``.
    """

    encounter_id: str
    status: EncounterStatus = "new"
    seed: int = 0
    campaign_id: str | None = None
    name: str | None = None
    draws: int = 0
    combatants: tuple[Combatant, ...] = ()
    step: int = 0
    round: int = 0
    active_id: str | None = None
    ending: bool = False

    def combatant(self, combatant_id: str) -> Combatant | None:
        """The combatant with that id, if present."""
        for c in self.combatants:
            if c.combatant_id == combatant_id:
                return c
        return None


def initial_state(key: str) -> EncounterState:
    """The state of an encounter id never seen before."""
    return EncounterState(encounter_id=key)


def rng_for(seed: int, draw: int) -> random.Random:
    """The RNG for draw number ``draw`` of an encounter: a pure function of seed and counter."""
    material = hashlib.sha256(f"troupe.encounter:{seed}:{draw}".encode()).digest()
    return random.Random(int.from_bytes(material[:8], "big"))


def tiebreak(seed: int, combatant_id: str) -> str:
    """The last initiative tie-break: a per-encounter shuffle that favours no id or join order."""
    return hashlib.sha256(f"troupe.tiebreak:{seed}:{combatant_id}".encode()).hexdigest()


def initiative_order(state: EncounterState) -> tuple[str, ...]:
    """Combatants holding an initiative, in turn order (defeated ones keep their place).

    Highest total first, then highest Dexterity modifier, then ``tiebreak``, then id.
    """
    ranked = sorted(
        (c for c in state.combatants if c.initiative is not None),
        key=lambda c: (
            -(c.initiative or 0),
            -c.dexterity_modifier,
            tiebreak(state.seed, c.combatant_id),
            c.combatant_id,
        ),
    )
    return tuple(c.combatant_id for c in ranked)


def cohort_of(state: EncounterState, message: Message) -> str | None:
    """The cohort the ``combat`` flag is evaluated for: the campaign of the encounter."""
    if isinstance(message, CreateEncounter):
        return message.campaign_id
    return state.campaign_id


def _reject(kind: RejectionKind, code: str, reason: str, **details: Any) -> Rejection:
    return Rejection(kind=kind, code=code, reason=reason, details=details)


def _unknown_combatant(state: EncounterState, combatant_id: str) -> Rejection:
    return _reject(
        "not_found",
        "unknown_combatant",
        f"encounter {state.encounter_id} has no combatant {combatant_id}",
        combatant_id=combatant_id,
    )


def _walk(
    state: EncounterState, start_index: int, round_: int
) -> tuple[list[TurnSkipped], str | None, int]:
    """From position ``start_index`` (-1 before the first), find who acts next and in which round.

    Defeated combatants are passed silently; one marked to skip is passed once and
    a ``TurnSkipped`` records it. Two laps are enough: the first spends every mark.
    """
    order = initiative_order(state)
    n = len(order)
    skipped: list[TurnSkipped] = []
    spent: set[str] = set()
    for k in range(1, 2 * n + 1):
        index = start_index + k
        combatant = state.combatant(order[index % n])
        round_at = round_ + index // n
        if combatant is None or combatant.defeated:
            continue
        if combatant.skip_next and combatant.combatant_id not in spent:
            spent.add(combatant.combatant_id)
            skipped.append(TurnSkipped(combatant_id=combatant.combatant_id, round=round_at))
            continue
        return skipped, combatant.combatant_id, round_at
    return skipped, None, round_


def _create(state: EncounterState, cmd: CreateEncounter) -> Decision:
    if state.status != "new":
        return _reject(
            "conflict",
            "already_exists",
            f"encounter {state.encounter_id} already exists (status {state.status})",
            status=state.status,
        )
    return [EncounterCreated(seed=cmd.seed, campaign_id=cmd.campaign_id, name=cmd.name)]


def _add(state: EncounterState, cmd: AddCombatant) -> Decision:
    if state.combatant(cmd.combatant_id) is not None:
        return _reject(
            "conflict",
            "duplicate_combatant",
            f"encounter {state.encounter_id} already has a combatant {cmd.combatant_id}",
            combatant_id=cmd.combatant_id,
        )
    if len(state.combatants) >= MAX_COMBATANTS:
        return _reject(
            "invalid",
            "too_many_combatants",
            f"an encounter holds at most {MAX_COMBATANTS} combatants",
            limit=MAX_COMBATANTS,
        )
    modifier = cmd.dexterity_modifier
    if cmd.abilities is not None:
        derived = RULESET.ability_modifier(cmd.abilities.dexterity)
        if modifier is not None and modifier != derived:
            return _reject(
                "invalid",
                "modifier_mismatch",
                f"dexterity_modifier {modifier:+d} disagrees with Dexterity "
                f"{cmd.abilities.dexterity} (modifier {derived:+d}); send one or make them agree",
                dexterity=cmd.abilities.dexterity,
                dexterity_modifier=modifier,
            )
        modifier = derived
    return [
        CombatantAdded(
            combatant_id=cmd.combatant_id,
            name=cmd.name,
            dexterity_modifier=modifier or 0,
            initiative_bonus=cmd.initiative_bonus,
            abilities=cmd.abilities,
            character_ref=cmd.character_ref,
        )
    ]


def _remove(state: EncounterState, cmd: RemoveCombatant) -> Decision:
    if state.combatant(cmd.combatant_id) is None:
        return _unknown_combatant(state, cmd.combatant_id)
    if state.status != "setup":
        return _reject(
            "conflict",
            "not_in_setup",
            f"combatants can only be removed during setup; encounter {state.encounter_id} "
            f"is {state.status}, use defeat_combatant instead",
            status=state.status,
        )
    return [CombatantRemoved(combatant_id=cmd.combatant_id)]


def _initiative_exists(state: EncounterState, c: Combatant) -> Rejection:
    return _reject(
        "conflict",
        "initiative_exists",
        f"{c.combatant_id} already has initiative {c.initiative} in encounter {state.encounter_id}",
        combatant_id=c.combatant_id,
        initiative=c.initiative,
    )


def _roll_initiative(state: EncounterState, cmd: RollInitiative) -> Decision:
    if cmd.combatant_id is not None:
        one = state.combatant(cmd.combatant_id)
        if one is None:
            return _unknown_combatant(state, cmd.combatant_id)
        if one.initiative is not None:
            return _initiative_exists(state, one)
        targets = [one]
    else:
        targets = [c for c in state.combatants if c.initiative is None]
        if not targets:
            return _reject(
                "conflict",
                "initiative_complete",
                f"every combatant of encounter {state.encounter_id} already has initiative"
                if state.combatants
                else f"encounter {state.encounter_id} has no combatants to roll for",
            )
    advantage = Advantage(cmd.advantage)
    events: list[Event] = []
    for offset, c in enumerate(targets):
        draw = state.draws + offset
        d20 = RULESET.roll_initiative(
            rng_for(state.seed, draw),
            dexterity_modifier=c.dexterity_modifier,
            bonus=c.initiative_bonus,
            advantage=advantage,
        )
        roll = InitiativeRoll(
            dice=d20.rolls,
            natural=d20.natural,
            modifier=d20.modifier,
            total=d20.total,
            advantage=cmd.advantage,
        )
        events.append(InitiativeRolled(combatant_id=c.combatant_id, roll=roll, draw=draw))
    return events


def _set_initiative(state: EncounterState, cmd: SetInitiative) -> Decision:
    c = state.combatant(cmd.combatant_id)
    if c is None:
        return _unknown_combatant(state, cmd.combatant_id)
    # Once the order is live, changing a placed combatant would reshuffle turns mid-round.
    if state.status == "active" and c.initiative is not None:
        return _initiative_exists(state, c)
    return [InitiativeSet(combatant_id=c.combatant_id, value=cmd.value, previous=c.initiative)]


def _start(state: EncounterState) -> Decision:
    if state.status != "setup":
        return _reject(
            "conflict",
            "not_in_setup",
            f"encounter {state.encounter_id} is {state.status}; only an encounter in setup "
            "can start",
            status=state.status,
        )
    if not state.combatants:
        return _reject(
            "invalid", "no_combatants", f"encounter {state.encounter_id} has no combatants"
        )
    missing = [c.combatant_id for c in state.combatants if c.initiative is None]
    if missing:
        return _reject(
            "conflict",
            "initiative_missing",
            f"roll or set initiative first for: {', '.join(missing)}",
            combatant_ids=missing,
        )
    skipped, first, round_ = _walk(state, -1, 1)
    assert first is not None, "defeat needs an active encounter, so in setup everyone can act"
    return [
        EncounterStarted(order=initiative_order(state)),
        *skipped,
        TurnStarted(step=1, round=round_, combatant_id=first),
    ]


def _ending_conflict(state: EncounterState, **details: Any) -> Rejection:
    return _reject(
        "conflict",
        "turn_ending",
        f"step {state.step} of encounter {state.encounter_id} is still ending (its "
        "expirations and mastery procs are being resolved); retry once it has ended",
        step=state.step,
        **details,
    )


def _next_turn(state: EncounterState, cmd: NextTurn) -> Decision:
    if state.status != "active":
        return _not_active(state)
    if state.ending:
        return _ending_conflict(state, expected_step=cmd.expected_step)
    if cmd.expected_step != state.step:
        return _reject(
            "conflict",
            "stale_step",
            f"next_turn expected step {cmd.expected_step}, the encounter is at step {state.step}",
            expected_step=cmd.expected_step,
            step=state.step,
        )
    assert state.active_id is not None  # active encounters always have one
    return [TurnEnding(step=state.step, round=state.round, combatant_id=state.active_id)]


def _not_active(state: EncounterState) -> Rejection:
    return _reject(
        "conflict",
        "not_active",
        f"encounter {state.encounter_id} is {state.status}, not active",
        status=state.status,
    )


def _defeat(state: EncounterState, cmd: DefeatCombatant) -> Decision:
    if state.status != "active":
        return _not_active(state)
    c = state.combatant(cmd.combatant_id)
    if c is None:
        return _unknown_combatant(state, cmd.combatant_id)
    if c.defeated:
        return _reject(
            "conflict",
            "already_defeated",
            f"{c.combatant_id} is already defeated",
            combatant_id=c.combatant_id,
        )
    return [CombatantDefeated(combatant_id=c.combatant_id, step=state.step)]


def _skip(state: EncounterState, cmd: SkipCombatant) -> Decision:
    c = state.combatant(cmd.combatant_id)
    if c is None:
        return _unknown_combatant(state, cmd.combatant_id)
    if c.defeated:
        return _reject(
            "conflict",
            "combatant_defeated",
            f"{c.combatant_id} is defeated and has no turns left to skip",
            combatant_id=c.combatant_id,
        )
    if c.skip_next:
        return _reject(
            "conflict",
            "skip_pending",
            f"{c.combatant_id} already skips their next turn",
            combatant_id=c.combatant_id,
        )
    return [SkipScheduled(combatant_id=c.combatant_id)]


def _end(state: EncounterState, cmd: EndEncounter) -> Decision:
    if state.ending:
        return _ending_conflict(state)
    assert state.status in ("setup", "active")
    return [
        EncounterEnded(
            step=state.step,
            round=state.round,
            reason="ended",
            from_status=state.status,
            note=cmd.note,
        )
    ]


def _mastery_resolved(state: EncounterState, event: MasteryResolved) -> Decision:
    # Anything but the step being ended is a duplicate or a stray: nothing to do.
    if state.status != "active" or not state.ending or event.step != state.step:
        return []
    assert state.active_id is not None
    ended = TurnEnded(step=state.step, round=state.round, combatant_id=state.active_id)
    order = initiative_order(state)
    skipped, nxt, round_ = _walk(state, order.index(state.active_id), state.round)
    if nxt is None:
        return [
            ended,
            EncounterEnded(
                step=state.step, round=state.round, reason="all_defeated", from_status="active"
            ),
        ]
    return [ended, *skipped, TurnStarted(step=state.step + 1, round=round_, combatant_id=nxt)]


def _command(state: EncounterState, cmd: Command) -> Decision:
    match cmd:
        case AddCombatant():
            return _add(state, cmd)
        case RemoveCombatant():
            return _remove(state, cmd)
        case RollInitiative():
            return _roll_initiative(state, cmd)
        case SetInitiative():
            return _set_initiative(state, cmd)
        case StartEncounter():
            return _start(state)
        case NextTurn():
            return _next_turn(state, cmd)
        case DefeatCombatant():
            return _defeat(state, cmd)
        case SkipCombatant():
            return _skip(state, cmd)
        case EndEncounter():
            return _end(state, cmd)
    return _reject(
        "invalid",
        "unsupported_message",
        f"the encounter does not handle {type(cmd).__name__}",
    )


def decide(
    state: EncounterState,
    message: Command | Event,
    ctx: Context,
    *,
    combat: FlagVerdict = ALLOWED,
) -> Decision:
    """Decide what an encounter command or a reaction event produces.

    ``combat`` is the ``combat`` flag's verdict for ``cohort_of(state, message)``;
    when it refuses, every command but ``end`` is forbidden (ending stays possible
    so a kill switch never strands running encounters). Reactions are not gated: a
    step already ending is always allowed to finish.
    """
    if isinstance(message, MasteryResolved):
        return _mastery_resolved(state, message)
    if isinstance(message, Event):
        return []
    if not combat.allowed and not isinstance(message, EndEncounter):
        cohort = cohort_of(state, message) or combat.cohort or "this campaign"
        return _reject(
            "forbidden",
            "combat_disabled",
            f"combat is not available for {cohort}: {combat.reason}",
            flag=combat.flag,
            verdict=combat.code,
        )
    if isinstance(message, CreateEncounter):
        return _create(state, message)
    if state.status == "new":
        return _reject(
            "not_found",
            "unknown_encounter",
            f"encounter {state.encounter_id} does not exist; create it first",
        )
    if state.status == "ended":
        return _reject(
            "conflict",
            "encounter_ended",
            f"encounter {state.encounter_id} has ended",
            step=state.step,
        )
    return _command(state, message)


def _replace_combatant(state: EncounterState, combatant_id: str, **changes: Any) -> EncounterState:
    combatants = tuple(
        msgspec.structs.replace(c, **changes) if c.combatant_id == combatant_id else c
        for c in state.combatants
    )
    return msgspec.structs.replace(state, combatants=combatants)


def evolve(state: EncounterState, event: Event) -> EncounterState:
    """Apply one encounter event; other domains' events leave the state as it is."""
    replace = msgspec.structs.replace
    match event:
        case EncounterCreated():
            return replace(
                state,
                status="setup",
                seed=event.seed,
                campaign_id=event.campaign_id,
                name=event.name,
            )
        case CombatantAdded():
            added = Combatant(
                combatant_id=event.combatant_id,
                name=event.name,
                dexterity_modifier=event.dexterity_modifier,
                initiative_bonus=event.initiative_bonus,
                character_ref=event.character_ref,
            )
            return replace(state, combatants=(*state.combatants, added))
        case CombatantRemoved():
            kept = tuple(c for c in state.combatants if c.combatant_id != event.combatant_id)
            return replace(state, combatants=kept)
        case InitiativeRolled():
            state = _replace_combatant(state, event.combatant_id, initiative=event.roll.total)
            return replace(state, draws=max(state.draws, event.draw + 1))
        case InitiativeSet():
            return _replace_combatant(state, event.combatant_id, initiative=event.value)
        case EncounterStarted():
            return replace(state, status="active")
        case TurnStarted():
            return replace(
                state,
                step=event.step,
                round=event.round,
                active_id=event.combatant_id,
                ending=False,
            )
        case TurnSkipped():
            return _replace_combatant(state, event.combatant_id, skip_next=False)
        case TurnEnding():
            return replace(state, ending=True)
        case TurnEnded():
            return replace(state, ending=False)
        case CombatantDefeated():
            return _replace_combatant(state, event.combatant_id, defeated=True, skip_next=False)
        case SkipScheduled():
            return _replace_combatant(state, event.combatant_id, skip_next=True)
        case EncounterEnded():
            return replace(state, status="ended", ending=False, active_id=None)
    return state


def fold(state: EncounterState, events: Sequence[Event]) -> EncounterState:
    """``evolve`` over ``events`` in order."""
    for event in events:
        state = evolve(state, event)
    return state
