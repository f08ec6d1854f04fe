"""``troupe battleship eval|rooms|ladder|replay``: evaluate players, and read the lobby, ladders and
match replays."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from actors.battleship.engine import Rules
from actors.battleship.errors import BattleshipError
from actors.battleship.evaluate import Evaluation, evaluate, table
from actors.battleship.players import BASELINES
from actors.battleship.players import Player as Policy
from actors.kernel.config import Settings
from actors.kernel.db import create_engine, is_sqlite
from actors.kernel.host import engines
from schemas.subjects import check_key
from troupe import services

console = Console()
err = Console(stderr=True)
_json = msgspec.json.Encoder()

DEFAULT_PLAYERS = ",".join(BASELINES)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _lengths(text: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of ship lengths, e.g. 5,4,3,3,2"
        ) from None
    if not lengths:
        raise argparse.ArgumentTypeError("give at least one ship length")
    return lengths


def register(sub: Any) -> None:
    """Add ``troupe battleship`` and its subcommands."""
    battleship = sub.add_parser("battleship", help="Battleship: evaluate players, rooms, ladders")
    verbs = battleship.add_subparsers(dest="battleship_command", required=True)

    ev = verbs.add_parser(
        "eval",
        help="play N seeded games per player; print mean, median, p90 and worst shots to win",
        description=(
            "Every player fires at the same N seeded, randomly placed fleets (game i has the "
            "same fleet for every player) until each is sunk. Baselines need nothing running; "
            "trained agents are read from the agent registry in the configured database."
        ),
    )
    ev.add_argument("--games", type=_positive, default=1000, help="games per player (1000)")
    ev.add_argument(
        "--players",
        default=DEFAULT_PLAYERS,
        help=f"comma-separated agent ids (default: every baseline, {DEFAULT_PLAYERS})",
    )
    ev.add_argument("--seed", type=int, default=0, help="seed of the fleets and the players (0)")
    ev.add_argument("--height", type=_positive, default=10, help="board rows (10)")
    ev.add_argument("--width", type=_positive, default=10, help="board columns (10)")
    ev.add_argument("--ships", type=_lengths, default=(5, 4, 3, 3, 2), help="lengths (5,4,3,3,2)")
    ev.add_argument("--no-touch", action="store_true", help="ships never touch")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--trace", action="store_true", help="record spans and metrics per game")
    ev.add_argument("--json", action="store_true", help="one JSON object per player")
    ev.set_defaults(handler=eval_handler)

    rooms = verbs.add_parser("rooms", help="list rooms, newest first")
    rooms.add_argument(
        "--status",
        action="append",
        choices=("open", "full", "in_match", "closed"),
        help="only rooms in this status (repeatable; default every status but closed)",
    )
    rooms.add_argument("--member", help="only rooms this user is in")
    rooms.add_argument("--limit", type=_positive, default=50)
    rooms.add_argument("--json", action="store_true")
    rooms.set_defaults(handler=rooms_handler)

    ladder = verbs.add_parser("ladder", help="a ladder best first: rating, games, wins, streak")
    ladder.add_argument("ladder", nargs="?", default="standard", help="ladder id (standard)")
    ladder.add_argument("--kind", choices=("user", "agent"), help="only users or only agents")
    ladder.add_argument("--limit", type=_positive, default=50)
    ladder.add_argument("--offset", type=int, default=0)
    ladder.add_argument("--json", action="store_true")
    ladder.set_defaults(handler=ladder_handler)

    replay = verbs.add_parser("replay", help="a match's events from the stream, as JSON lines")
    replay.add_argument("match_id")
    replay.add_argument("--viewer", help="redact for this user (default: hide both fleets)")
    replay.add_argument(
        "--reveal", action="store_true", help="show everything, even of an unfinished match"
    )
    replay.set_defaults(handler=replay_handler)


# ---------------------------------------------------------------- eval


async def _trained(names: list[str], settings: Settings) -> tuple[dict[str, Policy], str | None]:
    """Trained agents among ``names``, read from the agent registry in the database.

    Returns the players found and, when the registry could not be read, why. Nothing is
    created: without a database there are simply no trained agents.
    """
    try:
        from actors.training.agents import load_player
        from actors.training.errors import TrainingError
    except ImportError:
        return {}, None
    url = settings.resolved_database_url()
    if is_sqlite(url) and not await asyncio.to_thread(Path(make_url(url).database or "").is_file):
        return {}, None
    engine = create_engine(url, write=False)
    found: dict[str, Policy] = {}
    try:
        for name in names:
            player = await load_player(engine, name)
            if player is not None:
                found[name] = player
    except (SQLAlchemyError, OSError, TrainingError) as exc:
        return found, str(exc).splitlines()[0]
    finally:
        await engine.dispose()
    return found, None


def _play_game(traced: bool) -> Any:
    if not traced:
        return None
    from actors.battleship.telemetry import traced_play

    def play_game(player: Policy, rules: Rules, fleet: Any, rng: Any, game: int) -> int:
        return traced_play(player, rules, fleet, rng, game_id=f"eval-{player.name}-{game}")

    return play_game


def _evaluate_all(
    players: Mapping[str, Policy], args: argparse.Namespace, rules: Rules
) -> list[Evaluation]:
    play_game = _play_game(args.trace)
    extra: dict[str, Any] = {"play_game": play_game} if play_game is not None else {}
    return [
        evaluate(
            player,
            args.games,
            rules=rules,
            seed=args.seed,
            progress=not args.no_progress and not args.json,
            console=err,
            **extra,
        )
        for player in players.values()
    ]


async def eval_handler(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate the chosen players and print their shots-to-win statistics."""
    names = list(dict.fromkeys(n.strip() for n in args.players.split(",") if n.strip()))
    if not names:
        err.print("[red]troupe: --players names no player[/red]")
        return 2
    try:
        rules = Rules.of(args.height, args.width, args.ships, no_touch=args.no_touch)
    except BattleshipError as exc:
        err.print(f"[red]troupe: {exc}[/red]")
        return 2
    players: dict[str, Policy] = {n: BASELINES[n] for n in names if n in BASELINES}
    missing = [n for n in names if n not in players]
    if missing:
        trained, problem = await _trained(missing, settings)
        players.update(trained)
        unknown = [n for n in missing if n not in players]
        if unknown:
            why = f"; trained agents could not be read: {problem}" if problem else ""
            err.print(
                f"[red]troupe: unknown players: {', '.join(unknown)} "
                f"(baselines: {DEFAULT_PLAYERS}){why}[/red]"
            )
            return 2
    results = _evaluate_all({n: players[n] for n in names}, args, rules)
    if args.json:
        for result in results:
            sys.stdout.buffer.write(_json.encode(result) + b"\n")
        sys.stdout.flush()
    else:
        console.print(table(results, rules))
    return 0


# ---------------------------------------------------------------- reads


async def rooms_handler(args: argparse.Namespace, settings: Settings) -> int:
    """Print the lobby list."""
    from actors.lobby.store import LISTED, list_rooms

    write, read = engines(settings)
    try:
        async with read.connect() as conn:
            found = await list_rooms(
                conn, status=tuple(args.status or LISTED), member=args.member, limit=args.limit
            )
    finally:
        await write.dispose()
        await read.dispose()
    if args.json:
        for room in found:
            sys.stdout.buffer.write(_json.encode(room) + b"\n")
        return 0
    out = Table("room", "name", "status", "members", "host", "ladder", "rated", "matches")
    for r in found:
        out.add_row(
            r.room_id,
            r.name,
            r.status,
            f"{len(r.members)}/{r.capacity} {', '.join(r.members)}",
            r.host,
            r.ladder,
            "yes" if r.rated else "no",
            str(r.matches_played),
        )
    console.print(out)
    return 0


async def ladder_handler(args: argparse.Namespace, settings: Settings) -> int:
    """Print a ladder."""
    from actors.ratings.store import ladder

    write, read = engines(settings)
    try:
        async with read.connect() as conn:
            rows = await ladder(
                conn, args.ladder, kind=args.kind, limit=args.limit, offset=args.offset
            )
    finally:
        await write.dispose()
        await read.dispose()
    if args.json:
        for row in rows:
            sys.stdout.buffer.write(_json.encode(row) + b"\n")
        return 0
    out = Table("rank", "kind", "player", "rating", "games", "wins", "losses", "streak", "peak")
    for s in rows:
        out.add_row(
            str(s.rank),
            s.player.kind,
            s.player.id,
            f"{s.rating:.2f}",
            str(s.games),
            str(s.wins),
            str(s.losses),
            f"{s.streak:+d}",
            f"{s.peak:.2f}",
        )
    console.print(out if rows else f"nobody is on the {args.ladder} ladder yet")
    return 0


async def replay_handler(args: argparse.Namespace, settings: Settings) -> int:
    """Print a match's replay as JSON lines: each event, then the folded state."""
    from actors.match.replay import replay

    check_key(args.match_id)
    async with services.connected(settings) as bus:
        shown = await replay(bus.js, args.match_id, viewer=args.viewer, reveal=args.reveal)
    if not shown.events:
        err.print(f"[red]troupe: no events for match {args.match_id}[/red]")
        return 1
    for event in shown.events:
        sys.stdout.buffer.write(_json.encode(event) + b"\n")
    sys.stdout.buffer.write(_json.encode({"state": shown.state, "redacted": shown.redacted}))
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    return 0


__all__ = ["eval_handler", "ladder_handler", "register", "replay_handler", "rooms_handler"]
