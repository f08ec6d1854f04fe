"""Unit tests of the encounter, effects and mastery rules."""
