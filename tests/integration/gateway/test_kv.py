"""The idempotency store on a real NATS KV bucket: compare-and-set, change waits, the full flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js import api as js_api

from actors.kernel.embedded import EmbeddedNats
from gateway.idempotency import (
    IdempotencyConfig,
    IdempotencyStore,
    StoredResponse,
    begin,
    command_id,
    complete,
    fingerprint,
    run_idempotent,
    storage_key,
)
from gateway.kv import IdempotencyBucket, Pending

pytestmark = pytest.mark.asyncio

RETENTION = timedelta(hours=24)
KEY = storage_key("acme", "alice", "k-1")
NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


async def open_bucket(nc: NATS, ttl: timedelta = RETENTION, **kwargs: bool) -> IdempotencyBucket:
    bucket = IdempotencyBucket(nc, nc.jetstream(), "gateway_idempotency", ttl, **kwargs)
    await bucket.start()
    return bucket


def record(body: bytes = b'{"amount": 5}') -> object:
    return begin(
        fingerprint("POST", "/v1/cmd/acct/a1/deposit", body),
        command_id("acme", "alice", "k-1"),
        NOW,
        IdempotencyConfig(),
    )


async def test_it_satisfies_the_store_protocol(nc: NATS) -> None:
    bucket: IdempotencyStore = await open_bucket(nc)
    assert bucket is not None


async def test_compare_and_set(nc: NATS) -> None:
    bucket = await open_bucket(nc)
    first = record()
    assert await bucket.get(KEY) is None
    revision = await bucket.create(KEY, first)  # type: ignore[arg-type]
    assert revision is not None
    assert await bucket.create(KEY, first) is None  # type: ignore[arg-type]
    stored = await bucket.get(KEY)
    assert stored is not None
    assert (stored.record, stored.revision) == (first, revision)
    done = complete(first, 200, b"{}", [("content-type", "application/json")], NOW)  # type: ignore[arg-type]
    assert await bucket.replace(KEY, done, revision + 100) is None
    newer = await bucket.replace(KEY, done, revision)
    assert newer is not None
    assert newer > revision
    assert not await bucket.delete(KEY, revision)
    assert await bucket.delete(KEY, newer)
    assert await bucket.get(KEY) is None
    # A deleted key can be claimed again.
    assert await bucket.create(KEY, first) is not None  # type: ignore[arg-type]
    await bucket.stop()


async def test_waiters_wake_when_another_replica_writes(
    nc: NATS, nats_server: EmbeddedNats
) -> None:
    here = await open_bucket(nc)
    other_nc = await nats.connect(nats_server.url)
    try:
        there = await open_bucket(other_nc)
        revision = await here.create(KEY, record())  # type: ignore[arg-type]
        assert revision is not None
        waiting = asyncio.ensure_future(here.wait_for_change(KEY, revision))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        done = complete(record(), 201, b"{}", [], NOW)  # type: ignore[arg-type]
        assert await there.replace(KEY, done, revision) is not None
        await asyncio.wait_for(waiting, 5)
        # A change that already happened returns at once.
        await asyncio.wait_for(here.wait_for_change(KEY, revision), 5)
        await there.stop()
    finally:
        await other_nc.close()
    await here.stop()


async def test_start_is_idempotent_and_raises_a_short_max_age(nc: NATS) -> None:
    js = nc.jetstream()
    await js.create_key_value(
        js_api.KeyValueConfig(bucket="gateway_idempotency", history=1, ttl=60)
    )
    bucket = await open_bucket(nc)
    info = await js.stream_info("KV_gateway_idempotency")
    assert info.config.max_age == pytest.approx(RETENTION.total_seconds())
    await bucket.stop()
    again = await open_bucket(nc)
    await again.check()
    await again.stop()


async def test_memory_storage(nc: NATS) -> None:
    bucket = await open_bucket(nc, memory=True)
    info = await nc.jetstream().stream_info("KV_gateway_idempotency")
    assert info.config.storage == js_api.StorageType.MEMORY
    await bucket.stop()


async def test_pending_markers(nc: NATS) -> None:
    bucket = await open_bucket(nc)
    pending = Pending(
        command_id="c-1",
        domain="acct",
        key="a1",
        command="acct.deposit.v1",
        tenant="acme",
        principal="alice",
        status_url="/v1/outcomes/acct/c-1",
        sent_at=NOW,
    )
    assert await bucket.get_pending("acct", "c-1") is None
    await bucket.put_pending(pending)
    assert await bucket.get_pending("acct", "c-1") == pending
    assert await bucket.get_pending("tally", "c-1") is None
    await bucket.stop()


@pytest.mark.parametrize("background", [False, True])
async def test_fifty_concurrent_identical_requests_execute_once(nc: NATS, background: bool) -> None:
    bucket = await open_bucket(nc)
    calls: list[str] = []
    release = asyncio.Event()
    settled: list[asyncio.Task[Any]] = []

    async def execute(command: str) -> StoredResponse:
        calls.append(command)
        await release.wait()
        return StoredResponse(status_code=200, body=msgspec.json.encode({"id": command}))

    def settle(update: Coroutine[Any, Any, Any]) -> None:
        settled.append(asyncio.ensure_future(update))

    request = fingerprint("POST", "/v1/cmd/acct/a1/deposit", b'{"amount": 5}')

    async def one() -> object:
        return await run_idempotent(
            bucket,
            tenant="acme",
            subject="alice",
            key="k-50",
            request=request,
            execute=execute,
            settle=settle if background else None,
        )

    tasks = [asyncio.ensure_future(one()) for _ in range(50)]
    # Hold the original until the 49 others wait on its key, so the wait path is what runs.
    deadline = asyncio.get_running_loop().time() + 10
    while sum(len(w) for w in bucket._waiters.values()) < 49:
        assert asyncio.get_running_loop().time() < deadline, "the copies never waited"
        await asyncio.sleep(0.01)
    assert len(calls) == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == [command_id("acme", "alice", "k-50")]
    assert sum(not r.replayed for r in results) == 1  # type: ignore[attr-defined]
    assert {r.response.body for r in results} == {msgspec.json.encode({"id": calls[0]})}  # type: ignore[attr-defined]
    await asyncio.gather(*settled)
    stored = await bucket.get(storage_key("acme", "alice", "k-50"))
    assert stored is not None
    assert stored.record.state == "completed"
    await bucket.stop()
