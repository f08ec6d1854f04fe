"""What an actor is to the runtime: pure decide/evolve functions plus a state store.

An actor folder supplies one ``Actor`` value (usually in ``actor.py``); the
runtime does everything else: consuming, decoding, the ledger, the outbox,
publishing, acking, dead-lettering, preview and query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.base import (
    Command,
    Context,
    Decision,
    Emitted,
    Event,
    Message,
    Rejection,
    domain_of,
    name_of,
)

if TYPE_CHECKING:
    from actors.kernel.bus import Bus
    from actors.kernel.config import Settings

S = TypeVar("S")


class Versioned(msgspec.Struct, Generic[S], frozen=True):
    """A state as stored, with the version optimistic concurrency checks."""

    state: S
    version: int


class Change(msgspec.Struct, Generic[S], frozen=True):
    """One entity's new state for ``StateStore.save``: ``version`` replaces ``previous``."""

    key: str
    state: S
    version: int
    previous: int
    before: S | None = None


class StaleState(Exception):
    """Raised by a store when an entity's stored version moved since it was loaded."""

    def __init__(self, actor: str, keys: Sequence[str]) -> None:
        super().__init__(
            f"{actor}: entities {', '.join(sorted(keys))} changed underneath this batch; "
            "it is rolled back and retried"
        )
        self.actor = actor
        self.keys = list(keys)


class StateStore(Protocol[S]):
    """Loads and saves one actor's entities inside the runtime's transaction."""

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[S]]:
        """The stored state of each key that exists; absent keys are new entities."""
        ...

    async def save(self, conn: AsyncConnection, actor: str, changes: Sequence[Change[S]]) -> None:
        """Write every change; raise ``StaleState`` if any stored version is not ``previous``."""
        ...


@dataclass(frozen=True)
class Services:
    """What an actor's ``lifespan`` gets: the process's bus, engines and settings."""

    bus: Bus
    engine: AsyncEngine
    read_engine: AsyncEngine
    settings: Settings


Lifespan = Callable[[Services], AbstractAsyncContextManager[None]]

Decide = Callable[[S, Any, Context], Decision]
Evolve = Callable[[S, Event], S]


@dataclass(frozen=True, kw_only=True)
class Actor(Generic[S]):
    """An actor: the messages it takes, its pure rules, and where its state lives."""

    name: str
    """Durable consumer and ledger name, unique per actor (``encounter``)."""
    domain: str
    """Its commands arrive on ``cmd.<domain>.>``; its events leave on ``evt.<domain>.>``."""
    state_type: type[S]
    initial: Callable[[str], S]
    """The state of a key never seen before."""
    decide: Decide[S]
    """``decide(state, message, ctx) -> events | Rejection``: pure, no I/O, no clock."""
    evolve: Evolve[S]
    """``evolve(state, event) -> state``: pure; replaying a key's events rebuilds its state."""
    store: StateStore[S]
    commands: Sequence[type[Command]] = ()
    reactions: Sequence[type[Event]] = ()
    """Events of any domain this actor reacts to."""
    emits: Sequence[type[Event]] = ()
    """Every event type ``decide`` may return (the catalogue, audit and AsyncAPI read it)."""
    key_of: Callable[[Message, Context], str] | None = None
    """Which entity a reaction is about; by default the key in its subject."""
    lifespan: Lifespan | None = None
    """Entered before the actor consumes and left at shutdown: for watchers and caches
    ``decide`` reads (a feature flag kept current from a KV bucket, say)."""
    description: str = ""
    secret_state: bool = False
    """State or events hold what some callers must not see (a hidden fleet): with tokens
    on, the gateway keeps ``<domain>.read`` and ``events.read`` closed until scopes are
    configured for them, instead of open to any valid token."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cmd in self.commands:
            if domain_of(cmd) != self.domain:
                raise ValueError(
                    f"actor {self.name}: command {cmd.__qualname__} belongs to "
                    f"domain {domain_of(cmd)!r}, not {self.domain!r}"
                )

    def command_types(self) -> dict[str, type[Command]]:
        """Verb -> command class."""
        return {name_of(c): c for c in self.commands}

    def reaction_types(self) -> dict[tuple[str, str], type[Event]]:
        """(domain, event name) -> event class."""
        return {(domain_of(e), name_of(e)): e for e in self.reactions}


def fold(actor: Actor[S], state: S, events: Sequence[Event]) -> S:
    """Apply ``evolve`` over ``events``: how both the runtime and audit derive state."""
    for event in events:
        state = actor.evolve(state, event)
    return state


def own_events(decision: Sequence[Emitted]) -> list[Event]:
    """The events of a decision that are about the handled key (those folded into its state)."""
    return [e for e in decision if isinstance(e, Event)]


def is_rejection(decision: Decision) -> bool:
    """True if ``decide`` refused the message."""
    return isinstance(decision, Rejection)
