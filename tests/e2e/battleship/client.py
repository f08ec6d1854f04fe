"""A small client of the Battleship routes and sockets: requests, strict frame decoding, play."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection

from gateway.battleship.frames import (
    CommandAck,
    CommandRefused,
    LobbyFrame,
    MatchEventFrame,
    MatchFrame,
)

F = TypeVar("F")
E = TypeVar("E")

LOBBY_FRAMES: msgspec.json.Decoder[LobbyFrame] = msgspec.json.Decoder(LobbyFrame)
"""Decodes lobby frames strictly: a frame off its schema fails the test."""
MATCH_FRAMES: msgspec.json.Decoder[MatchFrame] = msgspec.json.Decoder(MatchFrame)
"""Decodes match frames strictly."""


class Api:
    """Requests as one caller: a bearer token (authentication on) or a named local player."""

    def __init__(
        self, http: httpx.AsyncClient, *, token: str | None = None, player: str | None = None
    ) -> None:
        self.http = http
        self.token = token
        self.player = player

    def headers(self, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def body(self, body: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(body or {})
        if self.player is not None and self.token is None:
            out.setdefault("player", self.player)
        return out

    async def post(
        self, path: str, body: dict[str, Any] | None = None, *, key: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            f"/v1/battleship{path}",
            json=self.body(body),
            headers=self.headers(key or str(uuid.uuid4())),
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        if self.player is not None and self.token is None and "player" not in params:
            params["player"] = self.player
        params = {k: v for k, v in params.items() if v is not None}
        return await self.http.get(f"/v1/battleship{path}", params=params, headers=self.headers())

    async def ok(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST and insist on 200; the outcome body."""
        response = await self.post(path, body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def ws_url(self, base_url: str, path: str, **params: Any) -> str:
        query = {k: str(v) for k, v in params.items() if v is not None}
        if self.token:
            query["access_token"] = self.token
        elif self.player is not None:
            query.setdefault("player", self.player)
        url = base_url.replace("http://", "ws://") + f"/v1/ws/{path}"
        return f"{url}?{urlencode(query)}" if query else url


async def recv(
    socket: ClientConnection, decoder: msgspec.json.Decoder[F], within: float = 20.0
) -> F:
    """The next frame, decoded strictly."""
    data = await asyncio.wait_for(socket.recv(), within)
    return decoder.decode(data)


async def until(
    socket: ClientConnection,
    decoder: msgspec.json.Decoder[F],
    done: Callable[[F], bool],
    within: float = 30.0,
) -> list[F]:
    """Frames up to and including the first for which ``done`` holds."""
    got: list[F] = []
    async with asyncio.timeout(within):
        while True:
            frame = await recv(socket, decoder, within)
            got.append(frame)
            if done(frame):
                return got


def event_types(frames: list[Any]) -> list[str]:
    """The ``type`` tags of the events the frames carry (frames without one skipped)."""
    out = []
    for frame in frames:
        event = getattr(frame, "event", None)
        if event is not None:
            out.append(event.__struct_config__.tag)
    return out


class Feed:
    """One match socket and every frame read from it so far."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.frames: list[MatchFrame] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.socket.send(msgspec.json.encode(frame).decode())

    async def until(self, done: Callable[[MatchFrame], bool], within: float = 30.0) -> MatchFrame:
        """Read up to the first frame for which ``done`` holds; return it."""
        self.frames += await until(self.socket, MATCH_FRAMES, done, within)
        return self.frames[-1]

    async def answer(self, ref: str | None) -> CommandAck | CommandRefused:
        """The ack or refusal of the command sent with ``ref``."""
        found = await self.until(
            lambda f: isinstance(f, CommandAck | CommandRefused) and f.ref == ref
        )
        assert isinstance(found, CommandAck | CommandRefused)
        return found

    async def event(self, kind: type[E]) -> E:
        """Read up to the next event of type ``kind``; return it."""
        found = await self.until(
            lambda f: isinstance(f, MatchEventFrame) and isinstance(f.event, kind)
        )
        assert isinstance(found, MatchEventFrame)
        event = found.event
        assert isinstance(event, kind)
        return event

    def events(self, kind: type[E] | None = None) -> list[E]:
        """Every event read so far (of type ``kind``)."""
        out: list[Any] = [f.event for f in self.frames if isinstance(f, MatchEventFrame)]
        return out if kind is None else [e for e in out if isinstance(e, kind)]

    def event_frames(self) -> list[MatchEventFrame]:
        return [f for f in self.frames if isinstance(f, MatchEventFrame)]
