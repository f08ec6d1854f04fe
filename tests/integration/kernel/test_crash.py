"""Exactly-once under faults: the actor SIGKILLed, nats-server killed, database links dropped.

Each run publishes 2,000 deposits over 50 accounts while a fault injector
strikes at random moments, then checks: the ledger holds every command once,
each account's state is the fold of its commands, the event stream has no
duplicate event ids, and per key the events are exactly the expected ones in
order (stream order read back from JetStream).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import msgspec
import nats
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from actors.kernel import history
from actors.kernel.bus import EVENTS
from actors.kernel.db import create_engine
from actors.kernel.embedded import EmbeddedNats
from schemas import subjects
from schemas.headers import Header
from tests.support.accounts import ACCOUNTS, Deposit
from tests.support.tcp_proxy import FaultyProxy

pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.timeout(600)]

COMMANDS = 2000
KEYS = 50
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Plan:
    """Which command goes to which account, with what amount, in publish order."""

    seed: int
    commands: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.commands = [
            (f"c{i}", f"k{rng.randrange(KEYS)}", rng.randint(1, 20)) for i in range(COMMANDS)
        ]

    def by_key(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = defaultdict(list)
        for _, key, amount in self.commands:
            out[key].append(amount)
        return out


class ActorProcess:
    """The accounts actor in a child process, killable with SIGKILL."""

    def __init__(self, nats_url: str, db_url: str, log: Path) -> None:
        self.nats_url = nats_url
        self.db_url = db_url
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.run_actor",
                    "--nats",
                    self.nats_url,
                    "--db",
                    self.db_url,
                    "--command-timeout",
                    "2",
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=out,
                env={**os.environ, "PYTHONPATH": str(ROOT), "TROUPE_LOG_LEVEL": "WARNING"},
            )
        finally:
            out.close()

    async def wait_ready(self, deadline: float = 60) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), deadline)
        assert line.strip() == b"ready", f"actor did not start: {line!r}; see {self.log}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.kills += 1
        self._close_pipe()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


async def publish_plan(nats_url: str, plan: Plan, pace: float) -> None:
    """Publish every command in order, retrying each (same Nats-Msg-Id) until JetStream has it."""
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    js = nc.jetstream(timeout=2)
    try:
        for i, (cid, key, amount) in enumerate(plan.commands):
            payload = msgspec.json.encode(Deposit(amount=amount))
            subject = subjects.command_subject("acct", key, "deposit")
            while True:
                try:
                    await js.publish(subject, payload, headers={Header.MSG_ID: cid})
                    break
                except Exception:
                    await asyncio.sleep(0.05)
            if i % 10 == 9:
                await asyncio.sleep(pace)
    finally:
        await nc.close()


async def wait_applied(
    db_url: str, expected: int, actor: ActorProcess | None = None, deadline: float = 180
) -> None:
    engine = create_engine(db_url, write=False)
    end = time.monotonic() + deadline
    counts = (0, 0)
    try:
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                async with engine.connect() as conn:
                    applied = (
                        await conn.execute(
                            text("SELECT count(*) FROM consumer_ledger WHERE consumer='accounts'")
                        )
                    ).scalar_one()
                    unsent = (
                        await conn.execute(
                            text("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        )
                    ).scalar_one()
                    tallied = (
                        await conn.execute(
                            text("SELECT count(*) FROM consumer_ledger WHERE consumer='tally'")
                        )
                    ).scalar_one()
                counts = (applied, tallied)
                if applied == expected and tallied == expected and unsent == 0:
                    return
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    where = await _untallied(db_url)
    if actor is not None and actor.proc is not None and actor.proc.poll() is None:
        os.kill(actor.proc.pid, signal.SIGUSR1)  # the actor prints its tasks' stacks
        await asyncio.sleep(1)
        where = "\n" + actor.log.read_text(errors="replace")[-6000:]
    raise AssertionError(f"applied/tallied {counts} of {expected} before the deadline{where}")


async def _untallied(db_url: str) -> str:
    """Deposits the tally never applied, with where the outbox says they landed."""
    engine = create_engine(db_url, write=False)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT o.id, o.event_id, o.subject, o.stream_seq, o.published_at"
                        " FROM outbox o WHERE o.producer = 'accounts'"
                        " AND o.subject LIKE 'evt.acct.%.deposited' AND NOT EXISTS"
                        " (SELECT 1 FROM consumer_ledger l"
                        "  WHERE l.consumer = 'tally' AND l.message_id = o.event_id)"
                        " ORDER BY o.id LIMIT 5"
                    )
                )
            ).all()
            marks = (
                await conn.execute(
                    text("SELECT consumer, stream, last_seq, epoch FROM consumer_position")
                )
            ).all()
    except Exception as exc:
        return f"\n(no diagnosis: {exc})"
    finally:
        await engine.dispose()
    return f"\nuntallied deposits: {[tuple(r) for r in rows]}\npositions: {marks}"


async def verify(nats_url: str, db_url: str, plan: Plan) -> None:
    expected = plan.by_key()
    engine = create_engine(db_url, write=False)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        async with engine.connect() as conn:
            ids = {
                r[0]
                for r in await conn.execute(
                    text("SELECT message_id FROM consumer_ledger WHERE consumer='accounts'")
                )
            }
            states = {
                r.key: msgspec.json.decode(r.state)
                for r in await conn.execute(
                    text("SELECT key, state FROM actor_state WHERE actor='accounts'")
                )
            }
        assert ids == {cid for cid, _, _ in plan.commands}

        seen_ids: set[str] = set()
        deposits: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        counted: dict[str, list[int]] = defaultdict(list)
        async for record in history.read(js, EVENTS, "evt.>"):
            assert record.id is not None
            assert record.id not in seen_ids, f"duplicate event id {record.id} at {record.seq}"
            seen_ids.add(record.id)
            body = msgspec.json.decode(record.data)
            key = record.subject.split(".")[2]
            if body["type"] == "acct.deposited.v1":
                deposits[key].append((body["amount"], body["balance"], body["n"]))
            elif body["type"] == "tally.counted.v1":
                counted[key].append(body["deposits"])

        for key, amounts in expected.items():
            running = 0
            want = []
            for n, amount in enumerate(amounts, start=1):
                running += amount
                want.append((amount, running, n))
            assert deposits[key] == want, f"events of {key} differ from its commands"
            assert states[key]["balance"] == sum(amounts)
            assert states[key]["n"] == len(amounts)
            assert counted[key] == list(range(1, len(amounts) + 1))
        for key in list(expected)[:10]:
            report = await history.audit(js, engine, ACCOUNTS, key)
            assert report.ok, report.differences
    finally:
        await nc.close()
        await engine.dispose()


Fault = Callable[[], Awaitable[None]]


async def run_scenario(
    nats_server: EmbeddedNats,
    db_url: str,
    actor_db_url: str,
    tmp_path: Path,
    fault: Callable[[ActorProcess], Awaitable[None]],
    *,
    pace: float,
) -> ActorProcess:
    plan = Plan(seed=7)
    actor = ActorProcess(nats_server.url, actor_db_url, tmp_path / "actor.log")
    actor.start()
    await actor.wait_ready()
    publisher = asyncio.create_task(publish_plan(nats_server.url, plan, pace))
    try:
        await fault(actor)
        await publisher
        if actor.proc is None or actor.proc.poll() is not None:
            actor.start()
        await wait_applied(db_url, COMMANDS, actor)
    finally:
        publisher.cancel()
        actor.stop()
    await verify(nats_server.url, db_url, plan)
    return actor


async def test_actor_killed_twenty_times(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(11)

    async def kill_repeatedly(actor: ActorProcess) -> None:
        for _ in range(22):
            await asyncio.sleep(rng.uniform(0.02, 0.6))
            actor.kill()
            actor.start()
            await actor.wait_ready()

    actor = await run_scenario(
        nats_server, database_url, database_url, tmp_path, kill_repeatedly, pace=0.12
    )
    assert actor.kills >= 20


async def test_nats_server_killed_and_restarted(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(12)
    kills = 0

    async def kill_nats(actor: ActorProcess) -> None:
        nonlocal kills
        for _ in range(8):
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            await asyncio.to_thread(nats_server.kill)
            kills += 1
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            await asyncio.to_thread(nats_server.start)

    await run_scenario(nats_server, database_url, database_url, tmp_path, kill_nats, pace=0.05)
    assert kills == 8


@pytest.fixture
async def admin() -> AsyncIterator[asyncpg.Connection]:
    from tests.support.databases import _dsn, admin_url

    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        yield conn
    finally:
        await conn.close()


async def test_database_connections_terminated(
    nats_server: EmbeddedNats, postgres_url: str, tmp_path: Path, admin: asyncpg.Connection
) -> None:
    rng = random.Random(13)
    database = make_url(postgres_url).database
    terminated = 0

    async def terminate(actor: ActorProcess) -> None:
        nonlocal terminated
        for _ in range(20):
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            terminated += len(rows)

    await run_scenario(nats_server, postgres_url, postgres_url, tmp_path, terminate, pace=0.05)
    assert terminated >= 20


async def test_database_link_cut_and_stalled(
    nats_server: EmbeddedNats, postgres_url: str, tmp_path: Path
) -> None:
    rng = random.Random(14)
    url = make_url(postgres_url)
    proxy = FaultyProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)

    async def faults(actor: ActorProcess) -> None:
        for i in range(20):
            await asyncio.sleep(rng.uniform(0.1, 0.5))
            if i % 2:
                proxy.cut()
            else:
                await proxy.stall(rng.uniform(0.2, 3.0))

    try:
        await run_scenario(nats_server, postgres_url, via_proxy, tmp_path, faults, pace=0.05)
    finally:
        await proxy.close()
    assert proxy.cuts >= 10
    assert proxy.stalls >= 10


async def test_sigterm_stops_cleanly_and_a_restart_resumes(
    nats_server: EmbeddedNats, database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(15)
    exit_codes: list[int] = []

    async def terminate_repeatedly(actor: ActorProcess) -> None:
        for _ in range(5):
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            assert actor.proc is not None
            actor.proc.terminate()
            exit_codes.append(await asyncio.to_thread(actor.proc.wait, 30))
            actor.stop()
            actor.start()
            await actor.wait_ready()

    await run_scenario(
        nats_server, database_url, database_url, tmp_path, terminate_repeatedly, pace=0.05
    )
    assert exit_codes == [0] * 5
