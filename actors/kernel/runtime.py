"""The actor loop: fetch a batch, apply it exactly once in one transaction, publish, ack.

One ``Runner`` runs one consumer (an actor, or one partition of it):

1. take the consumer's lease, bump its epoch, recreate its JetStream
   consumers just after the committed positions, publish outbox leftovers;
2. fetch batches (the next one is fetched while the current one is applied);
3. dead-letter what cannot be decoded, then in ONE transaction: claim the
   ledger rows, load state, run ``decide``/``evolve``, save state, write the
   emitted events and outcomes to the outbox, advance the position (fenced on
   the epoch);
4. after commit: ack, publish the outbox rows pipelined, and record their
   stream sequences in the next transaction.

Transient failures (database or network) retry the same batch with backoff;
any other failure replays the batch one message at a time, and a message
that keeps failing is dead-lettered after ``handler_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.nuid import NUID
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from actors.kernel import ids, ledger, logs, outbox, positions, telemetry
from actors.kernel.actor import Actor, Change, Services, fold
from actors.kernel.bus import COMMANDS, EVENTS, Bus
from actors.kernel.codec import Codec, Decoded, Undecodable, message_id
from actors.kernel.config import Settings
from actors.kernel.db import transaction
from actors.kernel.errors import HandlerFailed, PayloadTooLarge, is_transient
from actors.kernel.positions import Fenced, Lease
from schemas import subjects
from schemas.base import (
    Addressed,
    Command,
    Context,
    Event,
    Rejection,
    RejectionKind,
    domain_of,
    name_of,
    tag_of,
)
from schemas.envelope import DeadLetterKind, EmittedEvent, ErrorReply, Outcome, StateReply
from schemas.headers import Header

S = TypeVar("S")
log = logging.getLogger("troupe.runtime")

_TRACE_HEADERS = (Header.TRACEPARENT, Header.TRACESTATE)
_nuid = NUID()


class Abandoned(Exception):
    """Raised when shutdown interrupts a batch that could not commit; nothing of it applied."""


class LeaseLost(Exception):
    """Raised when the connection holding the consumer's lock died; the runner starts over."""


@dataclass
class Stats:
    """Counts since start, for status pages, tests and benchmarks."""

    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    published: int = 0
    publish_failures: int = 0
    retries: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.time)


@dataclass
class _Item:
    msg: Msg
    seq: int
    decoded: Decoded | None = None
    error: Undecodable | None = None


@dataclass
class _Entity(Generic[S]):
    state: S
    version: int
    base_version: int


def _now() -> datetime:
    return datetime.now(UTC)


class Runner(Generic[S]):
    """Runs one consumer of one actor until ``stop`` is set."""

    def __init__(
        self,
        actor: Actor[S],
        *,
        bus: Bus,
        engine: AsyncEngine,
        settings: Settings,
        partition: int | None = None,
        read_engine: AsyncEngine | None = None,
        serve_requests: bool = True,
    ) -> None:
        self.actor = actor
        self.bus = bus
        self.engine = engine
        self.read_engine = read_engine or engine
        self.settings = settings
        self.partition = partition
        self.serve_requests = serve_requests
        self.consumer = actor.name if partition is None else f"{actor.name}-p{partition}"
        self.codec = Codec(actor)
        self.stats = Stats()
        self.ready = asyncio.Event()
        self.epoch = 0
        self._encoder = msgspec.json.Encoder()
        self._marks: list[outbox.Published] = []
        self._dirty = True  # an earlier run may have left unsent rows
        self._max_payload = 1024 * 1024
        self._last_gauge = 0.0
        self._outgoing: asyncio.Queue[list[outbox.Row]] = asyncio.Queue(maxsize=2)
        self._committed: dict[str, int] = {}
        """Stream -> last sequence this run committed a position for."""
        self._inflight: dict[str, int] = {}
        """Stream -> fetched batches queued or being applied."""
        self._batch_done = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------

    def filters(self) -> dict[str, list[str]]:
        """Stream -> subject filters this consumer reads."""
        out: dict[str, list[str]] = {}
        if self.actor.commands:
            out[COMMANDS] = [subjects.command_filter(self.actor.domain, self.partition)]
        if self.actor.reactions:
            out[EVENTS] = sorted(
                {
                    subjects.event_filter(domain_of(e), name_of(e), self.partition)
                    for e in self.actor.reactions
                }
            )
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; start over after a lost lease or an outage at start-up."""
        attempt = 0
        while not stop.is_set():
            try:
                await self._run_once(stop)
                return
            except (Fenced, LeaseLost) as exc:
                log.warning("%s: %s; waiting to take the consumer back", self.consumer, exc)
            except Exception as exc:
                if not is_transient(exc) and not isinstance(exc, nats.errors.Error):
                    log.exception("%s: stopped by an unexpected error", self.consumer)
                    raise
                log.warning("%s: start-up interrupted (%s); retrying", self.consumer, exc)
            self.ready.clear()
            attempt += 1
            await _sleep_or_stop(stop, self._backoff(attempt))

    async def _run_once(self, stop: asyncio.Event) -> None:
        lease = Lease(self.engine, self.consumer, poll_seconds=self.settings.lease_poll_seconds)
        acquire = asyncio.ensure_future(lease.acquire())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquire, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
            return
        acquire.result()
        tasks: list[asyncio.Task[None]] = []
        publisher: asyncio.Task[None] | None = None
        # Ends this run's fetchers even when a cancellation is lost inside a library's
        # wait_for (Python 3.11 can drop one that races a completing wait).
        closing = asyncio.Event()
        responders: list[Subscription] = []
        lifespan = contextlib.AsyncExitStack()
        try:
            if self.actor.lifespan is not None:
                services = Services(self.bus, self.engine, self.read_engine, self.settings)
                await lifespan.enter_async_context(self.actor.lifespan(services))
            filters = self.filters()
            async with transaction(self.engine) as conn:
                self.epoch, committed = await positions.take_over(
                    conn, self.consumer, list(filters), _now()
                )
            self._committed = dict(committed)
            self._inflight = {}
            self._max_payload = int(self.bus.nc.max_payload or self._max_payload)
            positioned = self.bus.disconnects
            subs = {
                stream: await self.bus.position_consumer(
                    stream, self.consumer, fs, committed.get(stream, 0)
                )
                for stream, fs in filters.items()
            }
            self._dirty = True
            await self.flush_outbox()
            if self.serve_requests:
                responders = await self._start_responders()
            queue: asyncio.Queue[tuple[str, list[Msg]]] = asyncio.Queue(maxsize=1)
            tasks = [
                asyncio.create_task(
                    self._fetch_loop(stream, filters[stream], sub, positioned, queue, closing)
                )
                for stream, sub in subs.items()
            ]
            self._outgoing = asyncio.Queue(maxsize=2)
            publisher = asyncio.create_task(self._publisher(self._outgoing))
            log.info(
                "%s: consuming %s (epoch %d)",
                self.consumer,
                ", ".join(f for fs in filters.values() for f in fs),
                self.epoch,
            )
            self.ready.set()
            await self._process_loop(queue, stop, lease)
        finally:
            self.ready.clear()
            closing.set()
            if publisher is not None:
                # Committed rows not yet out stay in the outbox for the next run if this stalls.
                with contextlib.suppress(TimeoutError, Exception):
                    async with asyncio.timeout(self.settings.publish_timeout_seconds):
                        await self._outgoing.join()
                tasks.append(publisher)
            await _cancel_all(tasks, self.consumer)
            for sub in responders:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self._commit_marks()
            with contextlib.suppress(Exception):
                await lifespan.aclose()
            await lease.release()

    async def _fetch_loop(
        self,
        stream: str,
        filters: list[str],
        sub: JetStreamContext.PullSubscription,
        positioned: int,
        queue: asyncio.Queue[tuple[str, list[Msg]]],
        closing: asyncio.Event,
    ) -> None:
        """Fetch batches in stream order; after a lost link, start again at the committed position.

        A batch delivered while the link was down is lost in transit, and the
        AckAll of a later batch would acknowledge it unseen. So once the bus
        has disconnected since this consumer was positioned, nothing fetched
        is handed on: the batches in hand are finished, then the consumer is
        recreated just after the last committed sequence.
        """
        failures = 0
        while not closing.is_set():
            if self.bus.disconnects != positioned:
                generation = self.bus.disconnects
                try:
                    await self._drain(stream, closing)
                    sub = await self._reposition(stream, filters, sub)
                except Exception as exc:
                    failures += 1
                    log.warning("%s: repositioning on %s failed: %s", self.consumer, stream, exc)
                    await _sleep_or_stop(closing, self._backoff(failures))
                    continue
                positioned = generation
                log.info(
                    "%s: link to NATS was lost; resumed %s after sequence %d",
                    self.consumer,
                    stream,
                    self._committed.get(stream, 0),
                )
            try:
                msgs = await sub.fetch(
                    self.settings.batch_size, timeout=self.settings.fetch_timeout_seconds
                )
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except Exception as exc:
                failures += 1
                log.warning("%s: fetch from %s failed: %s", self.consumer, stream, exc)
                await _sleep_or_stop(closing, self._backoff(failures))
                continue
            failures = 0
            if msgs and not closing.is_set() and self.bus.disconnects == positioned:
                self._inflight[stream] = self._inflight.get(stream, 0) + 1
                await queue.put((stream, msgs))

    async def _drain(self, stream: str, closing: asyncio.Event) -> None:
        """Until every batch fetched from ``stream`` is applied (or this run is closing)."""
        while self._inflight.get(stream, 0) and not closing.is_set():
            self._batch_done.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):  # closing sets no event of its own here
                    await self._batch_done.wait()

    async def _reposition(
        self, stream: str, filters: list[str], old: JetStreamContext.PullSubscription
    ) -> JetStreamContext.PullSubscription:
        with contextlib.suppress(Exception):
            await old.unsubscribe()
        return await self.bus.position_consumer(
            stream, self.consumer, filters, self._committed.get(stream, 0)
        )

    async def _process_loop(
        self, queue: asyncio.Queue[tuple[str, list[Msg]]], stop: asyncio.Event, lease: Lease
    ) -> None:
        last_lease_check = time.monotonic()
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.05):
                    stream, msgs = await queue.get()
            except TimeoutError:
                await self._idle()
                if time.monotonic() - last_lease_check > 2.0:
                    last_lease_check = time.monotonic()
                    if not await lease.alive():
                        raise LeaseLost(f"lock connection of {self.consumer} died") from None
                continue
            try:
                await self._handle(stream, msgs, stop)
            except Abandoned:
                log.info("%s: shutdown abandoned an uncommitted batch", self.consumer)
                return
            finally:
                self._inflight[stream] -= 1
                self._batch_done.set()

    async def _idle(self) -> None:
        try:
            if self._marks:
                await self._commit_marks()
            if time.monotonic() - self._last_gauge > 5.0:
                self._last_gauge = time.monotonic()
                async with self.read_engine.connect() as conn:
                    lag = await outbox.lag(conn, producer=self.consumer)
                age = (_now() - _aware(lag.oldest)).total_seconds() if lag.oldest else 0.0
                telemetry.kernel_metrics().outbox_unsent(self.consumer, lag.unsent, age)
        except Exception as exc:
            if not is_transient(exc) and not isinstance(exc, nats.errors.Error):
                raise
            log.warning("%s: outbox housekeeping deferred: %s", self.consumer, exc)

    # -- one batch ---------------------------------------------------------

    async def _handle(self, stream: str, msgs: list[Msg], stop: asyncio.Event) -> None:
        started = time.perf_counter()
        metrics = telemetry.kernel_metrics()
        items = [self._decode(m) for m in msgs]
        metrics.redelivered(self.actor.name, sum(1 for m in msgs if m.metadata.num_delivered > 1))
        bad = [i for i in items if i.error is not None]
        good = _first_of_each([i for i in items if i.decoded is not None])
        last_seq = items[-1].seq
        attempt = 0
        while True:
            try:
                for item in bad:
                    assert item.error is not None
                    await self._dead_letter(item, item.error.kind, item.error.reason, 1)
                bad = []
                rows = await self._apply(stream, good, last_seq)
                break
            except (Fenced, Abandoned):
                metrics.batch(self.actor.name, len(msgs), time.perf_counter() - started, "failed")
                raise
            except Exception as exc:
                if is_transient(exc) or isinstance(exc, nats.errors.Error):
                    attempt += 1
                    metrics.batch(
                        self.actor.name, len(msgs), time.perf_counter() - started, "rolled_back"
                    )
                    await self._retry_pause(msgs, exc, attempt, stop)
                    continue
                log.warning(
                    "%s: batch of %d failed (%s); applying one message at a time",
                    self.consumer,
                    len(good),
                    exc,
                )
                rows = await self._apply_one_by_one(stream, good, last_seq, msgs, stop)
                break
        with contextlib.suppress(Exception):
            await msgs[-1].ack()  # AckAll: one ack covers the batch
        self.stats.batches += 1
        if rows:
            # Published by the publisher task while the next batch is applied.
            await self._outgoing.put(rows)
        metrics.batch(self.actor.name, len(msgs), time.perf_counter() - started, "committed")

    async def _apply_one_by_one(
        self,
        stream: str,
        items: Sequence[_Item],
        last_seq: int,
        msgs: list[Msg],
        stop: asyncio.Event,
    ) -> list[outbox.Row]:
        rows: list[outbox.Row] = []
        for item in items:
            failures = 0
            transient = 0
            while True:
                try:
                    rows += await self._apply(stream, [item], item.seq)
                    break
                except (Fenced, Abandoned):
                    raise
                except Exception as exc:
                    if is_transient(exc) or isinstance(exc, nats.errors.Error):
                        transient += 1
                        await self._retry_pause(msgs, exc, transient, stop)
                        continue
                    failures += 1
                    cause = exc.cause if isinstance(exc, HandlerFailed) else exc
                    if failures >= self.settings.handler_attempts:
                        reason = f"handler failed {failures} times: {type(cause).__name__}: {cause}"
                        await self._dead_letter(item, "handler", reason, failures)
                        await self._apply(stream, [], item.seq)
                        break
                    log.warning(
                        "%s: message %s failed (attempt %d): %s",
                        self.consumer,
                        item.decoded.message_id if item.decoded else item.seq,
                        failures,
                        cause,
                    )
                    await self._retry_pause(msgs, exc, failures, stop)
        if not items or items[-1].seq < last_seq:
            await self._apply(stream, [], last_seq)
        return rows

    async def _retry_pause(
        self, msgs: Sequence[Msg], exc: BaseException, attempt: int, stop: asyncio.Event
    ) -> None:
        self.stats.retries += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("%s: retrying batch (attempt %d): %s", self.consumer, attempt, exc)
        if stop.is_set():
            raise Abandoned()
        with contextlib.suppress(Exception):
            await msgs[-1].in_progress()
        await _sleep_or_stop(stop, self._backoff(attempt))
        if stop.is_set():
            raise Abandoned()

    def _backoff(self, attempt: int) -> float:
        return float(
            min(
                self.settings.retry_backoff_max_seconds,
                self.settings.retry_backoff_seconds * 2 ** min(attempt, 16),
            )
        )

    def _decode(self, msg: Msg) -> _Item:
        meta = msg.metadata
        seq = int(meta.sequence.stream)
        item = _Item(msg=msg, seq=seq)
        try:
            item.decoded = self.codec.decode(
                msg.subject,
                msg.data,
                msg.headers,
                stream=meta.stream,
                seq=seq,
                received_at=meta.timestamp,
            )
        except Undecodable as exc:
            item.error = exc
        return item

    async def _apply(self, stream: str, items: Sequence[_Item], last_seq: int) -> list[outbox.Row]:
        """One transaction: ledger, decide, state, outbox, position. Returns rows to publish."""
        now = _now()
        marks, self._marks = self._marks, []
        try:
            async with transaction(self.engine) as conn:
                await outbox.mark_published(conn, marks, now)
                entries = [
                    ledger.Entry(i.decoded.message_id, i.seq)
                    for i in items
                    if i.decoded is not None
                ]
                fresh_ids = await ledger.claim(conn, self.actor.name, stream, entries, now)
                fresh = [i for i in items if i.decoded and i.decoded.message_id in fresh_ids]
                rows, counts = await self._decide(conn, fresh)
                await outbox.add(conn, self.consumer, rows, now)
                await positions.advance(conn, self.consumer, stream, self.epoch, last_seq, now)
        except BaseException:
            self._marks = marks + self._marks
            # A lost commit acknowledgement leaves committed rows that no one queued:
            # the publisher must read the outbox before it publishes anything newer.
            self._dirty = True
            raise
        self._committed[stream] = last_seq
        applied, rejections = counts
        duplicates = len(entries) - len(fresh)
        self.stats.duplicates += duplicates
        self.stats.applied += applied
        self.stats.rejected += len(rejections)
        metrics = telemetry.kernel_metrics()
        metrics.applied(self.actor.name, applied)
        metrics.duplicates(self.actor.name, duplicates)
        for kind in rejections:
            metrics.rejected(self.actor.name, kind)
        return rows

    async def _decide(
        self, conn: AsyncConnection, items: Sequence[_Item]
    ) -> tuple[list[outbox.Row], tuple[int, list[RejectionKind]]]:
        actor = self.actor
        keys = list(dict.fromkeys(i.decoded.ctx.key for i in items if i.decoded))
        loaded = await actor.store.load(conn, actor.name, keys) if keys else {}
        entities: dict[str, _Entity[S]] = {}
        changed: dict[str, _Entity[S]] = {}
        rows: list[outbox.Row] = []
        applied = 0
        rejected: list[RejectionKind] = []
        recording = telemetry.get().recording
        for item in items:
            d = item.decoded
            assert d is not None
            key = d.ctx.key
            entity = entities.get(key)
            if entity is None:
                stored = loaded.get(key)
                entity = (
                    _Entity(stored.state, stored.version, stored.version)
                    if stored is not None
                    else _Entity(actor.initial(key), 0, 0)
                )
                entities[key] = entity
            if d.expected_version is not None and d.expected_version != entity.version:
                decision: Any = Rejection(
                    kind="conflict",
                    code="version_mismatch",
                    reason=(
                        f"expected {actor.domain} {key} at version {d.expected_version}, "
                        f"it is at version {entity.version}"
                    ),
                    details={"expected": d.expected_version, "actual": entity.version},
                )
            elif recording:
                decision = self._decide_traced(d, entity.state)
            else:
                try:
                    decision = actor.decide(entity.state, d.body, d.ctx)
                except Exception as exc:
                    raise HandlerFailed(d.message_id, exc) from exc
            if isinstance(decision, Rejection):
                rejected.append(decision.kind)
                if d.want_outcome and isinstance(d.body, Command):
                    rows.append(self._outcome_row(d, "rejected", [], decision, entity.version))
                continue
            emitted, own = self._emit(d, decision)
            if own:
                try:
                    entity.state = fold(actor, entity.state, own)
                except Exception as exc:
                    raise HandlerFailed(d.message_id, exc) from exc
                entity.version += 1
                changed[key] = entity
            rows += emitted
            applied += 1
            if d.want_outcome and isinstance(d.body, Command):
                rows.append(self._outcome_row(d, "applied", emitted, None, entity.version))
        if changed:
            await actor.store.save(
                conn,
                actor.name,
                [Change(k, e.state, e.version, e.base_version) for k, e in changed.items()],
            )
        return rows, (applied, rejected)

    def _decide_traced(self, d: Decoded, state: S) -> Any:
        """decide inside a consumer span joined to the message's traceparent.

        The span's context is captured for the decision's rows, so every
        emitted message carries this span as its parent.
        """
        attributes = telemetry.messaging_attributes(
            d.ctx.subject, operation="process", message_id=d.message_id, consumer=self.consumer
        )
        with telemetry.span_from_headers(
            f"process {d.ctx.subject}", d.headers, SpanKind.CONSUMER, attributes
        ):
            try:
                decision = self.actor.decide(state, d.body, d.ctx)
            except Exception as exc:
                raise HandlerFailed(d.message_id, exc) from exc
            trace_headers = telemetry.inject({})
        if isinstance(decision, Rejection):
            return decision
        return _Traced(decision, trace_headers)

    def _emit(self, d: Decoded, decision: Any) -> tuple[list[outbox.Row], list[Event]]:
        rows: list[outbox.Row] = []
        own: list[Event] = []
        trace_headers: dict[str, str] | None = None
        if isinstance(decision, _Traced):
            decision, trace_headers = decision.decision, decision.headers
        for index, emitted in enumerate(decision):
            if isinstance(emitted, Addressed):
                key, message = emitted.key, emitted.message
            elif isinstance(emitted, Event):
                if domain_of(type(emitted)) != self.actor.domain:
                    # Audit folds evt.<domain>.<key>.>, so an actor's own events stay in its domain.
                    raise HandlerFailed(
                        d.message_id,
                        TypeError(
                            f"{type(emitted).__name__} is not of domain {self.actor.domain!r}; "
                            "return Addressed(key, event) to emit another domain's event"
                        ),
                    )
                key, message = d.ctx.key, emitted
                own.append(emitted)
            else:
                raise HandlerFailed(
                    d.message_id,
                    TypeError(f"decide returned {type(emitted).__name__}, not an Event"),
                )
            if isinstance(message, Event):
                subject = subjects.event_subject_for(type(message), key)
            else:
                subject = subjects.command_subject_for(type(message), key)
            payload = self._encoder.encode(message)
            if len(payload) > self._max_payload:
                raise HandlerFailed(
                    d.message_id, PayloadTooLarge(subject, len(payload), self._max_payload)
                )
            event_id = ids.event_id(self.actor.name, d.message_id, index)
            headers = self._headers(d, event_id, trace_headers)
            rows.append(outbox.Row(event_id, subject, key, payload, headers, tag_of(type(message))))
        return rows, own

    def _headers(
        self, d: Decoded, event_id: str, trace_headers: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        headers = {
            Header.MSG_ID.value: event_id,
            Header.CAUSATION_ID.value: d.message_id,
            Header.CORRELATION_ID.value: d.ctx.correlation_id,
            Header.TENANT.value: d.ctx.tenant,
            Header.PRODUCER.value: self.actor.name,
        }
        if d.ctx.principal:
            headers[Header.PRINCIPAL.value] = d.ctx.principal
        if trace_headers:
            headers.update(trace_headers)
        else:
            # No SDK recording: pass the caller's trace context on unchanged.
            for name in _TRACE_HEADERS:
                value = d.headers.get(name)
                if value:
                    headers[name.value] = value
        return headers

    def _outcome_row(
        self,
        d: Decoded,
        status: Any,
        emitted: Sequence[outbox.Row],
        rejection: Rejection | None,
        version: int,
    ) -> outbox.Row:
        outcome = Outcome(
            command_id=d.message_id,
            domain=self.actor.domain,
            key=d.ctx.key,
            command=tag_of(type(d.body)),
            status=status,
            events=[_emitted_event(r) for r in emitted],
            rejection=rejection,
            version=version,
            handled_at=_now(),
        )
        event_id = ids.outcome_id(self.actor.name, d.message_id)
        headers = self._headers(d, event_id)
        return outbox.Row(
            event_id,
            subjects.outcome_subject(self.actor.domain, d.message_id),
            d.ctx.key,
            self._encoder.encode(outcome),
            headers,
        )

    # -- publishing --------------------------------------------------------

    async def _publisher(self, outgoing: asyncio.Queue[list[outbox.Row]]) -> None:
        """Publishes committed batches in commit order, overlapping the next transaction.

        One task, one connection: rows leave in the order they were committed.
        After a failure the outbox is dirty and this task republishes every
        unsent row from the database, oldest first, before anything newer (the
        queued batches are among them, being committed); it retries while idle.
        """
        while True:
            rows: list[outbox.Row] | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    rows = await outgoing.get()
            try:
                if self._dirty:
                    await self.flush_outbox()
                elif rows:
                    await self._publish_now(rows)
            except Exception as exc:
                if not is_transient(exc) and not isinstance(exc, nats.errors.Error):
                    log.exception("%s: publishing failed", self.consumer)
                else:
                    log.warning("%s: publishing deferred: %s", self.consumer, exc)
            finally:
                if rows is not None:
                    outgoing.task_done()

    async def _publish_now(self, rows: list[outbox.Row]) -> None:
        started = time.perf_counter()
        published, error = await self.bus.publish_rows(rows)
        self._marks += published
        self.stats.published += len(published)
        metrics = telemetry.kernel_metrics()
        metrics.outbox_published(self.consumer, len(published), time.perf_counter() - started)
        if error is not None:
            self._dirty = True
            self.stats.publish_failures += 1
            metrics.publish_failed(self.consumer, _failure_kind(error))
            log.warning(
                "%s: %d of %d messages not yet published (%s); they stay in the outbox",
                self.consumer,
                len(rows) - len(published),
                len(rows),
                error,
            )

    async def _commit_marks(self) -> None:
        if not self._marks:
            return
        marks, self._marks = self._marks, []
        try:
            async with transaction(self.engine) as conn:
                await outbox.mark_published(conn, marks, _now())
        except BaseException:
            self._marks = marks + self._marks
            raise

    async def flush_outbox(self) -> None:
        """Publish every unsent row this consumer wrote, oldest first.

        ``dirty`` is cleared before the first read, so a batch that fails while
        this runs (and may have committed unseen rows) dirties it again.
        """
        self._dirty = False
        try:
            await self._flush_unsent()
        except BaseException:
            self._dirty = True
            raise

    async def _flush_unsent(self) -> None:
        await self._commit_marks()
        while True:
            async with self.read_engine.connect() as conn:
                stored = await outbox.unsent(conn, producer=self.consumer, limit=1000)
            if not stored:
                return
            published, error = await self.bus.publish_rows([s.row for s in stored])
            self.stats.published += len(published)
            self._marks += published
            await self._commit_marks()
            metrics = telemetry.kernel_metrics()
            oldest = min(s.created_at for s in stored)
            lag = (_now() - _aware(oldest)).total_seconds()
            metrics.outbox_published(self.consumer, len(published), lag)
            if error is not None:
                self.stats.publish_failures += 1
                metrics.publish_failed(self.consumer, _failure_kind(error))
                raise error

    # -- dead letters --------------------------------------------------------

    async def _dead_letter(
        self, item: _Item, kind: DeadLetterKind, reason: str, attempts: int
    ) -> None:
        msg = item.msg
        meta = msg.metadata
        original = dict(msg.headers or {})
        identity = message_id(original, meta.stream, item.seq)
        headers = {k: v for k, v in original.items() if k != Header.MSG_ID}
        headers.update(
            {
                Header.MSG_ID.value: ids.dead_letter_id(self.consumer, meta.stream, item.seq),
                Header.MESSAGE_ID.value: identity,
                Header.DLQ_REASON.value: reason[:4000],
                Header.DLQ_KIND.value: kind,
                Header.DLQ_SUBJECT.value: msg.subject,
                Header.DLQ_STREAM.value: meta.stream,
                Header.DLQ_STREAM_SEQ.value: str(item.seq),
                Header.DLQ_CONSUMER.value: self.consumer,
                Header.DLQ_ATTEMPTS.value: str(attempts),
            }
        )
        await self.bus.publish(subjects.dead_letter_subject(self.actor.name), msg.data, headers)
        self.stats.dead_lettered += 1
        telemetry.kernel_metrics().dead_lettered(self.actor.name, kind)
        fields = logs.context_fields(item.decoded.ctx, self.actor.name) if item.decoded else {}
        with logs.bind(**fields):
            log.warning(
                "%s: dead-lettered %s seq %d (%s): %s",
                self.consumer,
                msg.subject,
                item.seq,
                kind,
                reason,
            )
        if original.get(Header.WANT_OUTCOME) == "1" and msg.subject.startswith("cmd."):
            await self._publish_dead_outcome(msg.subject, identity, kind, reason)

    async def _publish_dead_outcome(
        self, subject: str, identity: str, kind: str, reason: str
    ) -> None:
        parts = subject.split(".")
        outcome = Outcome(
            command_id=identity,
            domain=self.actor.domain,
            key=parts[2] if len(parts) > 2 else "",
            command=".".join(parts[1:4:2]) if len(parts) > 3 else subject,
            status="dead_lettered",
            rejection=Rejection(kind="invalid", code=kind, reason=reason),
            handled_at=_now(),
        )
        with contextlib.suppress(Exception):
            await self.bus.publish(
                subjects.outcome_subject(self.actor.domain, identity),
                self._encoder.encode(outcome),
                {Header.MSG_ID.value: ids.outcome_id(self.actor.name, identity)},
            )

    # -- preview and query ---------------------------------------------------

    async def _start_responders(self) -> list[Subscription]:
        group = f"troupe.{self.actor.name}"
        subs = []
        if self.actor.commands:
            subs.append(
                await self.bus.nc.subscribe(
                    f"{subjects.PREVIEW}.{self.actor.domain}.*.*", queue=group, cb=self._preview
                )
            )
        subs.append(
            await self.bus.nc.subscribe(
                f"{subjects.QUERY}.{self.actor.domain}.*", queue=group, cb=self._query
            )
        )
        return subs

    async def _preview(self, msg: Msg) -> None:
        parts = msg.subject.split(".")
        headers: Mapping[str, str] = msg.headers or {}
        try:
            parsed = subjects.parse(".".join(["cmd", *parts[1:4]]))
            body = self.codec.decode_body(parsed, msg.data)
        except (subjects.InvalidSubject, Undecodable) as exc:
            code = exc.kind if isinstance(exc, Undecodable) else "subject"
            reply = ErrorReply(error=Rejection(code=code, reason=str(exc)))
            await _respond(msg, self._encoder.encode(reply))
            return
        ident = headers.get(Header.MESSAGE_ID) or f"preview-{_nuid.next().decode()}"
        ctx = Context(
            key=parsed.key,
            message_id=ident,
            subject=str(msgspec.structs.replace(parsed, partition=None)),
            received_at=_now(),
            correlation_id=headers.get(Header.CORRELATION_ID) or ident,
            tenant=headers.get(Header.TENANT) or "default",
            principal=headers.get(Header.PRINCIPAL),
        )
        decoded = Decoded(body, ctx, ident, True, None, headers)
        try:
            async with self.read_engine.connect() as conn:
                loaded = await self.actor.store.load(conn, self.actor.name, [parsed.key])
            stored = loaded.get(parsed.key)
            state = stored.state if stored else self.actor.initial(parsed.key)
            version = stored.version if stored else 0
            decision = self.actor.decide(state, body, ctx)
            if isinstance(decision, Rejection):
                outcome = self._outcome(decoded, "rejected", [], decision, version)
            else:
                emitted, own = self._emit(decoded, decision)
                if own:
                    fold(self.actor, state, own)  # an evolve failure would fail the apply too
                    version += 1
                outcome = self._outcome(decoded, "preview", emitted, None, version)
        except Exception as exc:
            log.exception("%s: preview of %s failed", self.consumer, msg.subject)
            cause = exc.cause if isinstance(exc, HandlerFailed) else exc
            reply = ErrorReply(
                error=Rejection(
                    code="preview_failed", reason=f"{type(cause).__name__}: {cause}", kind="invalid"
                )
            )
            await _respond(msg, self._encoder.encode(reply))
            return
        await _respond(msg, self._encoder.encode(outcome))

    def _outcome(
        self,
        d: Decoded,
        status: Any,
        emitted: Sequence[outbox.Row],
        rejection: Rejection | None,
        version: int,
    ) -> Outcome:
        return Outcome(
            command_id=d.message_id,
            domain=self.actor.domain,
            key=d.ctx.key,
            command=tag_of(type(d.body)),
            status=status,
            events=[_emitted_event(r) for r in emitted],
            rejection=rejection,
            version=version,
            handled_at=_now(),
        )

    async def _query(self, msg: Msg) -> None:
        key = msg.subject.split(".")[-1]
        try:
            subjects.check_key(key)
            async with self.read_engine.connect() as conn:
                loaded = await self.actor.store.load(conn, self.actor.name, [key])
        except Exception as exc:
            reply = ErrorReply(error=Rejection(code="query_failed", reason=str(exc)))
            await _respond(msg, self._encoder.encode(reply))
            return
        stored = loaded.get(key)
        state = stored.state if stored else self.actor.initial(key)
        answer = StateReply(
            domain=self.actor.domain,
            key=key,
            exists=stored is not None,
            version=stored.version if stored else 0,
            state=msgspec.Raw(self._encoder.encode(state)),
        )
        await _respond(msg, self._encoder.encode(answer))


def _emitted_event(row: outbox.Row) -> EmittedEvent:
    return EmittedEvent(
        id=row.event_id, subject=row.subject, type=row.type, data=msgspec.Raw(row.payload)
    )


class _Traced(msgspec.Struct, frozen=True):
    """A decision with the trace headers of the span that made it."""

    decision: Sequence[Any]
    headers: dict[str, str]


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _failure_kind(error: BaseException) -> str:
    if isinstance(error, TimeoutError | nats.errors.TimeoutError):
        return "timeout"
    if isinstance(error, nats.errors.NoRespondersError):
        return "no_responders"
    return "error"


def _first_of_each(items: Sequence[_Item]) -> list[_Item]:
    """Drop later copies of a message id within one batch (a republish outside the dedup window)."""
    seen: set[str] = set()
    out = []
    for item in items:
        assert item.decoded is not None
        if item.decoded.message_id in seen:
            continue
        seen.add(item.decoded.message_id)
        out.append(item)
    return out


async def _respond(msg: Msg, payload: bytes) -> None:
    if msg.reply:
        with contextlib.suppress(Exception):
            await msg.respond(payload)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def _cancel_all(tasks: Sequence[asyncio.Task[None]], consumer: str) -> None:
    """Cancel ``tasks`` and wait for them, never forever: a task that swallowed its
    cancellation is cancelled again, then left behind with a warning."""
    pending = {t for t in tasks if not t.done()}
    for attempt in range(3):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=2.0 * (attempt + 1))
    for task in pending:
        log.warning("%s: task %s did not stop when cancelled", consumer, task.get_name())
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()


__all__ = ["Abandoned", "LeaseLost", "Runner", "Stats"]
