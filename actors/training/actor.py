"""The training actor: training jobs keyed by job id, trained in supervised worker processes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from actors.kernel.actor import Actor, Services
from actors.training import rules
from actors.training.rules import JobState
from actors.training.store import JobStore
from actors.training.supervisor import Supervisor, SupervisorSettings


@contextlib.asynccontextmanager
async def lifespan(services: Services) -> AsyncIterator[None]:
    """Run the job supervisor while the actor consumes; stop its workers (checkpointed) after."""
    supervisor = Supervisor(
        services.bus, services.read_engine, SupervisorSettings.from_env(services.settings)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


ACTOR: Actor[JobState] = Actor(
    name="training",
    domain="training",
    state_type=JobState,
    initial=rules.initial,
    decide=rules.decide,
    evolve=rules.evolve,
    store=JobStore(),
    commands=rules.COMMANDS,
    emits=rules.EMITS,
    lifespan=lifespan,
    description=(
        "Training jobs (key = job id): a DQN agent is trained in a worker process, its "
        "progress becomes events, and on completion it is registered as agent <job id>."
    ),
)

__all__ = ["ACTOR", "lifespan"]
