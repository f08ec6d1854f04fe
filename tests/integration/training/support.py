"""Helpers of the training integration tests: commands, event polling, tiny configs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from actors.kernel import history
from actors.training.config import DEFAULT, replace
from schemas import subjects
from schemas.base import Command
from schemas.envelope import Outcome
from schemas.headers import Header
from schemas.training import TrainConfig


def tiny_config(**changes: Any) -> TrainConfig:
    """A job that trains in a few seconds on a 6x6 board."""
    base: dict[str, Any] = {
        "height": 6,
        "width": 6,
        "ships": (3, 2),
        "num_envs": 8,
        "threads": 1,
        "channels": 8,
        "layers": 2,
        "batch_size": 16,
        "buffer_capacity": 2_000,
        "learning_starts": 64,
        "total_steps": 1_600,
        "exploration_fraction": 0.5,
        "target_update_interval": 20,
        "log_every": 400,
        "checkpoint_every": 800,
        "eval_every": 800,
        "eval_games_during": 10,
        "eval_games": 20,
        "baselines": ("random",),
    }
    base.update(changes)
    return replace(DEFAULT, **base)


async def send(nc: NATS, job: str, command: Command, msg_id: str | None = None) -> Outcome:
    """Publish a command to a job and wait for its outcome."""
    command_id = msg_id or str(uuid.uuid4())
    js = nc.jetstream()
    await js.publish(
        subjects.command_subject_for(type(command), job),
        msgspec.json.encode(command),
        headers={Header.MSG_ID: command_id, Header.WANT_OUTCOME: "1"},
    )
    subject = subjects.outcome_subject("training", command_id)
    async with asyncio.timeout(15):
        while True:
            try:
                msg = await js.get_last_msg("OUTCOMES", subject)
            except NotFoundError:
                await asyncio.sleep(0.05)
                continue
            assert msg.data is not None
            return msgspec.json.decode(msg.data, type=Outcome)


async def events(nc: NATS, job: str) -> list[tuple[str, dict[str, Any]]]:
    """Every stored event of a job as (event name, body), in stream order."""
    out = []
    async for record in history.read(nc.jetstream(), "EVENTS", f"evt.training.{job}.>"):
        out.append((record.subject.split(".")[3], msgspec.json.decode(record.data)))
    return out


async def wait_for(
    nc: NATS, job: str, name: str, *, within: float = 120.0, count: int = 1
) -> list[tuple[str, dict[str, Any]]]:
    """Poll the job's events until ``count`` events called ``name`` are stored."""
    async with asyncio.timeout(within):
        while True:
            found = await events(nc, job)
            if sum(1 for n, _ in found if n == name) >= count:
                return found
            await asyncio.sleep(0.2)
