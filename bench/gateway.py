"""The gateway: HTTP command round trips next to a raw nats-py publish-and-await-outcome loop.

Both loops drive the same ``troupe up`` (a subprocess with the accounts test
actor, on a fresh nats-server and PostgreSQL database) at the same concurrency,
in the same run: the ratio is what the gateway adds (HTTP, the idempotency
record in NATS KV, and sharing ``troupe up``'s one process with the actors) on
top of the bus round trip. The HTTP client is aiohttp when installed: httpx
spends several times more CPU per request, which a 32-way loop turns into
latency of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import httpx
import msgspec
import nats
from nats.aio.client import Client as NATS

from actors.kernel.bus import Bus
from actors.kernel.config import Settings
from actors.kernel.embedded import free_port
from bench.env import BenchEnv, Result
from schemas import subjects
from schemas.envelope import Outcome
from schemas.headers import Header

GROUP = "gateway"
CONCURRENCY = 32
ROOT = Path(__file__).resolve().parents[1]
ACTORS = "tests.support.accounts:ACCOUNTS"

_OUTCOME = msgspec.json.Decoder(Outcome)


class BenchFailed(RuntimeError):
    """Raised when the gateway under test does not start or answers wrongly."""


@contextlib.asynccontextmanager
async def _troupe(nats_url: str, database_url: str, home: Path) -> AsyncIterator[str]:
    """``troupe up`` against the given services; yields the gateway's base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TROUPE_", "OTEL_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TROUPE_NATS_URL": nats_url,
            "TROUPE_DATABASE_URL": database_url,
            "TROUPE_EXTRA_ACTORS": ACTORS,
            "TROUPE_LOG_LEVEL": "WARNING",
            "TROUPE_LOG_FORMAT": "json",
        }
    )
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    log = home / "troupe-up.log"
    with open(log, "wb") as out:  # noqa: ASYNC230 - an instant local open before the child starts
        process = subprocess.Popen(  # noqa: ASYNC220 - the child runs on; nothing waits on it here
            [
                sys.executable,
                "-m",
                "troupe.cli",
                "up",
                "--http",
                f"127.0.0.1:{port}",
                "--home",
                str(home),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if process.poll() is not None:
                    raise BenchFailed(f"troupe up exited: {log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/status")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchFailed("troupe up was not ready within 120s")
                await asyncio.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, 60)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def _workers(
    count: int, per_worker: int, step: Callable[[int, int], Awaitable[None]]
) -> tuple[list[float], float]:
    """Run ``count`` workers doing ``per_worker`` steps each; (latencies, wall seconds)."""
    latencies: list[float] = []

    async def worker(w: int) -> None:
        for i in range(per_worker):
            started = time.perf_counter()
            await step(w, i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(count)))
    return latencies, time.perf_counter() - started


async def _raw_step(nc: NATS, key: str) -> None:
    """What a careful client does without the gateway: subscribe, publish with an id, await."""
    command_id = str(uuid.uuid4())
    sub = await nc.subscribe(subjects.outcome_subject("acct", command_id), max_msgs=1)
    try:
        await nc.jetstream().publish(
            subjects.command_subject("acct", key, "deposit"),
            b'{"amount":1}',
            headers={Header.MSG_ID.value: command_id, Header.WANT_OUTCOME.value: "1"},
        )
        msg = await sub.next_msg(timeout=30)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    if _OUTCOME.decode(msg.data).status != "applied":
        raise BenchFailed(f"raw deposit to {key} was not applied: {msg.data!r}")


class HttpClient(Protocol):
    """Posts a body and returns (status, body): the one thing the loop needs from a client."""

    name: str

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]: ...


class AiohttpClient:
    """aiohttp's client: C-accelerated, so the client's own cost stays small."""

    name = "aiohttp"

    def __init__(self, base: str) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(limit=CONCURRENCY)
        )

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        async with self._session.post(path, data=body, headers=headers) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        await self._session.close()


class HttpxClient:
    """httpx, used when aiohttp is missing: slower per request, which inflates the ratios."""

    name = "httpx"

    def __init__(self, base: str) -> None:
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        self._client = httpx.AsyncClient(base_url=base, timeout=30, limits=limits)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        response = await self._client.post(path, content=body, headers=headers)
        return response.status_code, response.content

    async def close(self) -> None:
        await self._client.aclose()


def _client(base: str) -> AiohttpClient | HttpxClient:
    try:
        return AiohttpClient(base)
    except ImportError:
        return HttpxClient(base)


async def _http_step(client: HttpClient, key: str) -> None:
    status, body = await client.post(
        f"/v1/cmd/acct/{key}/deposit",
        b'{"amount":1}',
        {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
    )
    if status != 200:
        raise BenchFailed(f"gateway deposit to {key}: {status} {body!r}")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _figures(label: str, latencies: list[float], wall: float) -> dict[str, float]:
    return {
        f"{label} requests/s": len(latencies) / wall,
        f"{label} p50": _percentile(latencies, 0.50) * 1000,
        f"{label} p99": _percentile(latencies, 0.99) * 1000,
        f"{label} mean": statistics.fmean(latencies) * 1000,
    }


async def run(env: BenchEnv) -> list[Result]:
    per_worker = env.size(full=120, quick=3)
    rounds = env.size(full=2, quick=1)
    keys = [f"bench{w}" for w in range(CONCURRENCY)]
    raw: list[float] = []
    http: list[float] = []
    raw_wall = http_wall = 0.0
    client_name = ""
    with env.nats(sync="always") as server:
        async with env.postgres() as database_url:
            # Streams exist before the actors and the raw loop start.
            bus = await Bus.connect(server.url, Settings(nats_url=server.url))
            await bus.ensure_streams()
            await bus.close()
            home = Path(env._tmp) / f"gateway-{uuid.uuid4().hex[:6]}"
            async with _troupe(server.url, database_url, home) as base:
                client = _client(base)
                client_name = client.name
                nc = await nats.connect(server.url)
                try:
                    for key in keys:
                        status, _ = await client.post(
                            f"/v1/cmd/acct/{key}/open",
                            msgspec.json.encode({"owner": key}),
                            {"Idempotency-Key": f"open-{key}", "Content-Type": "application/json"},
                        )
                        if status != 200:
                            raise BenchFailed(f"opening {key} answered {status}")
                    # Warm both paths (connections, caches, lazy imports).
                    await _workers(CONCURRENCY, 2, lambda w, i: _raw_step(nc, keys[w]))
                    await _workers(CONCURRENCY, 2, lambda w, i: _http_step(client, keys[w]))
                    # Alternate the two loops so drift on a shared machine hits both.
                    for _ in range(rounds):
                        got, wall = await _workers(
                            CONCURRENCY, per_worker, lambda w, i: _raw_step(nc, keys[w])
                        )
                        raw += got
                        raw_wall += wall
                        got, wall = await _workers(
                            CONCURRENCY, per_worker, lambda w, i: _http_step(client, keys[w])
                        )
                        http += got
                        http_wall += wall
                finally:
                    await nc.close()
                    await client.close()
    base_figures = _figures("raw nats-py", raw, raw_wall)
    gateway_figures = _figures("gateway HTTP", http, http_wall)
    notes = (
        f"{len(raw)} commands each, concurrency {CONCURRENCY}, accounts actor, PostgreSQL, "
        f"HTTP client {client_name}"
    )
    results: list[Result] = []
    for (base_name, base_value), (name, value) in zip(
        base_figures.items(), gateway_figures.items(), strict=True
    ):
        is_rate = base_name.endswith("requests/s")
        unit = "req/s" if is_rate else "ms"
        results.append(
            Result(
                group=GROUP,
                name=base_name,
                value=base_value,
                unit=unit,
                higher_is_better=is_rate,
                notes=notes if is_rate else "",
            )
        )
        results.append(
            Result(
                group=GROUP,
                name=name,
                value=value,
                unit=unit,
                baseline=base_name,
                higher_is_better=is_rate,
                notes="goal: at most 3x the raw p99" if name.endswith("p99") else "",
            )
        )
    return results
