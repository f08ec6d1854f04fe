"""``/v1/events/live``: a WebSocket tailing stored events from a sequence, without gaps or repeats.

A client that reconnects with ``from_seq = last seq + 1`` continues exactly
where it left off: the tail reads the stream in order with an ephemeral pull
consumer starting at that sequence, and never sends a sequence twice on one
socket (after a consumer is recreated, replayed sequences are skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final

import msgspec
import nats.errors
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import WebsocketRouteHandler
from litestar.status_codes import WS_1008_POLICY_VIOLATION, WS_1011_INTERNAL_ERROR
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from actors.kernel.bus import EVENTS
from gateway.auth import AuthError, Principal
from gateway.models import LiveCaughtUp, LiveError, LiveEvent, LiveHeartbeat, LiveReady
from gateway.queries import EVENTS_ACTION, MAX_SEQ, InvalidFilter, check_filter, visible_to
from schemas.headers import Header

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = ["LiveTail", "live_route"]

log = logging.getLogger("troupe.gateway.live")

_ENCODER = msgspec.json.Encoder()
_BACKLOG_TIMEOUT: Final = 1.0


class _Closed(Exception):
    """Raised inside the tail when the socket must close with ``code`` after an error frame."""

    def __init__(self, code: int, error: LiveError) -> None:
        super().__init__(error.detail)
        self.code = code
        self.error = error


def _parse_from_seq(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_SEQ:
        raise _Closed(
            WS_1008_POLICY_VIOLATION,
            LiveError(code="invalid_from_seq", detail="from_seq must be an integer >= 1"),
        )
    return int(text)


class LiveTail:
    """One socket's tail: reads EVENTS from a sequence on, sends frames, keeps its position."""

    def __init__(
        self,
        js: JetStreamContext,
        socket: WebSocket[Any, Any, Any],
        caller: Caller,
        subject: str,
        consumer_filter: str,
        *,
        batch: int,
        heartbeat: float,
    ) -> None:
        self.js = js
        self.socket = socket
        self.caller = caller
        self.subject = subject
        self.consumer_filter = consumer_filter
        self.batch = batch
        self.heartbeat = heartbeat
        self.sent_seq = 0
        """Every sequence up to this one was handled (sent, or not the caller's to see)."""
        self._sub: JetStreamContext.PullSubscription | None = None
        self._pending = 0

    async def _send(self, frame: msgspec.Struct) -> None:
        await self.socket.send_text(_ENCODER.encode(frame))

    async def _consumer(self) -> None:
        await self._drop_consumer()
        config = js_api.ConsumerConfig(
            ack_policy=js_api.AckPolicy.NONE,
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.sent_seq + 1,
            filter_subject=self.consumer_filter,
            inactive_threshold=max(30.0, self.heartbeat * 4),
            mem_storage=True,
            num_replicas=1,
        )
        self._sub = await self.js.pull_subscribe(self.consumer_filter, stream=EVENTS, config=config)
        info = await self._sub.consumer_info()
        self._pending = int(info.num_pending or 0)

    async def _drop_consumer(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def run(self, from_seq: int | None) -> None:
        """Send the ready frame, the backlog, a caught-up frame, then live events until closed."""
        info = await self.js.stream_info(EVENTS)
        last = int(info.state.last_seq)
        start = last + 1 if from_seq is None else from_seq
        self.sent_seq = start - 1
        await self._consumer()
        await self._send(LiveReady(subject=self.subject, from_seq=start, last_seq=last))
        caught_up = False
        if self._pending == 0:
            await self._send(LiveCaughtUp(seq=self.sent_seq))
            caught_up = True
        failures = 0
        while True:
            try:
                msgs = await self._fetch()
            except (nats.errors.TimeoutError, TimeoutError):
                await self._send(LiveHeartbeat(seq=self.sent_seq))
                continue
            except nats.errors.Error as exc:
                # The consumer is gone (server restart, inactivity): start a new one after the
                # last sequence handled, so nothing is skipped or repeated.
                failures += 1
                log.info("live tail on %s: recreating its consumer (%s)", self.subject, exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                await self._consumer()
                continue
            failures = 0
            for msg in msgs:
                meta = msg.metadata
                seq = int(meta.sequence.stream)
                if seq <= self.sent_seq:
                    continue
                self._pending = int(meta.num_pending)
                headers = dict(msg.headers or {})
                if visible_to(headers, self.caller):
                    await self._send(_event(msg, seq, headers))
                self.sent_seq = seq
                if not caught_up and self._pending == 0:
                    await self._send(LiveCaughtUp(seq=seq))
                    caught_up = True

    async def _fetch(self) -> list[Msg]:
        assert self._sub is not None
        if self._pending > 0:
            # A backlog: take what is there now, in batches.
            return await self._sub.fetch(self.batch, timeout=_BACKLOG_TIMEOUT)
        # Caught up: one long poll, which returns as soon as one event lands.
        return await self._sub.fetch(1, timeout=self.heartbeat)

    async def close(self) -> None:
        await self._drop_consumer()


def _event(msg: Msg, seq: int, headers: dict[str, str]) -> LiveEvent:
    data = bytes(msg.data or b"")
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        data = _ENCODER.encode(data.decode("utf-8", "replace"))
    return LiveEvent(
        stream=msg.metadata.stream,
        seq=seq,
        subject=msg.subject,
        time=msg.metadata.timestamp,
        id=headers.get(Header.MSG_ID),
        headers=headers,
        data=msgspec.Raw(data),
    )


async def _until_disconnect(socket: WebSocket[Any, Any, Any]) -> None:
    # Clients send nothing; reading is how a closed socket is noticed.
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")


def live_route(services: Services) -> WebsocketRouteHandler:
    """The WebSocket route (mounted at /v1)."""
    settings = services.gateway

    async def tail_events(socket: WebSocket[Principal, Any, Any]) -> None:
        await socket.accept()
        tail: LiveTail | None = None
        try:
            try:
                caller = await services.caller(socket)
                services.authorize_action(caller.principal, EVENTS_ACTION)
            except AuthError as exc:
                raise _Closed(
                    WS_1008_POLICY_VIOLATION,
                    LiveError(
                        code=exc.problem.code or "forbidden", detail=exc.problem.detail or ""
                    ),
                ) from None
            params = socket.query_params
            subject = params.get("subject") or ""
            try:
                consumer_filter = check_filter(subject, services.settings.streams.partitions)
            except InvalidFilter as exc:
                raise _Closed(
                    WS_1008_POLICY_VIOLATION, LiveError(code="invalid_subject", detail=str(exc))
                ) from None
            from_seq = _parse_from_seq(params.get("from_seq"))
            tail = LiveTail(
                services.bus.js,
                socket,
                caller,
                subject,
                consumer_filter,
                batch=settings.live_batch,
                heartbeat=settings.live_heartbeat_seconds,
            )
            runner = asyncio.ensure_future(tail.run(from_seq))
            watcher = asyncio.ensure_future(_until_disconnect(socket))
            done, _ = await asyncio.wait({runner, watcher}, return_when=asyncio.FIRST_COMPLETED)
            for task in (runner, watcher):
                if task not in done:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if watcher not in done and (failure := runner.exception()) is not None:
                raise failure
        except _Closed as closed:
            with contextlib.suppress(Exception):
                await socket.send_text(_ENCODER.encode(closed.error))
                await socket.close(code=closed.code, reason=closed.error.code)
        except WebSocketDisconnect:
            pass
        except Exception as exc:
            log.warning("live tail failed: %s", exc, exc_info=exc)
            with contextlib.suppress(Exception):
                await socket.send_text(
                    _ENCODER.encode(
                        LiveError(code="internal", detail="the tail failed; reconnect to resume")
                    )
                )
                await socket.close(code=WS_1011_INTERNAL_ERROR, reason="internal")
        finally:
            if tail is not None:
                await tail.close()

    return websocket("/events/live", name="events:live")(tail_events)
