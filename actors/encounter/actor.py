"""The encounter actor: the turn-step state machine in tables, gated by the live combat flag."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.encounter import metrics, rules
from actors.encounter.flags import ALLOWED
from actors.encounter.flagstore import RESYNC_SECONDS, FlagHolder, FlagWatcher, bucket_name
from actors.encounter.store import EncounterStore
from actors.encounter.tables import encounters
from actors.kernel.actor import Actor, Decide, Lifespan, Services
from schemas.base import Command, Context, Decision, Event
from schemas.encounter import ENCOUNTER_COMMANDS, ENCOUNTER_EVENTS
from schemas.flags import COMBAT
from schemas.mastery import MasteryResolved

log = logging.getLogger("troupe.encounter")

POLL_SECONDS = 15.0
"""How often the active-encounter and stuck-step gauges are read from the database."""
STUCK_AFTER = timedelta(seconds=60)
"""A step ending for longer than this counts as stuck (effects or mastery not answering)."""


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} must be a number of seconds") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def make_decide(flags: FlagHolder) -> Decide[rules.EncounterState]:
    """``rules.decide`` with the combat verdict of ``flags``, observed for metrics and logs."""

    def decide(state: rules.EncounterState, message: Command | Event, ctx: Context) -> Decision:
        verdict = (
            flags.verdict(rules.cohort_of(state, message))
            if isinstance(message, Command)
            else ALLOWED
        )
        decision = rules.decide(state, message, ctx, combat=verdict)
        try:
            metrics.observe_encounter(message, ctx, decision, verdict)
        except Exception:
            # Losing a data point must never fail a turn.
            log.exception("recording encounter metrics failed")
        return decision

    return decide


async def count_gauges(engine: AsyncEngine, now: datetime | None = None) -> tuple[int, int]:
    """(active encounters, encounters whose step has been ending longer than ``STUCK_AFTER``)."""
    now = now or datetime.now(UTC)
    async with engine.connect() as conn:
        active = await conn.scalar(
            select(func.count()).select_from(encounters).where(encounters.c.status == "active")
        )
        stuck = await conn.scalar(
            select(func.count())
            .select_from(encounters)
            .where(encounters.c.ending, encounters.c.ending_since < now - STUCK_AFTER)
        )
    return int(active or 0), int(stuck or 0)


async def _poll_gauges(engine: AsyncEngine, every: float) -> None:
    while True:
        try:
            metrics.GAUGES.active, metrics.GAUGES.stuck = await count_gauges(engine)
        except Exception as exc:
            log.warning("reading the encounter gauges failed: %s", exc)
        await asyncio.sleep(every)


def make_lifespan(
    flags: FlagHolder, *, resync_seconds: float | None = None, poll_seconds: float | None = None
) -> Lifespan:
    """Watch the flag bucket and poll the gauges while the actor runs."""

    @contextlib.asynccontextmanager
    async def lifespan(services: Services) -> AsyncIterator[None]:
        resync = resync_seconds or _seconds_from_env("TROUPE_FLAG_RESYNC_SECONDS", RESYNC_SECONDS)
        poll = poll_seconds or _seconds_from_env("TROUPE_ENCOUNTER_POLL_SECONDS", POLL_SECONDS)
        watcher = FlagWatcher(
            services.bus.nc,
            services.bus.js,
            bucket_name(services.settings),
            flags,
            replicas=services.settings.streams.replicas,
            resync_seconds=resync,
        )
        await watcher.start()
        poller = asyncio.create_task(_poll_gauges(services.read_engine, poll))
        try:
            yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await poller
            await watcher.stop()

    return lifespan


def make_actor(
    flags: FlagHolder | None = None,
    *,
    resync_seconds: float | None = None,
    poll_seconds: float | None = None,
) -> Actor[rules.EncounterState]:
    """An encounter actor reading the combat flag into ``flags`` (a fresh holder by default)."""
    holder = flags or FlagHolder(COMBAT)
    return Actor(
        name="encounter",
        domain="encounter",
        state_type=rules.EncounterState,
        initial=rules.initial_state,
        decide=make_decide(holder),
        evolve=rules.evolve,
        store=EncounterStore(),
        commands=ENCOUNTER_COMMANDS,
        reactions=(MasteryResolved,),
        emits=ENCOUNTER_EVENTS,
        lifespan=make_lifespan(holder, resync_seconds=resync_seconds, poll_seconds=poll_seconds),
        description=(
            "Encounters: setup, seeded initiative, turn steps (next_turn -> TurnEnding; "
            "MasteryResolved -> TurnEnded, TurnStarted), gated by the combat flag."
        ),
        extra={"flags": holder},
    )


FLAGS = FlagHolder(COMBAT)
"""The combat flag as this process last saw it in the KV bucket."""

ACTOR = make_actor(FLAGS)
