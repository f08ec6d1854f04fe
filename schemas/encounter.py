"""Encounter commands and events: setup, initiative, turn steps, the end (key: encounter id)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from schemas.base import Command, Event, Key, Name, NonNegativeInt

AdvantageMode = Literal["none", "advantage", "disadvantage"]
Status = Literal["setup", "active", "ended"]

AbilityScore = Annotated[int, Meta(ge=1, le=30, description="An ability score, 1..30.")]
AbilityModifier = Annotated[int, Meta(ge=-5, le=10, description="An ability modifier.")]
InitiativeBonus = Annotated[
    int, Meta(ge=-20, le=20, description="Added to initiative rolls on top of Dexterity.")
]
InitiativeValue = Annotated[int, Meta(ge=-30, le=60, description="An initiative total.")]
Seed = Annotated[int, Meta(ge=0, le=2**63 - 1, description="Seeds every roll of the encounter.")]


class AbilityScores(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A combatant's six ability scores."""

    strength: AbilityScore = 10
    dexterity: AbilityScore = 10
    constitution: AbilityScore = 10
    intelligence: AbilityScore = 10
    wisdom: AbilityScore = 10
    charisma: AbilityScore = 10


class InitiativeRoll(msgspec.Struct, frozen=True, kw_only=True):
    """An initiative roll as recorded: the d20s thrown, the one kept, the modifier, the total."""

    dice: tuple[int, ...]
    natural: int
    modifier: int
    total: int
    advantage: AdvantageMode = "none"


# Commands (cmd.encounter.<encounter_id>.<verb>)


class CreateEncounter(Command, frozen=True, tag="encounter.create.v1"):
    """Open an encounter in setup; ``seed`` makes every later roll reproducible."""

    seed: Seed
    campaign_id: Key
    """The campaign (or guild) the encounter belongs to: the cohort of the ``combat`` flag."""
    name: Name | None = None


class AddCombatant(Command, frozen=True, tag="encounter.add_combatant.v1"):
    """Add a combatant, with ability scores or a Dexterity modifier (neither means +0)."""

    combatant_id: Key
    name: Name
    abilities: AbilityScores | None = None
    dexterity_modifier: AbilityModifier | None = None
    initiative_bonus: InitiativeBonus = 0
    character_ref: Name | None = None
    """Where the character sheet lives, when the combatant is a player character."""


class RemoveCombatant(Command, frozen=True, tag="encounter.remove_combatant.v1"):
    """Take a combatant out of an encounter still in setup."""

    combatant_id: Key


class RollInitiative(Command, frozen=True, tag="encounter.roll_initiative.v1"):
    """Roll initiative for one combatant, or for every combatant that has none yet."""

    combatant_id: Key | None = None
    advantage: AdvantageMode = "none"


class SetInitiative(Command, frozen=True, tag="encounter.set_initiative.v1"):
    """Set an initiative total by hand (a roll made at the table, or a correction in setup)."""

    combatant_id: Key
    value: InitiativeValue


class StartEncounter(Command, frozen=True, tag="encounter.start.v1"):
    """Move from setup to active: round 1, step 1, the first combatant in order acts."""


class NextTurn(Command, frozen=True, tag="encounter.next_turn.v1"):
    """End the current turn step; refused unless ``expected_step`` is the current step."""

    expected_step: NonNegativeInt


class DefeatCombatant(Command, frozen=True, tag="encounter.defeat_combatant.v1"):
    """Mark a combatant defeated: the turn order passes over them from now on."""

    combatant_id: Key


class SkipCombatant(Command, frozen=True, tag="encounter.skip_combatant.v1"):
    """Pass over a combatant's next turn once (surprised, stunned, delaying)."""

    combatant_id: Key


class EndEncounter(Command, frozen=True, tag="encounter.end.v1"):
    """End the encounter, from setup or active."""

    note: Name | None = None


# Events (evt.encounter.<encounter_id>.<name>)


class EncounterCreated(Event, frozen=True, tag="encounter.encounter_created.v1"):
    """An encounter entered setup."""

    seed: int
    campaign_id: str
    name: str | None = None


class CombatantAdded(Event, frozen=True, tag="encounter.combatant_added.v1"):
    """A combatant joined; ``dexterity_modifier`` is resolved from the scores when given."""

    combatant_id: str
    name: str
    dexterity_modifier: int
    initiative_bonus: int = 0
    abilities: AbilityScores | None = None
    character_ref: str | None = None


class CombatantRemoved(Event, frozen=True, tag="encounter.combatant_removed.v1"):
    """A combatant left the encounter during setup."""

    combatant_id: str


class InitiativeRolled(Event, frozen=True, tag="encounter.initiative_rolled.v1"):
    """A combatant's initiative was rolled; ``draw`` is the counter that seeded the RNG."""

    combatant_id: str
    roll: InitiativeRoll
    draw: int


class InitiativeSet(Event, frozen=True, tag="encounter.initiative_set.v1"):
    """A combatant's initiative was set by hand."""

    combatant_id: str
    value: int
    previous: int | None = None


class EncounterStarted(Event, frozen=True, tag="encounter.encounter_started.v1"):
    """Setup became active; ``order`` is the initiative order at that moment."""

    order: tuple[str, ...]


class TurnStarted(Event, frozen=True, tag="encounter.turn_started.v1"):
    """A turn step began: ``combatant_id`` is now the one active combatant."""

    step: int
    round: int
    combatant_id: str


class TurnSkipped(Event, frozen=True, tag="encounter.turn_skipped.v1"):
    """A combatant marked to skip was passed over in ``round``; the mark is spent."""

    combatant_id: str
    round: int


class TurnEnding(Event, frozen=True, tag="encounter.turn_ending.v1"):
    """The current step is ending: effects expire, then mastery resolves, then it ends."""

    step: int
    round: int
    combatant_id: str


class TurnEnded(Event, frozen=True, tag="encounter.turn_ended.v1"):
    """A step ended, after its expirations and mastery procs were resolved."""

    step: int
    round: int
    combatant_id: str


class CombatantDefeated(Event, frozen=True, tag="encounter.combatant_defeated.v1"):
    """A combatant was defeated during ``step``."""

    combatant_id: str
    step: int


class SkipScheduled(Event, frozen=True, tag="encounter.skip_scheduled.v1"):
    """A combatant's next turn will be passed over."""

    combatant_id: str


EndReason = Literal["ended", "all_defeated"]


class EncounterEnded(Event, frozen=True, tag="encounter.encounter_ended.v1"):
    """The encounter ended: by command (``ended``) or because no combatant can act."""

    step: int
    round: int
    reason: EndReason
    from_status: Status
    note: str | None = None


ENCOUNTER_COMMANDS: tuple[type[Command], ...] = (
    CreateEncounter,
    AddCombatant,
    RemoveCombatant,
    RollInitiative,
    SetInitiative,
    StartEncounter,
    NextTurn,
    DefeatCombatant,
    SkipCombatant,
    EndEncounter,
)
ENCOUNTER_EVENTS: tuple[type[Event], ...] = (
    EncounterCreated,
    CombatantAdded,
    CombatantRemoved,
    InitiativeRolled,
    InitiativeSet,
    EncounterStarted,
    TurnStarted,
    TurnSkipped,
    TurnEnding,
    TurnEnded,
    CombatantDefeated,
    SkipScheduled,
    EncounterEnded,
)
EncounterCommand = (
    CreateEncounter
    | AddCombatant
    | RemoveCombatant
    | RollInitiative
    | SetInitiative
    | StartEncounter
    | NextTurn
    | DefeatCombatant
    | SkipCombatant
    | EndEncounter
)
EncounterEvent = (
    EncounterCreated
    | CombatantAdded
    | CombatantRemoved
    | InitiativeRolled
    | InitiativeSet
    | EncounterStarted
    | TurnStarted
    | TurnSkipped
    | TurnEnding
    | TurnEnded
    | CombatantDefeated
    | SkipScheduled
    | EncounterEnded
)
