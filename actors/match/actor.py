"""The match actor: Battleship matches keyed by match id, with agents playing inside ``decide``.

Who can sit in an agent seat is decided by ``AGENTS``: the baseline players always, then any
lookup installed into it. Trained agents arrive through one small hook: if the module
``actors.training.agents`` exists and defines ``trained_agents``, a callable taking the
actor's ``Services`` and returning an async context manager that yields a lookup
``(agent_id) -> Player | None``, the actor enters it before consuming and installs the lookup
for as long as it runs. A lookup is called inside ``decide``: it must answer from memory (load
checkpoints when entered, not per call) and return None for ids it does not know.

The actor also runs ``MatchTelemetry`` over its own events (a queue group on
``evt.match.>``), so live matches produce the ``battleship.engine.*`` spans and the
``battleship_*`` metrics without the pure rules importing any telemetry.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Union

import msgspec
from nats.aio.msg import Msg

from actors.battleship.players import Player as Policy
from actors.battleship.players import baseline
from actors.battleship.telemetry import MatchTelemetry
from actors.kernel.actor import Actor, Services
from actors.match import rules
from actors.match.rules import MatchState
from actors.match.store import MatchStore
from schemas.base import Event

log = logging.getLogger("troupe.match")

AgentLookup = Callable[[str], Policy | None]
"""Finds the policy of an agent id, or None when the id is not one of its agents."""
TrainedAgents = Callable[[Services], AbstractAsyncContextManager[AgentLookup]]
"""The hook's type: given the actor's services, a context yielding a lookup while it is open."""

TRAINED_AGENTS_MODULE: Final = "actors.training.agents"
TRAINED_AGENTS_HOOK: Final = "trained_agents"
TELEMETRY_QUEUE: Final = "troupe.match.telemetry"


class Agents:
    """The agent resolver ``decide`` uses: baselines first, then the installed lookups in order."""

    def __init__(self, lookups: Iterable[AgentLookup] = ()) -> None:
        self._lookups: list[AgentLookup] = list(lookups)

    def __call__(self, agent_id: str) -> Policy | None:
        found = baseline(agent_id)
        if found is not None:
            return found
        for lookup in self._lookups:
            found = lookup(agent_id)
            if found is not None:
                return found
        return None

    def install(self, lookup: AgentLookup) -> None:
        """Add a lookup consulted after the baselines and the lookups installed before it."""
        self._lookups.append(lookup)

    def remove(self, lookup: AgentLookup) -> None:
        """Take an installed lookup out again (once)."""
        with contextlib.suppress(ValueError):
            self._lookups.remove(lookup)


AGENTS = Agents()
"""The process's agent resolver."""


def trained_agents_hook() -> TrainedAgents | None:
    """The trained-agent hook, if ``actors.training.agents`` provides one."""
    try:
        module = importlib.import_module(TRAINED_AGENTS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name in (TRAINED_AGENTS_MODULE, TRAINED_AGENTS_MODULE.rsplit(".", 1)[0]):
            return None
        raise
    hook: TrainedAgents | None = getattr(module, TRAINED_AGENTS_HOOK, None)
    return hook


_events: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[rules.EMITS])  # noqa: UP007


@contextlib.asynccontextmanager
async def lifespan(services: Services) -> AsyncIterator[None]:
    """Install trained agents (when the hook exists) and watch the match events for telemetry."""
    observer = MatchTelemetry()

    async def on_event(msg: Msg) -> None:
        parts = msg.subject.split(".")
        if len(parts) < 4:
            return
        try:
            event: Event = _events.decode(msg.data)
        except msgspec.DecodeError:
            return  # a newer event type: telemetry skips it, the actor's consumers do not
        try:
            observer.observe(parts[2], event, msg.headers)
        except Exception:
            log.exception("match telemetry failed on %s", msg.subject)

    async with contextlib.AsyncExitStack() as stack:
        hook = trained_agents_hook()
        if hook is not None:
            lookup = await stack.enter_async_context(hook(services))
            AGENTS.install(lookup)
            stack.callback(AGENTS.remove, lookup)
        sub = await services.bus.nc.subscribe("evt.match.>", queue=TELEMETRY_QUEUE, cb=on_event)
        stack.push_async_callback(sub.unsubscribe)
        stack.callback(observer.close)
        yield


ACTOR: Actor[MatchState] = Actor(
    name="match",
    domain="match",
    state_type=MatchState,
    initial=rules.initial,
    decide=rules.make_decide(AGENTS),
    evolve=rules.evolve,
    store=MatchStore(),
    commands=rules.COMMANDS,
    emits=rules.EMITS,
    lifespan=lifespan,
    description=(
        "Battleship matches (key = match id): users and agents place fleets and fire in turn; "
        "agents move inside decide, every move is an event."
    ),
    secret_state=True,  # hidden fleets and the seed: only the battleship routes redact them
)

__all__ = [
    "ACTOR",
    "AGENTS",
    "TRAINED_AGENTS_HOOK",
    "TRAINED_AGENTS_MODULE",
    "AgentLookup",
    "Agents",
    "TrainedAgents",
    "lifespan",
    "trained_agents_hook",
]
