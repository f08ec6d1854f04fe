"""The encounter actor: initiative, the active combatant and the turn-step state machine."""
