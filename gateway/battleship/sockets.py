"""``/v1/ws/lobby`` and ``/v1/ws/matches/{id}``: rooms and matches live, resumable by sequence.

Both sockets tail the EVENTS stream (``evt.lobby.>``, ``evt.match.<id>.>``) and frame
every event with its stream sequence. ``last_seq=N`` (the last sequence a client
processed) or ``from_seq=N+1`` resumes right after it. The match socket folds the whole
match from its first event, so it knows seats, turns and the end, redacts each event for
its viewer, and turns the client's move and chat frames into the match actor's commands,
checked first (a spectator, a shot out of turn, a move after the end are refused without
sending a command).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import WebsocketRouteHandler
from litestar.params import PathParameter
from litestar.status_codes import WS_1008_POLICY_VIOLATION, WS_1011_INTERNAL_ERROR
from nats.aio.msg import Msg

from actors.lobby.store import list_rooms
from actors.match import rules as match_rules
from actors.match.replay import redact
from actors.match.rules import MatchState
from gateway.auth import AuthError
from gateway.battleship.frames import (
    CaughtUp,
    ChatFrame,
    ClientFrame,
    CommandAck,
    CommandRefused,
    FireFrame,
    Heartbeat,
    LobbyEventFrame,
    LobbyReady,
    MatchEventFrame,
    MatchReady,
    PlaceFleetFrame,
    ResignFrame,
    Reveal,
    SocketError,
)
from gateway.battleship.identity import Acting, acting, socket_command_id
from gateway.battleship.models import LobbyEvent, MatchEvent
from gateway.battleship.moves import check_move, target
from gateway.battleship.rest import PAGE_MAX, READ_ACTION
from gateway.battleship.tail import Tail
from gateway.battleship.views import seats_of
from gateway.problems import ProblemError
from gateway.queries import MAX_SEQ, visible_to
from gateway.sender import BusUnavailable, SendError
from schemas.base import Command, Rejection
from schemas.battleship import Chat, Fire, MatchCreated, MatchFinished, PlaceFleet, Resign
from schemas.envelope import Outcome
from schemas.headers import Header
from schemas.subjects import InvalidSubject, check_key, parse

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = ["CloseSocket", "parse_resume", "socket_routes"]

log = logging.getLogger("troupe.gateway.battleship")

_ENCODER = msgspec.json.Encoder()
_LOBBY_EVENT: msgspec.json.Decoder[LobbyEvent] = msgspec.json.Decoder(LobbyEvent)
_MATCH_EVENT: msgspec.json.Decoder[MatchEvent] = msgspec.json.Decoder(MatchEvent)
_CLIENT: msgspec.json.Decoder[ClientFrame] = msgspec.json.Decoder(ClientFrame)
_SEEN_IDS: Final = 4096
"""Event ids remembered per socket, to drop an event republished under a new sequence."""
_FINAL: Final = frozenset({"invalid_target"})
"""Refusals that do not depend on the match's state (no second look needed)."""
_STATUS: Final = {"invalid": 422, "conflict": 409, "forbidden": 403, "not_found": 404}

MatchIdPath = Annotated[str, PathParameter(description="The match id.")]


class CloseSocket(Exception):
    """Raised to end a socket with ``code`` after sending ``error`` as the last frame."""

    def __init__(self, code: int, error: SocketError) -> None:
        super().__init__(error.detail)
        self.code = code
        self.error = error


def _policy(code: str, detail: str) -> CloseSocket:
    return CloseSocket(WS_1008_POLICY_VIOLATION, SocketError(code=code, detail=detail))


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20


def parse_resume(params: Mapping[str, str]) -> int | None:
    """The first sequence to deliver from ``last_seq`` (+1) or ``from_seq``; None: from now on."""
    last, first = params.get("last_seq") or None, params.get("from_seq") or None
    if last is not None and first is not None:
        raise _policy("invalid_resume", "send last_seq or from_seq, not both")
    if last is not None:
        if not _number(last) or int(last) >= MAX_SEQ:
            raise _policy("invalid_resume", "last_seq must be an integer >= 0")
        return int(last) + 1
    if first is not None:
        if not _number(first) or not 1 <= int(first) <= MAX_SEQ:
            raise _policy("invalid_resume", "from_seq must be an integer >= 1")
        return int(first)
    return None


class _Out:
    """Frames to one socket, one at a time (the tail and the command answers share it)."""

    def __init__(self, socket: WebSocket[Any, Any, Any]) -> None:
        self.socket = socket
        self._lock = asyncio.Lock()

    async def send(self, frame: msgspec.Struct) -> None:
        data = _ENCODER.encode(frame).decode()
        async with self._lock:
            await self.socket.send_text(data)


class _Seen:
    """The ids of the latest events sent, bounded."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str | None) -> bool:
        if event_id is None:
            return True
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > _SEEN_IDS:
            self._ids.popitem(last=False)
        return True


async def _pump(tail: Tail, out: _Out, handle: Callable[[Msg], Awaitable[None]]) -> None:
    """Hand every message to ``handle``, with a caught-up frame once and heartbeats when quiet."""
    caught_up = False
    if tail.pending == 0:
        await out.send(CaughtUp(seq=tail.handled))
        caught_up = True
    while True:
        msgs = await tail.next()
        if msgs is None:
            await out.send(Heartbeat(seq=tail.handled))
            continue
        for msg in msgs:
            await handle(msg)
        if not caught_up and tail.pending == 0:
            await out.send(CaughtUp(seq=tail.handled))
            caught_up = True


async def _first_done(*aws: Awaitable[None]) -> None:
    """Run ``aws`` until one ends; cancel the others; re-raise the first one's failure."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    failures = [task.exception() for task in done]  # every one retrieved, then the first raised
    for failure in failures:
        if failure is not None and not isinstance(failure, WebSocketDisconnect | OSError):
            raise failure


async def _run_socket(
    socket: WebSocket[Any, Any, Any], body: Callable[[], Awaitable[None]], name: str
) -> None:
    """Accept, run ``body``, and close with an error frame on a refusal or a failure."""
    await socket.accept()
    try:
        await body()
    except CloseSocket as closed:
        with contextlib.suppress(Exception):
            await socket.send_text(_ENCODER.encode(closed.error).decode())
            await socket.close(code=closed.code, reason=closed.error.code)
    except (WebSocketDisconnect, ConnectionError):
        pass
    except OSError as exc:
        # The server answers the client's close with an OSError on its next send.
        log.debug("%s socket closed by its client: %s", name, exc)
    except Exception as exc:
        log.warning("%s socket failed: %s", name, exc, exc_info=exc)
        with contextlib.suppress(Exception):
            error = SocketError(code="internal", detail="the socket failed; reconnect to resume")
            await socket.send_text(_ENCODER.encode(error).decode())
            await socket.close(code=WS_1011_INTERNAL_ERROR, reason="internal")


async def _reader(services: Services, socket: WebSocket[Any, Any, Any]) -> Caller:
    try:
        caller = await services.caller(socket)
        services.authorize_action(caller.principal, READ_ACTION)
    except AuthError as exc:
        raise _policy(exc.problem.code or "forbidden", exc.problem.detail or "") from None
    return caller


def _refused(
    ref: str | None, rejection: Rejection, command_id: str | None = None
) -> CommandRefused:
    return CommandRefused(
        ref=ref,
        code=rejection.code,
        detail=rejection.reason,
        kind=rejection.kind,
        status=_STATUS.get(rejection.kind, 503),
        command_id=command_id,
    )


class _MatchSocket:
    """One client on one match: the fold of the match so far, and the client's commands."""

    def __init__(
        self,
        services: Services,
        out: _Out,
        caller: Caller,
        who: Acting,
        match_id: str,
        from_seq: int,
    ) -> None:
        self.services = services
        self.out = out
        self.caller = caller
        self.who = who
        self.match_id = match_id
        self.from_seq = from_seq
        self.state: MatchState = match_rules.initial(match_id)
        self.seats: set[int] = set()
        self.seen = _Seen()

    async def on_event(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        if headers.get(Header.PRODUCER, "match") != "match":
            return
        if not self.seen.first_time(headers.get(Header.MSG_ID)):
            return
        try:
            event = _MATCH_EVENT.decode(msg.data)
        except msgspec.ValidationError:
            return  # a newer event type this gateway cannot read
        self.state = match_rules.evolve(self.state, event)
        if isinstance(event, MatchCreated):
            self.seats = seats_of(event.players, self.who.player)
        seq = int(msg.metadata.sequence.stream)
        if seq < self.from_seq or not visible_to(headers, self.caller):
            return
        finished = self.state.status == "finished"
        reveal = None
        if isinstance(event, MatchFinished):
            fleets = self.state.fleets
            reveal = Reveal(seed=self.state.seed, fleets=(fleets[0], fleets[1]))
        shown = redact(event, self.seats, finished)
        await self.out.send(
            MatchEventFrame(
                seq=seq,
                time=msg.metadata.timestamp,
                id=headers.get(Header.MSG_ID),
                event=shown,  # type: ignore[arg-type]  # redact keeps the event's type
                reveal=reveal,
            )
        )

    async def receive(self, socket: WebSocket[Any, Any, Any]) -> None:
        while True:
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="closed by the client", code=event["code"])
            # JSON is welcome in text and binary frames alike.
            data = event.get("text") or event.get("bytes")
            await self.handle(data if isinstance(data, str | bytes) else b"")

    async def handle(self, text: str | bytes) -> None:
        try:
            frame = _CLIENT.decode(text)
        except msgspec.ValidationError as exc:
            await self.out.send(
                _refused(None, Rejection(code="invalid_frame", reason=str(exc), kind="invalid"))
            )
            return
        except msgspec.DecodeError as exc:
            await self.out.send(
                _refused(
                    None,
                    Rejection(code="malformed_frame", reason=f"not JSON: {exc}", kind="invalid"),
                )
            )
            return
        command_id = socket_command_id(self.caller, self.who.player, self.match_id, frame.ref)
        if frame.ref is not None and await self._replayed(frame.ref, command_id):
            return
        refusal = check_move(self.state, self.seats, frame)
        if refusal is not None and refusal.code not in _FINAL:
            # The fold is as new as the frames sent so far, and a command's events may reach
            # the stream after its ack: before refusing, ask the actor for its state.
            refusal = await self._recheck(frame)
        if refusal is not None:
            await self.out.send(_refused(frame.ref, refusal))
            return
        command = self._command(frame)
        try:
            self.services.authorize(self.who.caller.principal, type(command))
        except AuthError as exc:
            problem = exc.problem
            await self.out.send(
                _refused(
                    frame.ref,
                    Rejection(
                        code=problem.code or "forbidden",
                        reason=problem.detail or "",
                        kind="forbidden",
                    ),
                )
            )
            return
        try:
            sent = await self.services.send(
                command, self.match_id, command_id=command_id, caller=self.who.caller
            )
        except BusUnavailable:
            await self.out.send(
                _refused(
                    frame.ref,
                    Rejection(
                        code="bus_unavailable",
                        reason="the bus is unavailable; nothing was sent, resend the same ref",
                        kind="unavailable",
                    ),
                    command_id,
                )
            )
            return
        await self._answer(frame.ref, command_id, sent.outcome)

    async def _replayed(self, ref: str, command_id: str) -> bool:
        """Answer a resent ``ref`` with its command's stored outcome, if it has one."""
        try:
            found = await self.services.sender.stored_outcome("match", command_id)
        except BusUnavailable:
            return False
        if found is None:
            return False
        await self._answer(ref, command_id, found.outcome)
        return True

    async def _recheck(self, frame: ClientFrame) -> Rejection | None:
        try:
            reply, _ = await self.services.sender.state(
                "match", self.match_id, within=self.services.gateway.request_timeout_seconds
            )
        except SendError:
            return check_move(self.state, self.seats, frame)
        if not reply.exists:
            return check_move(match_rules.initial(self.match_id), set(), frame)
        current = msgspec.json.decode(reply.state, type=MatchState)
        return check_move(current, seats_of(current.players, self.who.player), frame)

    def _command(self, frame: ClientFrame) -> Command:
        player = self.who.player
        match frame:
            case FireFrame():
                row, col = target(frame.row, frame.col, frame.cell)
                return Fire(player=player, row=row, col=col)
            case PlaceFleetFrame():
                return PlaceFleet(player=player, ships=frame.ships, seed=frame.seed)
            case ChatFrame():
                return Chat(player=player, text=frame.text)
            case ResignFrame():
                return Resign(player=player)
        raise TypeError(f"unexpected frame {type(frame).__name__}")

    async def _answer(self, ref: str | None, command_id: str, outcome: Outcome | None) -> None:
        if outcome is None:
            await self.out.send(CommandAck(ref=ref, command_id=command_id, status="pending"))
        elif outcome.status == "applied":
            await self.out.send(
                CommandAck(
                    ref=ref, command_id=command_id, status="applied", version=outcome.version
                )
            )
        elif outcome.status == "rejected" and outcome.rejection is not None:
            await self.out.send(_refused(ref, outcome.rejection, command_id))
        else:
            reason = outcome.rejection.reason if outcome.rejection else "no reason recorded"
            frame = _refused(
                ref,
                Rejection(
                    code="dead_lettered",
                    reason=f"the match actor could not handle this command: {reason}",
                    kind="unavailable",
                ),
                command_id,
            )
            await self.out.send(msgspec.structs.replace(frame, status=500))


def socket_routes(services: Services) -> list[WebsocketRouteHandler]:
    """The lobby and match sockets (mounted at /v1)."""
    settings = services.gateway

    async def lobby_socket(socket: WebSocket[Any, Any, Any]) -> None:
        async def body() -> None:
            caller = await _reader(services, socket)
            start = parse_resume(socket.query_params)
            tail = Tail(
                services.bus.js,
                "evt.lobby.>",
                after=0,
                batch=settings.live_batch,
                idle=settings.live_heartbeat_seconds,
            )
            last = await tail.last_seq()
            rooms = None
            if start is None:
                # Rooms are committed before their events are published, so this list holds
                # every event up to ``last``; frames after it may repeat what it shows.
                start = last + 1
                engine = services.read_engine or services.engine
                async with engine.connect() as conn:
                    rooms = await list_rooms(conn, limit=PAGE_MAX)
            tail.handled = start - 1
            out = _Out(socket)
            seen = _Seen()

            async def on_event(msg: Msg) -> None:
                headers = dict(msg.headers or {})
                if headers.get(Header.PRODUCER, "lobby") != "lobby":
                    return
                if not visible_to(headers, caller) or not seen.first_time(
                    headers.get(Header.MSG_ID)
                ):
                    return
                try:
                    event = _LOBBY_EVENT.decode(msg.data)
                except msgspec.ValidationError:
                    return
                await out.send(
                    LobbyEventFrame(
                        seq=int(msg.metadata.sequence.stream),
                        time=msg.metadata.timestamp,
                        id=headers.get(Header.MSG_ID),
                        room_id=parse(msg.subject).key,
                        event=event,
                    )
                )

            try:
                await tail.open()
                await out.send(LobbyReady(from_seq=start, last_seq=last, rooms=rooms))
                await _first_done(_pump(tail, out, on_event), _until_closed(socket))
            finally:
                await tail.close()

        await _run_socket(socket, body, "lobby")

    async def match_socket(socket: WebSocket[Any, Any, Any], match_id: MatchIdPath) -> None:
        async def body() -> None:
            caller = await _reader(services, socket)
            try:
                check_key(match_id)
            except InvalidSubject as exc:
                raise _policy("invalid_match_id", str(exc)) from None
            try:
                who = acting(caller, socket.query_params.get("player") or None)
            except ProblemError as exc:
                raise _policy(exc.problem.code or "forbidden", exc.problem.detail or "") from None
            resume = parse_resume(socket.query_params)
            # The whole match is read to fold it (seats, turn, the end); frames start at
            # the client's position.
            tail = Tail(
                services.bus.js,
                f"evt.match.{match_id}.>",
                after=0,
                batch=settings.live_batch,
                idle=settings.live_heartbeat_seconds,
            )
            last = await tail.last_seq()
            start = last + 1 if resume is None else resume
            out = _Out(socket)
            session = _MatchSocket(services, out, caller, who, match_id, start)
            try:
                await tail.open()
                await out.send(
                    MatchReady(match_id=match_id, player=who.player, from_seq=start, last_seq=last)
                )
                await _first_done(_pump(tail, out, session.on_event), session.receive(socket))
            finally:
                await tail.close()

        await _run_socket(socket, body, "match")

    return [
        websocket("/ws/lobby", name="battleship:ws:lobby")(lobby_socket),
        websocket("/ws/matches/{match_id:str}", name="battleship:ws:match")(match_socket),
    ]


async def _until_closed(socket: WebSocket[Any, Any, Any]) -> None:
    # The lobby socket takes no client frames; reading is how a closed socket is noticed.
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
