"""Reading the EVENTS stream on one filter from a sequence on, in order, each sequence once.

An ephemeral pull consumer does the reading; when it is lost (a server restart, an idle
timeout) a new one starts right after the last sequence handled, and sequences a new
consumer delivers again are skipped, so a socket built on it never skips or repeats one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from actors.kernel.bus import EVENTS

__all__ = ["Tail"]

log = logging.getLogger("troupe.gateway.battleship")

_BACKLOG_TIMEOUT: Final = 1.0


class Tail:
    """The messages on ``subject_filter`` after ``after``, in stream order, each once."""

    def __init__(
        self, js: JetStreamContext, subject_filter: str, *, after: int, batch: int, idle: float
    ) -> None:
        self.js = js
        self.subject_filter = subject_filter
        self.handled = after
        """Every sequence up to this one was handed out (or was never on the filter)."""
        self.batch = batch
        self.idle = idle
        self.pending = 0
        """Matching messages stored past ``handled`` when last looked (0: caught up)."""
        self._sub: JetStreamContext.PullSubscription | None = None
        self._failures = 0

    async def last_seq(self) -> int:
        """The EVENTS stream's last sequence now."""
        info = await self.js.stream_info(EVENTS)
        return int(info.state.last_seq)

    async def open(self) -> None:
        """Start reading after ``handled``."""
        await self.close()
        config = js_api.ConsumerConfig(
            ack_policy=js_api.AckPolicy.NONE,
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.handled + 1,
            filter_subject=self.subject_filter,
            inactive_threshold=max(30.0, self.idle * 4),
            mem_storage=True,
            num_replicas=1,
        )
        self._sub = await self.js.pull_subscribe(self.subject_filter, stream=EVENTS, config=config)
        info = await self._sub.consumer_info()
        self.pending = int(info.num_pending or 0)

    async def next(self) -> list[Msg] | None:
        """The next messages (possibly none), or None after ``idle`` seconds without any."""
        if self._sub is None:
            await self.open()
        assert self._sub is not None
        try:
            if self.pending > 0:
                msgs = await self._sub.fetch(self.batch, timeout=_BACKLOG_TIMEOUT)
            else:
                # Caught up: one long poll that returns as soon as a message lands.
                msgs = await self._sub.fetch(1, timeout=self.idle)
        except (nats.errors.TimeoutError, TimeoutError):
            return None
        except nats.errors.Error as exc:
            self._failures += 1
            log.info("tail on %s: recreating its consumer (%s)", self.subject_filter, exc)
            await asyncio.sleep(min(5.0, 0.1 * 2**self._failures))
            await self.open()
            return []
        self._failures = 0
        fresh = []
        for msg in msgs:
            meta = msg.metadata
            seq = int(meta.sequence.stream)
            self.pending = int(meta.num_pending)
            if seq <= self.handled:
                continue
            self.handled = seq
            fresh.append(msg)
        return fresh

    async def close(self) -> None:
        """Drop the consumer (it would expire on its own after the inactivity threshold)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
