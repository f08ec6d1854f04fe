"""Unit tests of the D&D 5e ruleset."""
