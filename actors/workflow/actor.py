"""The workflow actor: reacts to ticket events with proposals only (shadow mode), per ticket."""

from __future__ import annotations

from actors.kernel.actor import Actor
from actors.workflow import rules
from actors.workflow.store import WorkflowStore
from schemas.dispatch.workflow import WorkflowState

STORE = WorkflowStore()

ACTOR: Actor[WorkflowState] = Actor(
    name=rules.NAME,
    domain=rules.DOMAIN,
    state_type=WorkflowState,
    initial=rules.initial,
    decide=rules.bind(STORE.controls.for_context),
    evolve=rules.evolve,
    store=STORE,
    reactions=rules.REACTIONS,
    emits=rules.EMITS,
    description=(
        "Shadow-mode ticket workflow: observes ticket events and records proposals (what it "
        "would do next), checking the kill switch before each; it never sends a command."
    ),
)

__all__ = ["ACTOR", "STORE"]
