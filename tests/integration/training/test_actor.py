"""The training actor end to end: a job trains in a worker and reports through the bus."""

from __future__ import annotations

import asyncio
import itertools
import random
from pathlib import Path

import nats
import pytest
from sqlalchemy import select

from actors.battleship.engine import Board, Rules
from actors.kernel.actor import Services
from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.training import agents as trained
from actors.training import supervisor
from actors.training.evaluation import agent_shots
from actors.training.policy import TrainedPlayer
from actors.training.queries import list_agents, list_jobs
from actors.training.supervisor import WorkerProcess
from actors.training.tables import agents
from schemas.training import CancelJob, StartJob
from tests.integration.training.conftest import StartHost
from tests.integration.training.support import events, send, tiny_config, wait_for

pytestmark = pytest.mark.asyncio


async def test_a_job_trains_reports_progress_and_registers_its_agent(
    start_host: StartHost, nats_server: EmbeddedNats, training_dir: Path
) -> None:
    host = await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        outcome = await send(nc, "tiny", StartJob(config=tiny_config(), name="tiny run"))
        assert outcome.status == "applied"
        found = await wait_for(nc, "tiny", "agent_registered")
        assert (await send(nc, "tiny", StartJob())).rejection.code == "job_exists"  # type: ignore[union-attr]
        # Reused outcome: applying the same command id twice changes nothing.
    finally:
        await nc.close()

    names = [n for n, _ in found]
    assert names == [
        "job_queued",
        "attempt_started",
        "job_progressed",
        "job_progressed",
        "job_progressed",
        "job_progressed",
        "job_completed",
        "agent_registered",
    ]
    progress = [body for n, body in found if n == "job_progressed"]
    assert [p["seq"] for p in progress] == [1, 2, 3, 4]
    assert [p["metrics"]["step"] for p in progress] == [400, 800, 1200, 1600]
    assert [p["checkpoint"] is not None for p in progress] == [False, True, False, True]
    completed = next(body for n, body in found if n == "job_completed")
    assert completed["evaluation"]["games"] == 20
    assert completed["evaluation"]["versus"][0]["baseline"]["player"] == "random"
    registered = next(body for n, body in found if n == "agent_registered")
    assert registered["agent_id"] == "tiny"
    assert registered["ladder"] == "6x6_3-2"
    assert Path(registered["model_path"]).is_relative_to(training_dir / "tiny")

    assert host.read_engine is not None
    (job,) = await list_jobs(host.read_engine)
    assert (job.job_id, job.name, job.status, job.step) == ("tiny", "tiny run", "completed", 1600)
    assert job.eval_mean == completed["evaluation"]["agent"]["mean"]
    (agent,) = await list_agents(host.read_engine, ladder="6x6_3-2")
    assert agent.mean_shots == completed["evaluation"]["agent"]["mean"]

    trained.forget()
    player = await trained.load_player(host.read_engine, "tiny")
    assert isinstance(player, TrainedPlayer)
    assert await trained.load_player(host.read_engine, "tiny") is player, "cached"
    assert await trained.load_player(host.read_engine, "nobody") is None
    shots = agent_shots(player, Rules.of(6, 6, (3, 2)), 20, 0)
    assert sum(shots) / 20 == completed["evaluation"]["agent"]["mean"]
    async with host.read_engine.connect() as conn:
        row = (await conn.execute(select(agents.c.job_id, agents.c.model_sha256))).one()
    assert row.job_id == "tiny"
    assert row.model_sha256 == registered["model_sha256"]


async def test_cancel_stops_the_worker(start_host: StartHost, nats_server: EmbeddedNats) -> None:
    host = await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        config = tiny_config(total_steps=2_000_000, log_every=400, eval_every=0)
        await send(nc, "long", StartJob(config=config))
        await wait_for(nc, "long", "job_progressed")
        supervisor_workers = _workers()
        assert "long" in supervisor_workers
        outcome = await send(nc, "long", CancelJob(reason="enough", requested_by="ada"))
        assert outcome.status == "applied"
        found = await wait_for(nc, "long", "job_cancelled")
        process = supervisor_workers["long"].process
        await _exited(process)
        assert "job_completed" not in [n for n, _ in await events(nc, "long")]
    finally:
        await nc.close()
    cancelled = next(body for n, body in found if n == "job_cancelled")
    assert (cancelled["reason"], cancelled["requested_by"]) == ("enough", "ada")
    assert host.read_engine is not None
    (job,) = await list_jobs(host.read_engine)
    assert job.status == "cancelled"


def _workers() -> dict[str, WorkerProcess]:
    for running in supervisor.RUNNING:
        return running.workers
    raise AssertionError("no supervisor is running")


async def _exited(process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(60):
        await process.wait()


async def test_jobs_wait_for_a_free_worker_slot(
    start_host: StartHost, nats_server: EmbeddedNats
) -> None:
    host = await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        long = tiny_config(total_steps=2_000_000, log_every=400, eval_every=0)
        await send(nc, "first", StartJob(config=long))
        await wait_for(nc, "first", "job_progressed")
        await send(nc, "second", StartJob(config=tiny_config()))
        await send(nc, "third", StartJob(config=tiny_config()))
        await send(nc, "third", CancelJob(reason="not needed"))
        assert host.read_engine is not None
        statuses = {j.job_id: j.status for j in await list_jobs(host.read_engine)}
        assert statuses == {"first": "running", "second": "queued", "third": "cancelled"}
        await send(nc, "first", CancelJob())
        found = await wait_for(nc, "second", "job_completed")
    finally:
        await nc.close()
    assert [n for n, _ in found][:2] == ["job_queued", "attempt_started"]


async def test_the_match_hook_seats_agents_as_they_are_registered(
    start_host: StartHost, nats_server: EmbeddedNats, settings: Settings
) -> None:
    host = await start_host()
    assert host.bus is not None
    assert host.engine is not None
    assert host.read_engine is not None
    services = Services(host.bus, host.engine, host.read_engine, settings)
    trained.forget()
    nc = await nats.connect(nats_server.url)
    try:
        await send(nc, "early", StartJob(config=tiny_config()))
        await wait_for(nc, "early", "agent_registered")
        async with trained.trained_agents(services) as lookup:
            early = lookup("early")
            assert isinstance(early, TrainedPlayer)
            assert lookup("late") is None
            assert lookup("random") is None, "baselines are the match actor's own"
            await send(nc, "late", StartJob(config=tiny_config(seed=7)))
            await wait_for(nc, "late", "agent_registered")
            late = await _seated(lookup, "late")
            assert isinstance(late, TrainedPlayer)
            board = Board.random(Rules.of(6, 6, (3, 2)), random.Random(1))
            cell = late.select(board.view(), random.Random(0))
            assert board.view().marks[cell] == 0
    finally:
        await nc.close()


async def _seated(lookup: trained.AgentLookup, agent_id: str) -> object:
    """Poll the lookup until it knows ``agent_id`` (it loads agents in the background)."""
    async with asyncio.timeout(30):
        for _ in itertools.count():
            found = lookup(agent_id)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")
