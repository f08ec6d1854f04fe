"""Dice expressions (``2d6+3``, ``4d6kh3``, ``1d8+2d6-1``): parsed within limits, rolled."""

from __future__ import annotations

import random
from typing import Literal

import msgspec

from actors.dnd.errors import DiceLimitError, DiceSyntaxError

MAX_EXPRESSION_LENGTH = 200
"""Longest expression accepted, in characters."""
MAX_DICE = 100
"""Most dice one expression may roll, summed over its terms."""
MIN_SIDES = 2
MAX_SIDES = 1000
MAX_TERMS = 20
"""Most dice groups and numbers one expression may add up."""
MAX_CONSTANT = 10_000
"""Largest absolute value of a number in an expression and of their sum."""

Keep = Literal["kh", "kl"]
Sign = Literal[1, -1]


class DiceTerm(msgspec.Struct, frozen=True, kw_only=True):
    """One group of identical dice, such as ``-2d6`` or ``4d6kh3``."""

    count: int
    sides: int
    sign: Sign = 1
    keep: Keep | None = None
    keep_count: int | None = None

    @property
    def kept_count(self) -> int:
        """How many of the rolled dice count towards the total."""
        return self.count if self.keep_count is None else self.keep_count

    @property
    def minimum(self) -> int:
        """Smallest signed contribution this term can make."""
        return self.kept_count if self.sign > 0 else -self.kept_count * self.sides

    @property
    def maximum(self) -> int:
        """Largest signed contribution this term can make."""
        return self.kept_count * self.sides if self.sign > 0 else -self.kept_count

    def __str__(self) -> str:
        keep = "" if self.keep is None else f"{self.keep}{self.keep_count}"
        return f"{self.count}d{self.sides}{keep}"


class DiceExpression(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed expression: dice groups in written order plus the sum of its plain numbers."""

    terms: tuple[DiceTerm, ...]
    modifier: int = 0

    @property
    def dice_count(self) -> int:
        """How many dice rolling this expression throws."""
        return sum(t.count for t in self.terms)

    @property
    def minimum(self) -> int:
        """Smallest total a roll can produce."""
        return sum(t.minimum for t in self.terms) + self.modifier

    @property
    def maximum(self) -> int:
        """Largest total a roll can produce."""
        return sum(t.maximum for t in self.terms) + self.modifier

    def __str__(self) -> str:
        parts: list[str] = []
        for term in self.terms:
            if term.sign < 0:
                parts.append(f"-{term}")
            else:
                parts.append(f"+{term}" if parts else str(term))
        if self.modifier or not parts:
            parts.append(f"{self.modifier:+d}" if parts else str(self.modifier))
        return "".join(parts)


class DiceRoll(msgspec.Struct, frozen=True, kw_only=True):
    """What one dice group rolled: every die in throw order and the ones that counted."""

    term: str
    sides: int
    sign: Sign
    rolls: tuple[int, ...]
    kept: tuple[int, ...]
    subtotal: int


class RollResult(msgspec.Struct, frozen=True, kw_only=True):
    """A rolled expression, complete enough for an event to record and an audit to re-check."""

    expression: str
    groups: tuple[DiceRoll, ...]
    modifier: int
    total: int

    @property
    def dice(self) -> tuple[int, ...]:
        """Every die thrown, group after group."""
        return tuple(d for g in self.groups for d in g.rolls)

    @property
    def kept(self) -> tuple[int, ...]:
        """Every die that counted towards the total, group after group."""
        return tuple(d for g in self.groups for d in g.kept)


class _Scanner:
    """A cursor over the lower-cased expression that reports errors against the original text."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.text = text.lower()
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def digits(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in "0123456789":
            self.pos += 1
        return self.text[start : self.pos]

    def word_at(self, pos: int) -> str:
        """The run of characters at ``pos`` up to the next space or operator: the bad part."""
        end = pos
        while end < len(self.text) and not self.text[end].isspace() and self.text[end] not in "+-":
            end += 1
        return self.original[pos : max(end, pos + 1)]

    def fail(self, what: str, pos: int | None = None) -> DiceSyntaxError:
        at = self.pos if pos is None else pos
        if at >= len(self.text):
            found, part = "the end of the expression", ""
        else:
            part = self.word_at(at)
            found = repr(part)
        return DiceSyntaxError(
            f"{what} at position {at} of {self.original!r}, found {found}",
            expression=self.original,
            position=at,
            part=part,
        )


def _limit(expression: str, limit: str, value: int, bound: int, message: str) -> DiceLimitError:
    return DiceLimitError(
        f"{message}; expression {expression!r}",
        expression=expression,
        limit=limit,
        value=value,
        bound=bound,
    )


def _operand(scan: _Scanner, sign: Sign) -> DiceTerm | int:
    start = scan.pos
    count_digits = scan.digits()
    if scan.peek() != "d":
        if not count_digits:
            raise scan.fail("expected a dice term such as 2d6 or a number", start)
        value = int(count_digits)
        if value > MAX_CONSTANT:
            raise _limit(
                scan.original,
                "constant",
                value,
                MAX_CONSTANT,
                f"the number {value} exceeds {MAX_CONSTANT}",
            )
        return sign * value
    scan.pos += 1
    if scan.peek() == "%":
        scan.pos += 1
        sides = 100
    else:
        sides_digits = scan.digits()
        if not sides_digits:
            raise scan.fail("expected the number of sides after 'd'")
        sides = int(sides_digits)
    count = int(count_digits) if count_digits else 1
    written = scan.original[start : scan.pos]
    if count < 1:
        raise _limit(scan.original, "count", count, 1, f"{written!r} rolls no dice")
    if count > MAX_DICE:
        raise _limit(
            scan.original,
            "dice",
            count,
            MAX_DICE,
            f"{written!r} rolls {count} dice, more than {MAX_DICE}",
        )
    if not MIN_SIDES <= sides <= MAX_SIDES:
        raise _limit(
            scan.original,
            "sides",
            sides,
            MAX_SIDES if sides > MAX_SIDES else MIN_SIDES,
            f"{written!r} asks for {sides}-sided dice; sides must be {MIN_SIDES}..{MAX_SIDES}",
        )
    keep: Keep | None = None
    keep_count: int | None = None
    if scan.peek() == "k":
        keep_at = scan.pos
        scan.pos += 1
        mode = scan.peek()
        if mode == "h":
            keep = "kh"
        elif mode == "l":
            keep = "kl"
        else:
            raise scan.fail("expected 'kh' (keep highest) or 'kl' (keep lowest)", keep_at)
        scan.pos += 1
        keep_digits = scan.digits()
        if not keep_digits:
            raise scan.fail(f"expected how many dice to keep after {keep!r}")
        keep_count = int(keep_digits)
        written = scan.original[start : scan.pos]
        if not 1 <= keep_count <= count:
            raise _limit(
                scan.original,
                "keep",
                keep_count,
                count,
                f"{written!r} keeps {keep_count} of {count} dice; keep 1..{count}",
            )
    return DiceTerm(count=count, sides=sides, sign=sign, keep=keep, keep_count=keep_count)


def parse(expression: str) -> DiceExpression:
    """Parse ``expression``; raise ``DiceSyntaxError`` or ``DiceLimitError`` naming the bad part.

    Grammar: terms joined by ``+`` or ``-`` (an optional sign before the first), each a
    number or ``[N]dM[khK|klK]`` where ``d%`` means ``d100``; spaces between terms are ignored.
    """
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise DiceLimitError(
            f"dice expression of {len(expression)} characters exceeds {MAX_EXPRESSION_LENGTH}",
            expression=expression[:MAX_EXPRESSION_LENGTH],
            limit="length",
            value=len(expression),
            bound=MAX_EXPRESSION_LENGTH,
        )
    scan = _Scanner(expression)
    scan.skip_space()
    if not scan.peek():
        raise DiceSyntaxError("empty dice expression", expression=expression, position=0, part="")
    terms: list[DiceTerm] = []
    modifier = 0
    operands = 0
    sign: Sign = 1
    if scan.peek() in "+-":
        sign = -1 if scan.peek() == "-" else 1
        scan.pos += 1
        scan.skip_space()
    while True:
        operand = _operand(scan, sign)
        operands += 1
        if operands > MAX_TERMS:
            raise _limit(expression, "terms", operands, MAX_TERMS, f"more than {MAX_TERMS} terms")
        if isinstance(operand, DiceTerm):
            terms.append(operand)
            dice = sum(t.count for t in terms)
            if dice > MAX_DICE:
                raise _limit(
                    expression, "dice", dice, MAX_DICE, f"{dice} dice in all, more than {MAX_DICE}"
                )
        else:
            modifier += operand
            if abs(modifier) > MAX_CONSTANT:
                raise _limit(
                    expression,
                    "constant",
                    abs(modifier),
                    MAX_CONSTANT,
                    f"the numbers add up to {modifier}, beyond ±{MAX_CONSTANT}",
                )
        scan.skip_space()
        op = scan.peek()
        if not op:
            break
        if op not in "+-":
            raise scan.fail("expected '+' or '-' between terms")
        sign = -1 if op == "-" else 1
        scan.pos += 1
        scan.skip_space()
    return DiceExpression(terms=tuple(terms), modifier=modifier)


def _keep(term: DiceTerm, rolls: tuple[int, ...]) -> tuple[int, ...]:
    if term.keep is None or term.keep_count is None:
        return rolls
    # Ties go to the earlier die so the kept dice are a deterministic function of the rolls.
    if term.keep == "kh":
        ranked = sorted(range(len(rolls)), key=lambda i: (-rolls[i], i))
    else:
        ranked = sorted(range(len(rolls)), key=lambda i: (rolls[i], i))
    chosen = set(ranked[: term.keep_count])
    return tuple(r for i, r in enumerate(rolls) if i in chosen)


def roll(rng: random.Random, expression: str | DiceExpression) -> RollResult:
    """Roll ``expression`` with ``rng``; the same RNG state always gives the same result."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    groups: list[DiceRoll] = []
    for term in parsed.terms:
        rolls = tuple(rng.randint(1, term.sides) for _ in range(term.count))
        kept = _keep(term, rolls)
        groups.append(
            DiceRoll(
                term=f"{'-' if term.sign < 0 else '+'}{term}",
                sides=term.sides,
                sign=term.sign,
                rolls=rolls,
                kept=kept,
                subtotal=term.sign * sum(kept),
            )
        )
    total = sum(g.subtotal for g in groups) + parsed.modifier
    return RollResult(
        expression=str(parsed), groups=tuple(groups), modifier=parsed.modifier, total=total
    )
