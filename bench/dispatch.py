"""Dispatch decisions/s: the tickets actor deciding under the tenant's policy bundle, end to end."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import msgspec
import nats

from actors.dispatch.bundles import shipped
from actors.dispatch.client import DispatchClient
from actors.dispatch.env import PolicyEnvironment, environment
from actors.kernel.actor import Actor
from actors.kernel.config import Settings
from actors.kernel.host import Host
from actors.kernel.store import JsonStateStore
from actors.policy import rules as policy_rules
from actors.policy.actor import ACTOR as POLICY
from actors.tickets import rules as ticket_rules
from actors.tickets.actor import ACTOR as TICKETS
from bench.env import BenchEnv, Result
from schemas import subjects
from schemas.base import Command, Context, Event, Rejection
from schemas.dispatch import ActivateBundle, ChangeNte, CreateTicket, GeoPoint, Money, Site
from schemas.headers import Header


class Bump(Command, frozen=True, tag="benchcount.bump.v1"):
    """The kernel floor's command: count one."""

    by: int


class Counted(Event, frozen=True, tag="benchcount.counted.v1"):
    """The kernel floor's first event."""

    total: int


class Noted(Event, frozen=True, tag="benchcount.noted.v1"):
    """The kernel floor's second event (a ticket command records two)."""

    n: int


class Count(msgspec.Struct, frozen=True):
    """The kernel floor's state."""

    total: int = 0


def _count_decide(state: Count, message: Bump, ctx: Context) -> list[Event]:
    return [Counted(total=state.total + message.by), Noted(n=message.by)]


def _count_evolve(state: Count, event: Event) -> Count:
    return Count(total=event.total) if isinstance(event, Counted) else state


FLOOR: Actor[Count] = Actor(
    name="benchcount",
    domain="benchcount",
    state_type=Count,
    initial=lambda key: Count(),
    decide=_count_decide,
    evolve=_count_evolve,
    store=JsonStateStore(Count),
    commands=[Bump],
    emits=[Counted, Noted],
)

GROUP = "dispatch"
TENANT = "bench"
PRINCIPAL = "user:bench"
TICKET_COUNT = 64


def _create() -> CreateTicket:
    return CreateTicket(
        region="central",
        incident_template="general_maintenance",
        title="Bench ticket",
        site=Site(location=GeoPoint(lat=41.88, lon=-87.63)),
        nte=Money(cents=100_000_000, currency="USD"),
    )


def _raise(i: int) -> ChangeNte:
    # Small increases on a large NTE: every one is allowed, so each records a decision and
    # an nte_changed event (the common path).
    return ChangeNte(nte=Money(cents=100_000_000 + (i + 1) * 100, currency="USD"), reason="bench")


def _environment() -> PolicyEnvironment:
    bundle = shipped("starter")
    control = policy_rules.initial(TENANT)
    ctx = Context(
        key=TENANT,
        message_id="bench-activate",
        subject=subjects.command_subject_for(ActivateBundle, TENANT),
        received_at=datetime.now(UTC),
        correlation_id="bench",
        tenant=TENANT,
        principal=PRINCIPAL,
    )
    command = ActivateBundle(expected_sha256=bundle.sha256, reason="bench", files=bundle.files)
    decision = policy_rules.decide(control, command, ctx)
    assert not isinstance(decision, Rejection)
    for event in decision:
        assert isinstance(event, Event)
        control = policy_rules.evolve(control, event)
    return environment(control)


def decide_in_process(commands: int) -> float:
    """Decisions/s of the pure rules alone (normalize, policy, fold): the ceiling."""
    env = _environment()
    states = {}
    now = datetime.now(UTC)
    for t in range(TICKET_COUNT):
        key = f"b-{t}"
        ctx = Context(
            key=key,
            message_id=f"create-{t}",
            subject=subjects.command_subject_for(CreateTicket, key),
            received_at=now,
            correlation_id="bench",
            tenant=TENANT,
            principal=PRINCIPAL,
        )
        decision = ticket_rules.decide(ticket_rules.initial(key), _create(), ctx, env)
        assert not isinstance(decision, Rejection)
        states[key] = ticket_rules.fold(
            ticket_rules.initial(key), [e for e in decision if isinstance(e, Event)]
        )
    started = time.perf_counter()
    for i in range(commands):
        key = f"b-{i % TICKET_COUNT}"
        ctx = Context(
            key=key,
            message_id=f"nte-{i}",
            subject=subjects.command_subject_for(ChangeNte, key),
            received_at=now,
            correlation_id="bench",
            tenant=TENANT,
            principal=PRINCIPAL,
        )
        decision = ticket_rules.decide(states[key], _raise(i), ctx, env)
        assert not isinstance(decision, Rejection)
        states[key] = ticket_rules.fold(states[key], [e for e in decision if isinstance(e, Event)])
    return commands / (time.perf_counter() - started)


async def _setup(settings: Settings, nats_url: str) -> None:
    """Activate the starter bundle and open the tickets, through the running actors."""
    host = Host(settings, [TICKETS, POLICY], nats_url=nats_url)
    await host.start()
    await host.wait_ready()
    nc = await nats.connect(nats_url)
    try:
        client = DispatchClient(nc, timeout=30)
        bundle = shipped("starter")
        await client.send_control(
            TENANT,
            ActivateBundle(expected_sha256=bundle.sha256, reason="bench", files=bundle.files),
            request_id="bench-activate",
            principal=PRINCIPAL,
        )
        for t in range(TICKET_COUNT):
            await client.send_ticket(
                f"b-{t}", _create(), request_id=f"create-{t}", principal=PRINCIPAL, tenant=TENANT
            )
    finally:
        await nc.close()
        await host.stop()


async def _backlog(nats_url: str, commands: int) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        pending = []
        for i in range(commands):
            key = f"b-{i % TICKET_COUNT}"
            pending.append(
                await js.publish_async(
                    subjects.command_subject_for(ChangeNte, key),
                    msgspec.json.encode(_raise(i)),
                    headers={
                        Header.MSG_ID: f"nte-{i}",
                        Header.TENANT: TENANT,
                        Header.PRINCIPAL: PRINCIPAL,
                    },
                )
            )
        await asyncio.gather(*pending)
    finally:
        await nc.close()


async def end_to_end(database_url: str, nats_url: str, commands: int) -> float:
    """Decisions/s through the actor draining a backlog: fetched from JetStream, decided,
    stored with their rows and events, published and acknowledged."""
    settings = Settings(database_url=database_url, nats_url=nats_url, batch_size=256)
    await _setup(settings, nats_url)
    await _backlog(nats_url, commands)
    host = Host(settings, [TICKETS, POLICY], nats_url=nats_url)
    await host.start()
    try:
        await host.wait_ready()
        runner = next(r for r in host.runners if r.actor.name == TICKETS.name)
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        while runner.stats.applied < commands:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{runner.stats.applied} of {commands} applied in 600 s")
            await asyncio.sleep(0.01)
        return commands / (time.perf_counter() - started)
    finally:
        await host.stop()


async def kernel_floor(database_url: str, nats_url: str, commands: int) -> float:
    """Commands/s of a trivial actor emitting two events per command, draining the same
    backlog: what the runtime costs before any dispatch work."""
    settings = Settings(database_url=database_url, nats_url=nats_url, batch_size=256)
    host = Host(settings, [FLOOR], nats_url=nats_url)
    await host.start()
    await host.wait_ready()
    await host.stop()  # streams exist now; the backlog is published with the actor stopped
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        pending = [
            await js.publish_async(
                subjects.command_subject_for(Bump, f"b-{i % TICKET_COUNT}"),
                msgspec.json.encode(Bump(by=1)),
                headers={Header.MSG_ID: f"bump-{i}"},
            )
            for i in range(commands)
        ]
        await asyncio.gather(*pending)
    finally:
        await nc.close()
    host = Host(settings, [FLOOR], nats_url=nats_url)
    await host.start()
    try:
        await host.wait_ready()
        runner = host.runners[0]
        started = time.perf_counter()
        deadline = time.monotonic() + 600
        while runner.stats.applied < commands:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{runner.stats.applied} of {commands} applied in 600 s")
            await asyncio.sleep(0.01)
        return commands / (time.perf_counter() - started)
    finally:
        await host.stop()


async def run(env: BenchEnv) -> list[Result]:
    commands = env.size(5000, 50)
    results: list[Result] = [
        Result(
            group=GROUP,
            name="decide in process",
            value=decide_in_process(env.size(20_000, 200)),
            unit="decisions/s",
            notes="pure tickets rules under the starter bundle, no I/O: the ceiling",
        )
    ]
    for backend in ("postgres", "sqlite"):
        database = env.postgres() if backend == "postgres" else env.sqlite()
        async with database as url:
            with env.nats() as server:
                floor = await kernel_floor(url, server.url, commands)
        async with env.postgres() if backend == "postgres" else env.sqlite() as url:
            with env.nats() as server:
                rate = await end_to_end(url, server.url, commands)
        results += [
            Result(
                group=GROUP,
                name=f"kernel floor ({backend})",
                value=floor,
                unit="commands/s",
                notes="a trivial actor emitting two events per command, same backlog",
            ),
            Result(
                group=GROUP,
                name=f"decisions via bus ({backend})",
                value=rate,
                unit="decisions/s",
                baseline=f"kernel floor ({backend})",
                notes=f"a backlog of {commands} change_nte over {TICKET_COUNT} tickets, "
                "batch 256; each records its decision row, timeline lines and two events",
            ),
        ]
    return results
