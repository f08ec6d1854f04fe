"""JetStream plumbing: the four streams, positioned pull consumers, pipelined publishing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from actors.kernel.config import Settings
from actors.kernel.outbox import Published, Row
from schemas import subjects

log = logging.getLogger("troupe.bus")

COMMANDS = "COMMANDS"
EVENTS = "EVENTS"
OUTCOMES = "OUTCOMES"
DEADLETTER = "DEADLETTER"

STREAM_OF_PREFIX = {
    subjects.COMMANDS: COMMANDS,
    subjects.EVENTS: EVENTS,
    subjects.OUTCOMES: OUTCOMES,
    subjects.DEADLETTER: DEADLETTER,
}


class StreamSpec(msgspec.Struct, frozen=True):
    """What Troupe declares for one stream."""

    name: str
    subject_prefix: str
    max_age_seconds: float
    partitioned: bool = False
    max_msgs_per_subject: int = -1
    allow_direct: bool = False


def stream_specs(settings: Settings) -> list[StreamSpec]:
    s = settings.streams
    return [
        StreamSpec(COMMANDS, subjects.COMMANDS, s.commands_max_age_seconds, partitioned=True),
        StreamSpec(EVENTS, subjects.EVENTS, s.events_max_age_seconds, partitioned=True),
        StreamSpec(
            OUTCOMES,
            subjects.OUTCOMES,
            s.outcomes_max_age_seconds,
            max_msgs_per_subject=1,
            allow_direct=True,
        ),
        StreamSpec(DEADLETTER, subjects.DEADLETTER, s.deadletter_max_age_seconds),
    ]


def stream_config(spec: StreamSpec, settings: Settings) -> js_api.StreamConfig:
    """The JetStream configuration for a spec (file storage; partition transform if asked)."""
    transform = None
    partitions = settings.streams.partitions
    if spec.partitioned and partitions > 1:
        # Appends the partition as a fifth token, hashed on the key (wildcard 2).
        transform = js_api.SubjectTransform(
            src=f"{spec.subject_prefix}.*.*.*",
            dest=(
                f"{spec.subject_prefix}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}."
                f"{{{{wildcard(3)}}}}.{{{{partition({partitions},2)}}}}"
            ),
        )
    return js_api.StreamConfig(
        name=spec.name,
        subjects=[f"{spec.subject_prefix}.>"],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        num_replicas=settings.streams.replicas,
        duplicate_window=settings.streams.duplicate_window_seconds,
        max_age=spec.max_age_seconds,
        max_msgs_per_subject=spec.max_msgs_per_subject,
        allow_direct=spec.allow_direct or None,
        subject_transform=transform,
    )


class Bus:
    """One NATS connection with JetStream, shared by every actor in a process."""

    def __init__(self, nc: NATS, settings: Settings) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=settings.publish_timeout_seconds)
        self.settings = settings
        self.closing = False
        self.disconnects = 0
        """Counts lost links: a consumer positioned before the last one may have lost a delivery."""

    @classmethod
    async def connect(cls, url: str, settings: Settings, *, name: str = "troupe") -> Bus:
        async def on_error(exc: Exception) -> None:
            log.warning("nats error: %s", exc)

        bus: Bus | None = None

        async def on_disconnect() -> None:
            if bus is not None:
                bus.disconnects += 1
            if bus is None or not bus.closing:
                log.warning("nats disconnected")

        async def on_reconnect() -> None:
            log.info("nats reconnected")

        nc = await nats.connect(
            url,
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            pending_size=64 * 1024 * 1024,
        )
        bus = cls(nc, settings)
        return bus

    async def close(self) -> None:
        self.closing = True
        # Not drain(): it waits for fetched-but-unhandled JetStream messages, which the next
        # instance gets again anyway; flush what was published (acks included) and close.
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            await self.nc.close()

    async def ensure_streams(self) -> None:
        """Create or update the four streams: safe to run at every start."""
        for spec in stream_specs(self.settings):
            config = stream_config(spec, self.settings)
            try:
                await self.js.stream_info(spec.name)
            except NotFoundError:
                await self.js.add_stream(config)
                continue
            await self.js.update_stream(config)

    async def position_consumer(
        self,
        stream: str,
        durable: str,
        filters: Sequence[str],
        after_seq: int,
    ) -> JetStreamContext.PullSubscription:
        """(Re)create ``durable`` to deliver ``filters`` from just after ``after_seq``, in order.

        Recreating at the committed position makes every message the last
        instance fetched but did not commit come again before anything newer,
        which is what keeps per-key order across crashes.
        """
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(stream, durable)
        config = js_api.ConsumerConfig(
            durable_name=durable,
            ack_policy=js_api.AckPolicy.ALL,
            ack_wait=self.settings.ack_wait_seconds,
            max_ack_pending=self.settings.max_ack_pending,
            max_deliver=-1,
            filter_subjects=list(filters) if len(filters) > 1 else None,
            filter_subject=filters[0] if len(filters) == 1 else None,
            deliver_policy=(
                js_api.DeliverPolicy.BY_START_SEQUENCE
                if after_seq > 0
                else js_api.DeliverPolicy.ALL
            ),
            opt_start_seq=after_seq + 1 if after_seq > 0 else None,
        )
        await self.js.add_consumer(stream, config)
        return await self.js.pull_subscribe_bind(durable, stream=stream)

    async def publish_rows(self, rows: Sequence[Row]) -> tuple[list[Published], Exception | None]:
        """Publish rows pipelined, in order; return the acknowledged ones and the first error.

        One connection keeps publish order, so the stream stores rows in the
        order given. A row JetStream reports as a duplicate was stored before.
        """
        if not rows:
            return [], None
        futures: list[asyncio.Future[js_api.PubAck]] = []
        error: Exception | None = None
        for row in rows:
            try:
                fut = await self.js.publish_async(
                    row.subject, row.payload, headers=dict(row.headers)
                )
            except Exception as exc:
                error = exc
                break
            futures.append(fut)
        if futures:
            # publish_async futures carry no deadline of their own.
            _, pending = await asyncio.wait(futures, timeout=self.settings.publish_timeout_seconds)
            for fut in pending:
                fut.cancel()
        published: list[Published] = []
        for row, fut in zip(rows, futures, strict=False):
            if fut.cancelled():
                error = error or TimeoutError(f"no acknowledgement for {row.subject}")
                continue
            failure = fut.exception()
            if failure is not None:
                error = error or (
                    failure if isinstance(failure, Exception) else RuntimeError(str(failure))
                )
                continue
            ack = fut.result()
            published.append(Published(row.event_id, ack.stream, ack.seq))
        return published, error

    async def publish(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None = None
    ) -> js_api.PubAck:
        return await self.js.publish(subject, payload, headers=dict(headers or {}))

    async def last_sequences(self) -> dict[str, int]:
        """Last stored sequence of each Troupe stream."""
        out: dict[str, int] = {}
        for spec in stream_specs(self.settings):
            info = await self.js.stream_info(spec.name)
            out[spec.name] = int(info.state.last_seq)
        return out


def stream_for_subject(subject: str) -> str:
    """Which Troupe stream a subject lands in."""
    return STREAM_OF_PREFIX[subject.split(".", 1)[0]]


def describe_stream(info: Any) -> dict[str, Any]:
    """A small JSON-able summary of a StreamInfo for status pages."""
    return {
        "messages": int(info.state.messages),
        "first_seq": int(info.state.first_seq),
        "last_seq": int(info.state.last_seq),
        "consumers": int(info.state.consumer_count),
    }
