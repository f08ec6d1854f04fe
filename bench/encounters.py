"""Full turn steps per second through encounter, effects and mastery, with effects and procs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from actors.effects.actor import ACTOR as EFFECTS
from actors.encounter.actor import make_actor
from actors.kernel.config import Settings
from actors.kernel.host import Host
from actors.mastery.actor import ACTOR as MASTERY
from bench.env import BenchEnv, Result
from schemas import subjects
from schemas.base import Command, domain_of
from schemas.effects import ApplyEffect
from schemas.encounter import AddCombatant, CreateEncounter, NextTurn, SetInitiative, StartEncounter
from schemas.envelope import Outcome
from schemas.headers import Header
from schemas.mastery import RAPID_RESPONSE, RequestProc

GROUP = "encounters"
BARE = "turn steps/s, next_turn only"
FULL = "turn steps/s with an effect and a proc each"
PEOPLE = ("a", "b", "c", "d")

_outcome = msgspec.json.Decoder(Outcome)


class TurnStartedBody(msgspec.Struct):
    step: int
    combatant_id: str


_turn_started = msgspec.json.Decoder(TurnStartedBody)


class Driver:
    """Plays many encounters at once as clients would: publish, then await the consequence."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self.procs = 0

    async def start(self) -> None:
        await self.nc.subscribe("out.>", cb=self._deliver)
        await self.nc.subscribe("evt.encounter.*.turn_started", cb=self._deliver)
        await self.nc.subscribe("evt.mastery.*.mastery_proc", cb=self._count_proc)

    async def _deliver(self, msg: Msg) -> None:
        if msg.subject.startswith("evt."):
            body = _turn_started.decode(msg.data)
            name = f"{msg.subject}.{body.step}"
        else:
            name = msg.subject
        future = self._waiting.pop(name, None)
        if future is not None and not future.done():
            future.set_result(msg.data)

    async def _count_proc(self, msg: Msg) -> None:
        self.procs += 1

    def _expect(self, name: str) -> asyncio.Future[bytes]:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiting[name] = future
        return future

    async def send(self, key: str, command: Command, command_id: str) -> Outcome:
        domain = domain_of(type(command))
        waiting = self._expect(subjects.outcome_subject(domain, command_id))
        await self.js.publish(
            subjects.command_subject_for(type(command), key),
            msgspec.json.encode(command),
            headers={Header.MSG_ID.value: command_id, Header.WANT_OUTCOME.value: "1"},
        )
        outcome = _outcome.decode(await asyncio.wait_for(waiting, 30))
        if outcome.status != "applied":
            raise RuntimeError(f"{command_id} was {outcome.status}: {outcome.rejection}")
        return outcome

    async def setup(self, key: str) -> str:
        """An active encounter; returns who acts in step 1."""
        await self.send(key, CreateEncounter(seed=7, campaign_id="bench"), f"{key}-create")
        for n, cid in enumerate(PEOPLE):
            await self.send(key, AddCombatant(combatant_id=cid, name=cid), f"{key}-add-{cid}")
            await self.send(key, SetInitiative(combatant_id=cid, value=20 - n), f"{key}-init-{cid}")
        started = self._expect(f"{subjects.event_subject('encounter', key, 'turn_started')}.1")
        await self.send(key, StartEncounter(), f"{key}-start")
        return _turn_started.decode(await asyncio.wait_for(started, 30)).combatant_id

    async def step(self, key: str, step: int, active: str, with_effects: bool) -> str:
        """One full turn step; returns who acts next."""
        if with_effects:
            await asyncio.gather(
                self.send(
                    key,
                    ApplyEffect(
                        instance_id=f"fx-{step}",
                        owner=PEOPLE[step % len(PEOPLE)],
                        placed_by=active,
                        kind="BUFF",
                        name="Inspire",
                        duration=1,
                    ),
                    f"{key}-fx-{step}",
                ),
                self.send(
                    key,
                    RequestProc(holder=active, mastery=RAPID_RESPONSE, count=1, step=step),
                    f"{key}-proc-{step}",
                ),
            )
        started = self._expect(
            f"{subjects.event_subject('encounter', key, 'turn_started')}.{step + 1}"
        )
        await self.send(key, NextTurn(expected_step=step), f"{key}-next-{step}")
        return _turn_started.decode(await asyncio.wait_for(started, 30)).combatant_id


async def _measure(
    driver: Driver, prefix: str, encounters: int, steps: int, with_effects: bool
) -> float:
    keys = [f"{prefix}-{n}" for n in range(encounters)]
    active = dict(zip(keys, await asyncio.gather(*(driver.setup(k) for k in keys)), strict=True))

    async def play(key: str) -> None:
        for step in range(1, steps + 1):
            active[key] = await driver.step(key, step, active[key], with_effects)

    began = time.perf_counter()
    await asyncio.gather(*(play(k) for k in keys))
    return encounters * steps / (time.perf_counter() - began)


async def _with_host(
    env: BenchEnv, body: Callable[[Driver], Awaitable[list[Result]]]
) -> list[Result]:
    with env.nats() as server:
        async with env.postgres() as url:
            settings = Settings(database_url=url, nats_url=server.url, fetch_timeout_seconds=0.25)
            host = Host(settings, [make_actor(), EFFECTS, MASTERY], nats_url=server.url)
            await host.start()
            await host.wait_ready()
            nc: Any = await nats.connect(server.url)
            try:
                driver = Driver(nc)
                await driver.start()
                return await body(driver)
            finally:
                await nc.close()
                await host.stop()


async def run(env: BenchEnv) -> list[Result]:
    encounters = env.size(8, 2)
    steps = env.size(30, 3)

    async def body(driver: Driver) -> list[Result]:
        bare = await _measure(driver, "bare", encounters, steps, with_effects=False)
        full = await _measure(driver, "full", encounters, steps, with_effects=True)
        expected = encounters * steps
        if driver.procs != expected:
            raise RuntimeError(f"{driver.procs} mastery procs seen, {expected} expected")
        notes = f"{encounters} encounters at once, {steps} steps each, PostgreSQL"
        return [
            Result(group=GROUP, name=BARE, value=bare, unit="steps/s", notes=notes),
            Result(
                group=GROUP,
                name=FULL,
                value=full,
                unit="steps/s",
                baseline=BARE,
                notes="each step: apply_effect + request_proc, then next_turn; 1 proc per step",
            ),
        ]

    return await _with_host(env, body)
