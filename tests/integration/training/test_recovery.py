"""Jobs survive actor restarts and worker crashes, or are failed with a reason."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from pathlib import Path

import nats
import psutil  # type: ignore[import-untyped]
import pytest
from nats.aio.client import Client as NATS

from actors.kernel.config import Settings
from actors.kernel.embedded import EmbeddedNats
from actors.training import supervisor
from actors.training.queries import list_jobs
from schemas.training import StartJob
from tests.integration.training.conftest import StartHost
from tests.integration.training.support import events, send, tiny_config, wait_for

pytestmark = pytest.mark.asyncio


def _worker_pid(job: str) -> int:
    for running in supervisor.RUNNING:
        worker = running.workers.get(job)
        if worker is not None:
            return int(worker.process.pid)
    raise AssertionError(f"no worker runs {job}")


async def _checkpointed(nc: NATS, job: str) -> None:
    async with asyncio.timeout(120):
        while True:
            found = await events(nc, job)
            if any(n == "job_progressed" and b["checkpoint"] for n, b in found):
                return
            await asyncio.sleep(0.2)


async def test_a_restarted_actor_resumes_the_job_from_its_checkpoint(
    start_host: StartHost, nats_server: EmbeddedNats
) -> None:
    config = tiny_config(total_steps=8_000, log_every=800, checkpoint_every=1_600, eval_every=0)
    first = await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        await send(nc, "phoenix", StartJob(config=config))
        await _checkpointed(nc, "phoenix")
        await first.stop()
        second = await start_host()
        found = await wait_for(nc, "phoenix", "job_completed", within=180)
    finally:
        await nc.close()
    starts = [b for n, b in found if n == "attempt_started"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[0]["checkpoint"] is None
    assert starts[1]["checkpoint"] is not None
    assert starts[1]["from_step"] >= 1_600
    assert "stopped actor" in starts[1]["reason"]
    # Within each attempt the reports are numbered 1, 2, ... with no gap and no repeat.
    by_attempt: dict[int, list[int]] = {}
    for name, body in found:
        if name == "job_progressed":
            by_attempt.setdefault(body["attempt"], []).append(body["seq"])
    for seqs in by_attempt.values():
        assert seqs == list(range(1, len(seqs) + 1))
    # The second attempt starts where the first one's checkpoint left off.
    second_steps = [
        b["metrics"]["step"] for n, b in found if n == "job_progressed" and b["attempt"] == 2
    ]
    assert second_steps[0] > starts[1]["from_step"]
    assert [n for n, _ in found].count("job_completed") == 1
    assert second.read_engine is not None
    (job,) = await list_jobs(second.read_engine)
    assert (job.status, job.attempt, job.step) == ("completed", 2, 8_000)


async def test_a_job_whose_checkpoint_vanished_is_marked_failed(
    start_host: StartHost, nats_server: EmbeddedNats, training_dir: Path
) -> None:
    config = tiny_config(total_steps=2_000_000, log_every=800, checkpoint_every=800, eval_every=0)
    first = await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        await send(nc, "lost", StartJob(config=config))
        await _checkpointed(nc, "lost")
        await first.stop()
        shutil.rmtree(training_dir / "lost")
        second = await start_host()
        found = await wait_for(nc, "lost", "job_failed")
    finally:
        await nc.close()
    failed = next(b for n, b in found if n == "job_failed")
    assert "is missing" in failed["reason"]
    assert second.read_engine is not None
    (job,) = await list_jobs(second.read_engine)
    assert job.status == "failed"
    assert job.reason == failed["reason"]


async def test_a_crashed_worker_is_relaunched_until_attempts_run_out(
    start_host: StartHost, nats_server: EmbeddedNats
) -> None:
    config = tiny_config(total_steps=2_000_000, log_every=400, checkpoint_every=400, eval_every=0)
    await start_host()
    nc = await nats.connect(nats_server.url)
    try:
        await send(nc, "fragile", StartJob(config=config, max_attempts=2))
        for attempt in (1, 2):
            await wait_for(nc, "fragile", "attempt_started", count=attempt)
            await _progress_of(nc, "fragile", attempt)
            os.kill(_worker_pid("fragile"), signal.SIGKILL)
        found = await wait_for(nc, "fragile", "job_failed")
    finally:
        await nc.close()
    starts = [b for n, b in found if n == "attempt_started"]
    assert len(starts) == 2
    assert "exited with code -9" in starts[1]["reason"]
    failed = next(b for n, b in found if n == "job_failed")
    assert "gave up after 2 attempts" in failed["reason"]
    assert "code -9" in failed["reason"]


async def _progress_of(nc: NATS, job: str, attempt: int) -> None:
    async with asyncio.timeout(120):
        while True:
            found = await events(nc, job)
            if any(n == "job_progressed" and b["attempt"] == attempt for n, b in found):
                return
            await asyncio.sleep(0.2)


async def test_a_killed_actor_takes_its_worker_down_and_the_job_resumes(
    start_host: StartHost, nats_server: EmbeddedNats, settings: Settings, tmp_path: Path
) -> None:
    config = tiny_config(total_steps=8_000, log_every=800, checkpoint_every=800, eval_every=0)
    assert settings.database_url is not None
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.training.run_host",
        "--nats",
        nats_server.url,
        "--db",
        settings.database_url,
        "--home",
        str(tmp_path / "child"),
        stdout=asyncio.subprocess.PIPE,
    )
    nc = await nats.connect(nats_server.url)
    try:
        assert child.stdout is not None
        async with asyncio.timeout(60):
            assert (await child.stdout.readline()).strip() == b"ready"
        await send(nc, "orphan", StartJob(config=config))
        await _checkpointed(nc, "orphan")
        (worker,) = psutil.Process(child.pid).children(recursive=True)
        child.kill()
        await child.wait()
        # Its stdin closes with the actor: the worker checkpoints and exits on its own.
        gone, _ = await asyncio.to_thread(psutil.wait_procs, [worker], 60)
        assert gone, f"worker {worker.pid} outlived its actor"
        await start_host()
        found = await wait_for(nc, "orphan", "job_completed", within=180)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await nc.close()
    starts = [b for n, b in found if n == "attempt_started"]
    assert [s["attempt"] for s in starts] == [1, 2]
    assert starts[1]["from_step"] >= 800
    assert [n for n, _ in found].count("agent_registered") == 1
