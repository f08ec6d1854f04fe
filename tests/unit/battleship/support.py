"""Contexts, a scripted fleet and a rules driver shared by the Battleship unit tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from actors.battleship.engine import Orientation, Placement
from schemas.base import Context, Decision, Event, Message, Rejection

S = TypeVar("S")

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# A fixed standard fleet:
#      1 2 3 4 5 6 7 8 9 10
#   A  C C C C C . . . . .
#   B  . . . . . . . . . .
#   C  B . . . . . . . . .
#   D  B . . R R R . . . .
#   E  B . . . . . . . . .
#   F  B . . . . . . . S .
#   G  . . . . . . . . S .
#   H  . . . . . . . . S .
#   I  . . . . . . . . . .
#   J  . . . . D D . . . .
FLEET = (
    Placement("carrier", 0, 0, Orientation.HORIZONTAL),
    Placement("battleship", 2, 0, Orientation.VERTICAL),
    Placement("cruiser", 3, 3, Orientation.HORIZONTAL),
    Placement("submarine", 5, 8, Orientation.VERTICAL),
    Placement("destroyer", 9, 4, Orientation.HORIZONTAL),
)
FLEET_CELLS = {
    (0, 0), (0, 1), (0, 2), (0, 3), (0, 4),
    (2, 0), (3, 0), (4, 0), (5, 0),
    (3, 3), (3, 4), (3, 5),
    (5, 8), (6, 8), (7, 8),
    (9, 4), (9, 5),
}  # fmt: skip


def context(
    key: str,
    n: int = 0,
    *,
    domain: str = "match",
    verb: str = "command",
    principal: str | None = None,
    subject: str | None = None,
) -> Context:
    """A context for the ``n``-th message about ``key``, ``n`` seconds after T0."""
    return Context(
        key=key,
        message_id=f"{key}-msg-{n}",
        subject=subject or f"cmd.{domain}.{key}.{verb}",
        received_at=T0 + timedelta(seconds=n),
        correlation_id=f"corr-{key}",
        principal=principal,
    )


class Driver(Generic[S]):
    """Feeds messages to pure rules and folds the accepted events, like the runtime does."""

    def __init__(
        self,
        decide: Callable[[S, Any, Context], Decision],
        evolve: Callable[[S, Event], S],
        state: S,
        key: str,
        domain: str,
    ) -> None:
        self.decide = decide
        self.evolve = evolve
        self.state = state
        self.key = key
        self.domain = domain
        self.n = 0
        self.log: list[Event] = []

    def send(
        self, message: Message, *, principal: str | None = None, subject: str | None = None
    ) -> Sequence[Event] | Rejection:
        """Decide on ``message``; on acceptance fold the events into the state."""
        self.n += 1
        ctx = context(self.key, self.n, domain=self.domain, principal=principal, subject=subject)
        decision = self.decide(self.state, message, ctx)
        if isinstance(decision, Rejection):
            return decision
        events = [e for e in decision if isinstance(e, Event)]
        for event in events:
            self.state = self.evolve(self.state, event)
        self.log.extend(events)
        return events

    def ok(self, message: Message, **kwargs: Any) -> Sequence[Event]:
        """Send and insist on acceptance."""
        result = self.send(message, **kwargs)
        assert not isinstance(result, Rejection), result
        return result

    def refused(self, message: Message, **kwargs: Any) -> Rejection:
        """Send and insist on a rejection that changes nothing."""
        before = self.state
        result = self.send(message, **kwargs)
        assert isinstance(result, Rejection), result
        assert self.state == before
        return result
