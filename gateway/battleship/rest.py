"""REST routes of Battleship: rooms, matches (create, moves, resign, replay), agents, ladders.

Moves become the match actor's commands through the gateway's one command path
(Idempotency-Key, scope ``<domain>.<verb>``, outcome wait, problems); reads come from
the actors' state (request/reply), their tables, or the event stream, and every match
detail passes through the redaction of ``gateway.battleship.views``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from litestar import Request, Response, get, post, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.battleship.errors import InvalidRules
from actors.battleship.players import BASELINES
from actors.battleship.specs import rules_of
from actors.lobby.rules import Room
from actors.lobby.store import LISTED, list_rooms
from actors.match.replay import replay
from actors.match.rules import MatchState
from actors.match.store import matches_of
from actors.ratings import store as ratings_store
from gateway.battleship.identity import Acting, acting, derived_key
from gateway.battleship.models import (
    AgentInfo,
    AgentPage,
    ChatBody,
    FleetBody,
    LadderPage,
    MatchPage,
    MatchView,
    NewMatch,
    NewRoom,
    PlayerBody,
    ReplayBody,
    RoomDetail,
    RoomMatch,
    RoomPage,
    ShotBody,
    StandingsPage,
)
from gateway.battleship.moves import BadTarget, target
from gateway.battleship.views import match_view, redact_outcome, replay_body
from gateway.commands import KeyPath, send_error_problem
from gateway.idempotency import HEADER as IDEMPOTENCY_HEADER
from gateway.models import CommandResult, PendingCommand
from gateway.problems import (
    FieldError,
    ProblemError,
    conflict,
    forbidden,
    not_found,
    validation_failed,
)
from gateway.sender import BusUnavailable, NoResponder, RequestRefused
from schemas.base import Command
from schemas.battleship import (
    Chat,
    CloseRoom,
    CreateMatch,
    CreateRoom,
    Fire,
    JoinRoom,
    LeaveRoom,
    PlaceFleet,
    Player,
    Resign,
    RoomStatus,
    ladder_of,
)
from schemas.envelope import StateReply

if TYPE_CHECKING:
    from gateway.app import Caller, Services

__all__ = ["READ_ACTION", "rest_routes", "row_col"]

log = logging.getLogger("troupe.gateway.battleship")

READ_ACTION: Final = "battleship.read"
"""The action (``TROUPE_AUTH_REQUIRED_SCOPES``) of every Battleship read route and socket.

Separate from ``match.read`` on purpose: ``GET /v1/state/match/...`` and ``/v1/events``
show a match unredacted (fleets and seed), so those belong to operators (the match actor's
``secret_state`` keeps them closed until configured), while players need only this one.
"""
TAGS: Final = ["battleship"]
PAGE_MAX: Final = 200

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        description=(
            "Required: a unique value per operation (a UUID, say), reused only to retry it. "
            "The same key and body answer with the first response; a new room's or match's "
            "id is derived from it when the body names none."
        ),
    ),
]
TIMESTAMP_PATTERN: Final = (
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$"
)
"""An RFC 3339 timestamp with its offset (``next_before`` values have this form)."""
Limit = Annotated[int, QueryParameter(ge=1, le=PAGE_MAX, description="Items per page.")]
ViewerQuery = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description=(
            "Whose view (authentication off only; with a token it is the token's subject): "
            "a player sees their own fleet before the end, anyone else neither fleet."
        ),
    ),
]

BASELINE_DESCRIPTIONS: Final = {
    "random": "Fires at a random cell not yet shot.",
    "hunt_target": "Hunts at random until it hits, then targets the neighbours of its hits.",
    "hunt_target_parity": (
        "Hunt/target, hunting only on the parity lattice every ship afloat must cross."
    ),
    "probability": (
        "Fires where the most placements of the ships afloat fit what is known; hunts on "
        "the parity lattice."
    ),
    "probability_no_parity": (
        "Fires where the most placements of the ships afloat fit what is known."
    ),
}
"""What each built-in agent does (docs/battleship.md, "Players", measures them)."""

_COMMAND_RESPONSES: Final = {
    200: ResponseSpec(
        data_container=CommandResult,
        description="Applied: the events it produced (hidden fleets and seeds redacted).",
        generate_examples=False,
    ),
    202: ResponseSpec(
        data_container=PendingCommand,
        description="Stored, but the actor has not answered within the wait; poll Location.",
        generate_examples=False,
    ),
}


def invalid(path: str, message: str) -> ProblemError:
    """A 422 naming the one field at ``path`` that is wrong."""
    return ProblemError(validation_failed([FieldError(path=path, message=message)]))


def row_col(row: int | None, col: int | None, cell: str | None) -> tuple[int, int]:
    """The target of a shot given as ``row`` and ``col`` or as a cell name; a 422 otherwise."""
    try:
        return target(row, col, cell)
    except BadTarget as exc:
        raise invalid(f"$.{exc.field}", str(exc)) from None


def command_route(path: str, summary: str, description: str, *, name: str | None = None) -> post:
    """A route sending one command (answers as ``_COMMAND_RESPONSES``); a ``name`` such as
    ``battleship:match:fire`` also gives the operation id ``battleship_match_fire``."""
    return post(
        path,
        tags=TAGS,
        status_code=200,
        name=name,
        operation_id=None if name is None else name.replace(":", "_"),
        summary=summary,
        description=description,
        responses=_COMMAND_RESPONSES,
    )


_SHARED_PATHS: Final = {
    "/battleship/rooms": ("GET", "OPTIONS", "POST"),
    "/battleship/matches": ("GET", "OPTIONS", "POST"),
}
"""Paths served by two handlers: Litestar's automatic OPTIONS answer names only the first's
methods, so these answer OPTIONS themselves."""


def options_route(path: str, methods: tuple[str, ...]) -> HTTPRouteHandler:
    """``OPTIONS path`` answering 204 with ``Allow: <methods>``."""

    async def allowed() -> Response[None]:
        return Response(None, status_code=204, headers={"allow": ", ".join(methods)})

    return route(
        path,
        http_method=[HttpMethod.OPTIONS],
        include_in_schema=False,
        name=f"battleship:options:{path}",
    )(allowed)


def rest_routes(services: Services) -> list[HTTPRouteHandler]:
    """Every Battleship REST route (mounted at /v1)."""

    def engine() -> AsyncEngine:
        return services.read_engine or services.engine

    async def reader(request: Request[Any, Any, Any]) -> Caller:
        caller = await services.caller(request)
        services.authorize_action(caller.principal, READ_ACTION)
        return caller

    async def state(domain: str, key: str, what: str) -> StateReply:
        try:
            reply, _ = await services.sender.state(
                domain, key, within=services.gateway.request_timeout_seconds
            )
        except (NoResponder, RequestRefused, BusUnavailable) as exc:
            raise send_error_problem(exc, domain) from None
        if not reply.exists:
            raise ProblemError(not_found(f"there is no {what} {key}", code=f"{what}_not_found"))
        return reply

    async def send(
        request: Request[Any, Any, Any],
        who: Acting,
        command: Command,
        key: str,
        *,
        redact: bool = False,
        location: str | None = None,
        id_header: str | None = None,
    ) -> Response[bytes]:
        # The acting caller may differ from the request's (authentication off, a named player),
        # so the scope check runs here and the caller is handed to the one command path.
        services.authorize(who.caller.principal, type(command))
        response = await services.commands.respond(request, command, key, caller=who.caller)
        headers = dict(response.headers)
        body = response.content
        if redact and response.status_code == 200 and isinstance(body, bytes):
            body = redact_outcome(body, who.player)
        if id_header is not None:
            headers[id_header] = key
        if location is not None and response.status_code == 200:
            headers["location"] = location
        return Response(
            content=body,
            status_code=response.status_code,
            media_type=response.media_type,
            headers=headers,
        )

    async def send_new(
        request: Request[Any, Any, Any],
        who: Acting,
        command: Command,
        kind: Literal["room", "match"],
        given: str | None,
    ) -> Response[bytes]:
        """Send a command creating a room or match: its id is ``given``, else derived from the
        Idempotency-Key, and the answer names it in ``Troupe-<Kind>-Id`` and ``Location``."""
        prefix, collection = ("r", "rooms") if kind == "room" else ("m", "matches")
        key = given or derived_key(
            prefix, who.caller, request.headers.getall(IDEMPOTENCY_HEADER, [])
        )
        return await send(
            request,
            who,
            command,
            key,
            redact=kind == "match",  # a match's outcome carries fleets and the seed
            location=f"/v1/battleship/{collection}/{key}",
            id_header=f"troupe-{kind}-id",
        )

    def no_secrets_for_rated(who: Acting, rated: bool, seed: int | None, first: int | None) -> None:
        if not who.local and rated and (seed is not None or first is not None):
            raise invalid(
                "$.seed" if seed is not None else "$.first",
                "a rated match draws its own seed and opener; leave seed and first out, or set "
                "rated to false for a practice match",
            )

    # ---------------------------------------------------------------- rooms

    @get(
        "/battleship/rooms",
        tags=TAGS,
        summary="List rooms",
        description="Rooms newest first: every room not closed by default, or those of `status`.",
    )
    async def list_rooms_route(
        request: Request[Any, Any, Any],
        status: Annotated[
            list[RoomStatus] | None, QueryParameter(description="Statuses to show.")
        ] = None,
        member: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[A-Za-z0-9_-]{1,128}$", description="Only rooms this user is in."
            ),
        ] = None,
        limit: Limit = 50,
        before: Annotated[
            str | None,
            QueryParameter(
                pattern=TIMESTAMP_PATTERN,
                description=(
                    "Only rooms created before this RFC 3339 time with an offset (the "
                    "`next_before` of the previous page)."
                ),
            ),
        ] = None,
    ) -> RoomPage:
        await reader(request)
        created_before = None
        if before is not None:
            try:
                created_before = datetime.fromisoformat(before)
            except ValueError as exc:
                raise invalid("query.before", str(exc)) from None
        async with engine().connect() as conn:
            rooms = await list_rooms(
                conn,
                status=status or LISTED,
                member=member,
                limit=limit,
                created_before=created_before,
            )
        more = len(rooms) == limit
        return RoomPage(items=rooms, next_before=rooms[-1].created_at if more else None)

    @command_route(
        "/battleship/rooms",
        "Open a room",
        "Opens a room with the caller as host (`lobby.create`). The room id is the body's "
        "`room_id`, else derived from the Idempotency-Key; it is in `Troupe-Room-Id`.",
    )
    async def create_room(
        request: Request[Any, Any, Any],
        data: JSONBody[NewRoom],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        who = acting(await services.caller(request), data.player)
        command = CreateRoom(
            name=data.name,
            host=who.player,
            capacity=data.capacity,
            rated=data.rated,
            board=data.board,
            close_after_match=data.close_after_match,
        )
        return await send_new(request, who, command, "room", data.room_id)

    @get("/battleship/rooms/{room_id:str}", tags=TAGS, summary="A room")
    async def get_room(request: Request[Any, Any, Any], room_id: KeyPath) -> Response[RoomDetail]:
        await reader(request)
        reply = await state("lobby", room_id, "room")
        room = msgspec.json.decode(reply.state, type=Room)
        detail = RoomDetail(
            room_id=room.room_id,
            version=reply.version,
            status=room.status,
            name=room.name,
            host=room.host,
            capacity=room.capacity,
            members=room.members,
            rated=room.rated,
            board=room.board,
            ladder=ladder_of(room.board),
            close_after_match=room.close_after_match,
            match_id=room.match_id,
            match_players=room.match_players,
            matches_played=room.matches_played,
            created_at=room.created_at,
            updated_at=room.updated_at,
        )
        return Response(detail, headers={"etag": f'"{reply.version}"'})

    def room_command(verb: Literal["join", "leave", "close"]) -> HTTPRouteHandler:
        command_type = {"join": JoinRoom, "leave": LeaveRoom, "close": CloseRoom}[verb]

        async def handler(
            request: Request[Any, Any, Any],
            room_id: KeyPath,
            data: JSONBody[PlayerBody | None] = None,
            idempotency_key: IdempotencyKey = None,
        ) -> Response[bytes]:
            who = acting(await services.caller(request), data.player if data else None)
            return await send(request, who, command_type(user=who.player), room_id)

        return command_route(
            f"/battleship/rooms/{{room_id:str}}/{verb}",
            f"{verb.capitalize()} a room",
            f"Sends `lobby.{verb}` for the acting player.",
            name=f"battleship:room:{verb}",
        )(handler)

    @command_route(
        "/battleship/rooms/{room_id:str}/matches",
        "Start a room's match",
        "Starts the match of a full room (`match.create` with the room's board and rating); "
        "the caller must be a member. `players` picks the two members who play (the first "
        "two by default). The match id is in `Troupe-Match-Id`.",
    )
    async def start_room_match(
        request: Request[Any, Any, Any],
        room_id: KeyPath,
        data: JSONBody[RoomMatch | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        body = data or RoomMatch()
        who = acting(await services.caller(request), body.player)
        reply = await state("lobby", room_id, "room")
        room = msgspec.json.decode(reply.state, type=Room)
        if who.player not in room.members:
            raise ProblemError(
                forbidden(
                    f"{who.player} is not in room {room.name!r}; join it first",
                    code="not_a_member",
                )
            )
        if room.status != "full":
            raise ProblemError(
                conflict(
                    f"room {room.name!r} is {room.status.replace('_', ' ')} "
                    f"({len(room.members)}/{room.capacity}); a match starts when it is full",
                    code="room_not_ready",
                )
            )
        players = body.players or (room.members[0], room.members[1])
        outsiders = [p for p in players if p not in room.members]
        if outsiders:
            raise invalid("$.players", f"{', '.join(outsiders)} is not a member of the room")
        no_secrets_for_rated(who, room.rated, body.seed, body.first)
        command = CreateMatch(
            players=(Player(kind="user", id=players[0]), Player(kind="user", id=players[1])),
            room_id=room_id,
            rated=room.rated,
            board=room.board,
            seed=body.seed,
            first=body.first,
        )
        return await send_new(request, who, command, "match", body.match_id)

    # ---------------------------------------------------------------- matches

    @command_route(
        "/battleship/matches",
        "Start a match",
        "Starts a match outside rooms (`match.create`): against an agent with `opponent` "
        "(you take seat 0), or with both `players`. The match id is in `Troupe-Match-Id`; "
        "the answer never shows the agent's fleet or the seed.",
    )
    async def create_match(
        request: Request[Any, Any, Any],
        data: JSONBody[NewMatch],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        who = acting(await services.caller(request), data.player)
        if (data.opponent is None) == (data.players is None):
            raise invalid("$.opponent", "give either opponent (you play seat 0) or players")
        if data.opponent is not None:
            players = (Player(kind="user", id=who.player), data.opponent)
        else:
            assert data.players is not None
            players = data.players
        others = sorted({p.id for p in players if p.kind == "user"} - {who.player})
        if not who.local and others:
            raise ProblemError(
                forbidden(
                    f"a match you start may seat only you and agents, not {', '.join(others)}; "
                    "play other people through a room they joined",
                    code="seat_not_yours",
                )
            )
        no_secrets_for_rated(who, data.rated, data.seed, data.first)
        try:
            rules_of(data.board)
        except InvalidRules as exc:
            raise invalid("$.board", str(exc)) from None
        command = CreateMatch(
            players=players, rated=data.rated, board=data.board, seed=data.seed, first=data.first
        )
        return await send_new(request, who, command, "match", data.match_id)

    @get(
        "/battleship/matches",
        tags=TAGS,
        summary="A player's matches",
        description="Newest first, without fleets or seeds. `player` defaults to the caller.",
    )
    async def list_matches(
        request: Request[Any, Any, Any],
        player: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[A-Za-z0-9_-]{1,128}$",
                description="Whose matches (default: the caller's player id).",
            ),
        ] = None,
        kind: Annotated[
            Literal["user", "agent"], QueryParameter(description="Whether `player` is an agent.")
        ] = "user",
        status: Annotated[
            list[Literal["placing", "in_progress", "finished"]] | None,
            QueryParameter(description="Statuses to show (default: all)."),
        ] = None,
        limit: Limit = 50,
    ) -> MatchPage:
        caller = await reader(request)
        whose = player or acting(caller, None).player
        async with engine().connect() as conn:
            items = await matches_of(conn, whose, kind=kind, status=status, limit=limit)
        return MatchPage(player=whose, items=items)

    @get(
        "/battleship/matches/{match_id:str}",
        tags=TAGS,
        summary="A match, as the caller may see it",
        description=(
            "The match now: seats, boards as text grids, shots, turn. The opponent's fleet "
            "and the seed are null until the match is over. `ETag` is the version."
        ),
    )
    async def get_match(
        request: Request[Any, Any, Any], match_id: KeyPath, player: ViewerQuery = None
    ) -> Response[MatchView]:
        who = acting(await reader(request), player)
        reply = await state("match", match_id, "match")
        current = msgspec.json.decode(reply.state, type=MatchState)
        if current.status == "new":
            raise ProblemError(not_found(f"there is no match {match_id}", code="match_not_found"))
        view = match_view(current, reply.version, who.player)
        return Response(view, headers={"etag": f'"{reply.version}"'})

    @get(
        "/battleship/matches/{match_id:str}/replay",
        tags=TAGS,
        summary="A match's replay",
        description=(
            "Every event of the match in stream order, redacted for the caller until the "
            "match is over (then nothing is hidden)."
        ),
    )
    async def get_replay(
        request: Request[Any, Any, Any], match_id: KeyPath, player: ViewerQuery = None
    ) -> ReplayBody:
        who = acting(await reader(request), player)
        try:
            found = await replay(services.bus.js, match_id, viewer=who.player)
        except BusUnavailable as exc:
            raise send_error_problem(exc, "match") from None
        if not found.events:
            raise ProblemError(not_found(f"there is no match {match_id}", code="match_not_found"))
        return replay_body(found)

    def move_route(path: str, verb: str, summary: str, description: str) -> post:
        return command_route(
            f"/battleship/matches/{{match_id:str}}/{path}",
            summary,
            description,
            name=f"battleship:match:{verb}",
        )

    @move_route(
        "fleet",
        "place_fleet",
        "Place your fleet",
        "Sends `match.place_fleet`: explicit `ships`, or a random fleet when they are omitted.",
    )
    async def place_fleet(
        request: Request[Any, Any, Any],
        match_id: KeyPath,
        data: JSONBody[FleetBody | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        body = data or FleetBody()
        who = acting(await services.caller(request), body.player)
        command = PlaceFleet(player=who.player, ships=body.ships, seed=body.seed)
        return await send(request, who, command, match_id, redact=True)

    @move_route(
        "shots",
        "fire",
        "Fire",
        "Sends `match.fire` at `row`/`col` or `cell`, on your turn only; an agent's answer "
        "is in the same outcome.",
    )
    async def fire(
        request: Request[Any, Any, Any],
        match_id: KeyPath,
        data: JSONBody[ShotBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        who = acting(await services.caller(request), data.player)
        row, col = row_col(data.row, data.col, data.cell)
        return await send(request, who, Fire(player=who.player, row=row, col=col), match_id)

    @move_route("resign", "resign", "Resign", "Sends `match.resign`: the other player wins.")
    async def resign(
        request: Request[Any, Any, Any],
        match_id: KeyPath,
        data: JSONBody[PlayerBody | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        who = acting(await services.caller(request), data.player if data else None)
        return await send(request, who, Resign(player=who.player), match_id, redact=True)

    @move_route("chat", "chat", "Chat", "Sends `match.chat` (players only, 1-500 characters).")
    async def chat(
        request: Request[Any, Any, Any],
        match_id: KeyPath,
        data: JSONBody[ChatBody],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[bytes]:
        who = acting(await services.caller(request), data.player)
        return await send(request, who, Chat(player=who.player, text=data.text), match_id)

    # ---------------------------------------------------------------- agents and ladders

    async def agents() -> list[AgentInfo]:
        found = [
            AgentInfo(
                id=agent_id,
                source="baseline",
                name=agent_id.replace("_", " "),
                description=BASELINE_DESCRIPTIONS.get(
                    agent_id, (type(player).__doc__ or "").strip().split("\n", 1)[0]
                ),
            )
            for agent_id, player in BASELINES.items()
        ]
        try:
            from actors.training.queries import list_agents
        except ModuleNotFoundError:
            return found  # a deployment without the training extra seats baselines only
        for row in await list_agents(engine()):
            found.append(
                AgentInfo(
                    id=row.agent_id,
                    source="trained",
                    name=row.name,
                    description=f"a trained agent, registered by training job {row.job_id}",
                    ladder=row.ladder,
                    mean_shots=row.mean_shots,
                    median_shots=row.median_shots,
                    eval_games=row.eval_games,
                    registered_at=row.registered_at,
                )
            )
        return found

    @get(
        "/battleship/agents",
        tags=TAGS,
        summary="Agents",
        description="Every agent a match may seat as an opponent: baselines and trained agents.",
    )
    async def list_agents_route(request: Request[Any, Any, Any]) -> AgentPage:
        await reader(request)
        return AgentPage(items=await agents())

    @get("/battleship/agents/{agent_id:str}", tags=TAGS, summary="An agent")
    async def get_agent(request: Request[Any, Any, Any], agent_id: KeyPath) -> AgentInfo:
        await reader(request)
        for agent in await agents():
            if agent.id == agent_id:
                return agent
        raise ProblemError(not_found(f"there is no agent {agent_id}", code="agent_not_found"))

    @get(
        "/battleship/ladders",
        tags=TAGS,
        summary="Ladders",
        description="Every ladder (one per board setup) with its number of players.",
    )
    async def list_ladders_route(request: Request[Any, Any, Any]) -> LadderPage:
        await reader(request)
        async with engine().connect() as conn:
            return LadderPage(items=await ratings_store.list_ladders(conn))

    @get(
        "/battleship/ladders/{ladder_id:str}",
        tags=TAGS,
        summary="A ladder's standings",
        description="Players best first with rank, rating and record; `kind` keeps one kind.",
    )
    async def get_ladder(
        request: Request[Any, Any, Any],
        ladder_id: KeyPath,
        kind: Annotated[
            Literal["user", "agent"] | None, QueryParameter(description="Users or agents only.")
        ] = None,
        limit: Limit = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=2**31, description="Rows to skip.")] = 0,
    ) -> StandingsPage:
        await reader(request)
        async with engine().connect() as conn:
            rows = await ratings_store.ladder(
                conn, ladder_id, kind=kind, limit=limit, offset=offset
            )
        more = len(rows) == limit
        return StandingsPage(
            ladder_id=ladder_id, items=rows, next_offset=offset + len(rows) if more else None
        )

    @get(
        "/battleship/ladders/{ladder_id:str}/players/{kind:str}/{player_id:str}",
        tags=TAGS,
        summary="One player's standing",
        description="A user's or agent's rank, rating and record on one ladder.",
    )
    async def get_standing(
        request: Request[Any, Any, Any],
        ladder_id: KeyPath,
        kind: Annotated[Literal["user", "agent"], PathParameter(description="`user` or `agent`.")],
        player_id: KeyPath,
    ) -> ratings_store.Standing:
        await reader(request)
        async with engine().connect() as conn:
            found = await ratings_store.standing(conn, ladder_id, Player(kind=kind, id=player_id))
        if found is None:
            raise ProblemError(
                not_found(
                    f"{kind} {player_id} has no rating on ladder {ladder_id}",
                    code="not_on_ladder",
                )
            )
        return found

    return [
        *(options_route(path, methods) for path, methods in _SHARED_PATHS.items()),
        list_rooms_route,
        create_room,
        get_room,
        *(room_command(v) for v in ("join", "leave", "close")),
        start_room_match,
        create_match,
        list_matches,
        get_match,
        get_replay,
        place_fleet,
        fire,
        resign,
        chat,
        list_agents_route,
        get_agent,
        list_ladders_route,
        get_ladder,
        get_standing,
    ]
