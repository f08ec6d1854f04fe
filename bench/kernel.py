"""The kernel: exactly-once consume/apply/publish against a raw nats-py loop and FastStream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import msgspec
import nats
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage as FastStreamMessage
from nats.js import api as js_api

from actors.kernel import ids, ledger, outbox
from actors.kernel.actor import Actor, Change
from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.db import create_engine
from actors.kernel.host import Host
from actors.kernel.store import JsonStateStore
from bench.env import BenchEnv, Result
from schemas import subjects
from schemas.base import Command, Context, Decision, Event
from schemas.headers import Header

GROUP = "kernel"
Consume = Callable[[str], Awaitable[Callable[[], Awaitable[None]]]]
"""Start consuming from a NATS URL; returns how to stop."""
KEYS = 1000


class Bump(Command, frozen=True, tag="bench.bump.v1"):
    n: int


class Bumped(Event, frozen=True, tag="bench.bumped.v1"):
    n: int
    total: int


class Counter(msgspec.Struct, frozen=True):
    total: int = 0
    count: int = 0


def _decide(state: Counter, message: Any, ctx: Context) -> Decision:
    return [Bumped(n=message.n, total=state.total + message.n)]


def _evolve(state: Counter, event: Event) -> Counter:
    assert isinstance(event, Bumped)
    return Counter(total=event.total, count=state.count + 1)


COUNTER: Actor[Counter] = Actor(
    name="counter",
    domain="bench",
    state_type=Counter,
    initial=lambda key: Counter(),
    decide=_decide,
    evolve=_evolve,
    store=JsonStateStore(Counter),
    commands=[Bump],
    emits=[Bumped],
)


async def _prepublish(url: str, count: int) -> None:
    """Put ``count`` commands in COMMANDS (streams declared as Troupe declares them)."""
    settings = Settings(nats_url=url)
    bus = await Bus.connect(url, settings)
    try:
        await bus.ensure_streams()
        futures = []
        for i in range(count):
            futures.append(
                await bus.js.publish_async(
                    subjects.command_subject("bench", f"k{i % KEYS}", "bump"),
                    msgspec.json.encode(Bump(n=1)),
                    headers={Header.MSG_ID.value: f"c{i}"},
                )
            )
        await asyncio.gather(*futures)
    finally:
        await bus.close()


async def _events_stored(url: str, count: int, within: float = 600) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        async with asyncio.timeout(within):
            while True:
                info = await js.stream_info("EVENTS")
                if info.state.messages >= count:
                    return
                await asyncio.sleep(0.01)
    finally:
        await nc.close()


async def _timed(
    env: BenchEnv,
    count: int,
    consume: Callable[[str], Awaitable[Callable[[], Awaitable[None]]]],
    sync: str = "always",
) -> float:
    """Commands/s for one consumer: publish first, then time consuming them all."""
    with env.nats(sync=sync) as server:
        await _prepublish(server.url, count)
        started = time.perf_counter()
        stop = await consume(server.url)
        await _events_stored(server.url, count)
        elapsed = time.perf_counter() - started
        await stop()
    return count / elapsed


# -- (1) the raw nats-py loop ------------------------------------------------------


async def raw_loop(url: str) -> Callable[[], Awaitable[None]]:
    """Fetch a batch, publish one derived event per message pipelined, ack the batch. No DB."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_consumer(
        "COMMANDS",
        js_api.ConsumerConfig(
            durable_name="raw",
            ack_policy=js_api.AckPolicy.ALL,
            filter_subject="cmd.bench.>",
            max_ack_pending=4096,  # as the runtime's consumers
        ),
    )
    sub = await js.pull_subscribe_bind("raw", stream="COMMANDS")
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                msgs = await sub.fetch(256, timeout=0.5)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            futures = []
            for m in msgs:
                key = m.subject.split(".")[2]
                body = msgspec.json.decode(m.data, type=Bump)
                futures.append(
                    await js.publish_async(
                        f"evt.bench.{key}.bumped",
                        msgspec.json.encode(Bumped(n=body.n, total=body.n)),
                        headers={"Nats-Msg-Id": f"e-{m.metadata.sequence.stream}"},
                    )
                )
            await asyncio.gather(*futures)
            await msgs[-1].ack()

    task = asyncio.create_task(loop())

    async def halt() -> None:
        stop.set()
        await task
        await nc.close()

    return halt


# -- (2) Troupe --------------------------------------------------------------------


def troupe(
    database_url: str, batch: int
) -> Callable[[str], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start(url: str) -> Callable[[], Awaitable[None]]:
        settings = Settings(
            nats_url=url, database_url=database_url, batch_size=batch, fetch_timeout_seconds=0.5
        )
        host = Host(settings, [COUNTER], nats_url=url, serve_requests=False)
        await host.start()

        async def halt() -> None:
            await host.stop()

        return halt

    return start


# -- the hand-written one-transaction-per-message loop -------------------------------


def by_hand(database_url: str) -> Callable[[str], Awaitable[Callable[[], Awaitable[None]]]]:
    """What an exactly-once consumer looks like written directly: one transaction per message."""

    async def start(url: str) -> Callable[[], Awaitable[None]]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        engine = create_engine(database_url)
        store = JsonStateStore(Counter)
        await js.add_consumer(
            "COMMANDS",
            js_api.ConsumerConfig(
                durable_name="hand", ack_policy=js_api.AckPolicy.EXPLICIT, filter_subject="cmd.>"
            ),
        )
        sub = await js.pull_subscribe_bind("hand", stream="COMMANDS")
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                try:
                    (m,) = await sub.fetch(1, timeout=0.5)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                key = m.subject.split(".")[2]
                mid = m.headers["Nats-Msg-Id"] if m.headers else str(m.metadata.sequence.stream)
                now = datetime.now(UTC)
                row: outbox.Row | None = None
                async with engine.begin() as conn:
                    entry = ledger.Entry(mid, m.metadata.sequence.stream)
                    if await ledger.claim(conn, "hand", "COMMANDS", [entry], now):
                        body = msgspec.json.decode(m.data, type=Bump)
                        loaded = await store.load(conn, "hand", [key])
                        old = loaded.get(key)
                        state, version = (old.state, old.version) if old else (Counter(), 0)
                        event = Bumped(n=body.n, total=state.total + body.n)
                        await store.save(
                            conn,
                            "hand",
                            [Change(key, _evolve(state, event), version + 1, version)],
                        )
                        eid = ids.event_id("hand", mid, 0)
                        row = outbox.Row(
                            eid,
                            f"evt.bench.{key}.bumped",
                            key,
                            msgspec.json.encode(event),
                            {"Nats-Msg-Id": eid},
                        )
                        await outbox.add(conn, "hand", [row], now)
                if row is not None:
                    ack = await js.publish(row.subject, row.payload, headers=row.headers)
                    async with engine.begin() as conn:
                        await outbox.mark_published(
                            conn, [outbox.Published(row.event_id, ack.stream, ack.seq)], now
                        )
                await m.ack()

        task = asyncio.create_task(loop())

        async def halt() -> None:
            stop.set()
            await task
            await nc.close()
            await engine.dispose()

        return halt

    return start


# -- (3) FastStream, no database -----------------------------------------------------


async def faststream_loop(url: str) -> Callable[[], Awaitable[None]]:
    """FastStream's JetStream pull subscriber publishing the same event, with no database."""
    broker = NatsBroker(url, logger=None)
    stream = JStream(name="COMMANDS", declare=False)

    @broker.subscriber(
        "cmd.bench.*.bump", stream=stream, durable="faststream", pull_sub=PullSub(batch_size=256)
    )
    async def handle(body: dict[str, Any], msg: FastStreamMessage) -> None:
        key = msg.raw_message.subject.split(".")[2]
        n = int(body["n"])
        await broker.publish(
            {"type": "bench.bumped.v1", "n": n, "total": n},
            f"evt.bench.{key}.bumped",
            headers={"Nats-Msg-Id": f"e-{msg.raw_message.metadata.sequence.stream}"},
            stream="EVENTS",
        )

    await broker.start()

    async def halt() -> None:
        await broker.stop()

    return halt


# -- msgspec's share of per-message CPU -----------------------------------------------


def msgspec_cost_per_message(samples: int = 20000) -> float:
    """Seconds of msgspec work the runtime does per message (decode command, encode event,
    encode/decode state, encode headers), measured on its own."""
    decoder = msgspec.json.Decoder(Bump)
    state_decoder = msgspec.json.Decoder(Counter)
    encoder = msgspec.json.Encoder()
    payload = msgspec.json.encode(Bump(n=1))
    state = msgspec.json.encode(Counter(total=10, count=3))
    headers = {"Nats-Msg-Id": "x" * 36, "Troupe-Causation-Id": "c1", "Troupe-Producer": "counter"}
    started = time.perf_counter()
    for _ in range(samples):
        body = decoder.decode(payload)
        s = state_decoder.decode(state)
        encoder.encode(Bumped(n=body.n, total=s.total + 1))
        encoder.encode(Counter(total=s.total + 1, count=s.count + 1))
        encoder.encode(headers)
    return (time.perf_counter() - started) / samples


async def _cpu_per_message(env: BenchEnv, database_url: str, count: int) -> float:
    """This process's CPU seconds per message during a batched run (servers excluded)."""
    with env.nats() as server:
        await _prepublish(server.url, count)
        cpu = time.process_time()
        stop = await troupe(database_url, 1024)(server.url)
        await _events_stored(server.url, count)
        used = time.process_time() - cpu
        await stop()
    return used / count


async def run(env: BenchEnv) -> list[Result]:
    n = env.size(20000, 300)
    n1 = env.size(3000, 60)
    base = "raw nats-py loop"
    results = [Result(group=GROUP, name=base, value=await _timed(env, n, raw_loop), unit="cmd/s")]
    batched = partial(troupe, batch=1024)
    mid, single = partial(troupe, batch=256), partial(troupe, batch=1)
    scenarios: list[
        tuple[str, Callable[[], AbstractAsyncContextManager[str]], Callable[[str], Consume], int]
    ] = [
        ("troupe postgres batch 1024", env.postgres, batched, n),
        ("troupe postgres batch 256", env.postgres, mid, n),
        ("troupe postgres batch 1", env.postgres, single, n1),
        ("by hand postgres 1 tx/msg", env.postgres, by_hand, n1),
        ("troupe sqlite batch 1024", env.sqlite, batched, n),
        ("troupe sqlite batch 256", env.sqlite, mid, n),
        ("troupe sqlite batch 1", env.sqlite, single, n1),
        ("by hand sqlite 1 tx/msg", env.sqlite, by_hand, n1),
    ]
    for name, database, consumer, count in scenarios:
        async with database() as url:
            rate = await _timed(env, count, consumer(url))
        results.append(Result(group=GROUP, name=name, value=rate, unit="cmd/s", baseline=base))
    rate = await _timed(env, n, faststream_loop)
    results.append(
        Result(group=GROUP, name="faststream, no database", value=rate, unit="cmd/s", baseline=base)
    )
    # What fsync on every JetStream write (sync_interval: always, the default) costs.
    nosync = "raw nats-py loop, sync default"
    rate = await _timed(env, n, raw_loop, sync="default")
    results.append(Result(group="kernel-nosync", name=nosync, value=rate, unit="cmd/s"))
    async with env.postgres() as pg:
        rate = await _timed(env, n, batched(pg), sync="default")
    results.append(
        Result(
            group="kernel-nosync",
            name="troupe postgres batch 1024, sync default",
            value=rate,
            unit="cmd/s",
            baseline=nosync,
        )
    )
    async with env.postgres() as pg:
        cpu = await _cpu_per_message(env, pg, n)
    results.append(
        Result(
            group=GROUP,
            name="msgspec share of CPU per message",
            value=msgspec_cost_per_message() / cpu * 100,
            unit="%",
            higher_is_better=False,
            notes=f"{cpu * 1e6:.0f} us CPU/msg in the actor process",
        )
    )
    return results
