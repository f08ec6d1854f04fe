"""Errors raised by the tabletop rules: malformed dice, out-of-range scores and levels."""

from __future__ import annotations


class RulesError(ValueError):
    """Raised when a rules call gets input the game system cannot accept."""


class DiceError(RulesError):
    """Raised when a dice expression cannot be rolled."""

    def __init__(self, message: str, *, expression: str) -> None:
        super().__init__(message)
        self.expression = expression


class DiceSyntaxError(DiceError):
    """Raised when a dice expression is malformed; names the offending part and its position."""

    def __init__(self, message: str, *, expression: str, position: int, part: str) -> None:
        super().__init__(message, expression=expression)
        self.position = position
        self.part = part


class DiceLimitError(DiceError):
    """Raised when a well-formed dice expression exceeds a limit (dice, sides, terms, length)."""

    def __init__(
        self, message: str, *, expression: str, limit: str, value: int, bound: int
    ) -> None:
        super().__init__(message, expression=expression)
        self.limit = limit
        self.value = value
        self.bound = bound


class AbilityScoreError(RulesError):
    """Raised when an ability score lies outside 1..30."""

    def __init__(self, score: int) -> None:
        super().__init__(f"ability score {score} is outside 1..30")
        self.score = score


class LevelError(RulesError):
    """Raised when a character level lies outside 1..20."""

    def __init__(self, level: int) -> None:
        super().__init__(f"character level {level} is outside 1..20")
        self.level = level


class CheckError(RulesError):
    """Raised when an ability check is asked with an impossible difficulty class or bonus."""
