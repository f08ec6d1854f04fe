"""The ``troupe`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from actors import registry
from actors.kernel import deadletters, history, migrate
from actors.kernel.bus import COMMANDS, DEADLETTER, EVENTS, OUTCOMES
from actors.kernel.config import ConfigError, Settings, from_env
from actors.kernel.host import Host, engines
from actors.kernel.relay import Relay
from schemas import subjects
from schemas.base import tag_of
from schemas.headers import Header
from troupe import services

console = Console()
err = Console(stderr=True)
_json = msgspec.json.Encoder()

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CliError(Exception):
    """Raised for a user mistake; printed without a traceback, exit code 2."""


def _setup_logging(verbose: bool) -> None:
    try:
        from actors.kernel.logs import configure_logging
    except ImportError:  # pragma: no cover - the logs module ships with the kernel
        logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
        return
    configure_logging(level="DEBUG" if verbose else None)


def _stream_of(subject: str) -> str:
    prefix = subject.split(".", 1)[0]
    streams = {
        subjects.COMMANDS: COMMANDS,
        subjects.EVENTS: EVENTS,
        subjects.OUTCOMES: OUTCOMES,
        subjects.DEADLETTER: DEADLETTER,
    }
    if prefix not in streams:
        raise CliError(f"{subject!r} is not under cmd., evt., out. or dlq.")
    return streams[prefix]


# -- commands ------------------------------------------------------------------


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from troupe.up import UpError, run

    try:
        return await run(settings, http=args.http or settings.http, insecure=args.insecure)
    except UpError as exc:
        raise CliError(str(exc)) from exc


async def cmd_actor(args: argparse.Namespace, settings: Settings) -> int:
    actor = registry.load(args.name)
    if settings.nats_url is None:
        raise CliError("`troupe actor` runs against configured services: set TROUPE_NATS_URL")
    host = Host(settings, [actor], nats_url=settings.nats_url, partition=args.partition)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.stop_event.set)
    await host.start()
    try:
        await host.serve()
    finally:
        await host.stop()
    return 0


async def cmd_actors(args: argparse.Namespace, settings: Settings) -> int:
    table = Table("actor", "domain", "commands", "reacts to", "emits")
    for actor in registry.load_all():
        table.add_row(
            actor.name,
            actor.domain,
            ", ".join(sorted(actor.command_types())),
            ", ".join(f"{d}.{n}" for d, n in sorted(actor.reaction_types())),
            ", ".join(tag_of(e) for e in actor.emits),
        )
    console.print(table)
    return 0


async def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    write, read = engines(settings)
    async with services.connected(settings) as bus:
        await bus.ensure_streams()
        relay = Relay(bus=bus, engine=write, read_engine=read, settings=settings)
        if args.once:
            published = await relay.pass_once()
            console.print(f"published {published} stale outbox rows")
        else:
            await relay.run(stop)
    await write.dispose()
    await read.dispose()
    return 0


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.resolved_database_url()
    if args.down:
        await asyncio.to_thread(migrate.downgrade, url, args.down)
    else:
        await asyncio.to_thread(migrate.upgrade, url, args.revision)
    current = await asyncio.to_thread(migrate.current, url)
    console.print(f"database at {', '.join(current) or 'base'}")
    return 0


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    since = datetime.fromisoformat(args.since) if args.since else None
    stream = args.stream or _stream_of(args.subject)
    async with services.connected(settings) as bus:
        async for record in history.read(
            bus.js, stream, args.subject, from_seq=args.from_seq, since=since, limit=args.limit
        ):
            sys.stdout.buffer.write(_json.encode(record) + b"\n")
    sys.stdout.flush()
    return 0


async def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    actor = registry.by_domain(args.domain)
    subjects.check_key(args.key)
    write, read = engines(settings)
    try:
        async with services.connected(settings) as bus:
            report = await history.audit(bus.js, read, actor, args.key)
    finally:
        await write.dispose()
        await read.dispose()
    if args.json:
        sys.stdout.buffer.write(_json.encode(report) + b"\n")
    else:
        verdict = "[green]matches[/green]" if report.ok else "[red]DIFFERS[/red]"
        console.print(
            f"{actor.domain} {args.key}: {report.events} events folded "
            f"({report.duplicates} duplicates skipped); database {verdict}"
        )
        for d in report.differences:
            console.print(f"  {d.path}: database={d.stored!r} events={d.folded!r}")
        for u in report.unknown_types:
            console.print(f"  unknown event type at {u}")
    return 0 if report.ok else 1


async def cmd_dlq(args: argparse.Namespace, settings: Settings) -> int:
    async with services.connected(settings) as bus:
        letters = await deadletters.list_dead_letters(bus.js, args.consumer, limit=args.limit)
        if args.dlq_command == "list":
            if args.json:
                for letter in letters:
                    sys.stdout.buffer.write(_json.encode(letter) + b"\n")
                return 0
            table = Table("seq", "consumer", "kind")
            table.add_column("subject", no_wrap=True)
            table.add_column("stream seq")
            table.add_column("reason")
            for letter in letters:
                table.add_row(
                    str(letter.seq),
                    letter.consumer,
                    letter.kind,
                    letter.subject,
                    str(letter.stream_seq),
                    letter.reason,
                )
            console.print(table)
            console.print(f"{len(letters)} dead letters")
            return 0
        chosen = letters if args.all else [x for x in letters if x.seq in set(args.seq)]
        if not chosen:
            raise CliError("nothing to redrive: give --seq N (see `troupe dlq list`) or --all")
        done = await deadletters.redrive(bus.js, chosen)
        console.print(f"redrove {len(done)} messages: {', '.join(map(str, done))}")
    return 0


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    """Publish a command and print its outcome (or preview it)."""
    import uuid

    from schemas.envelope import Outcome

    command_id = args.id or str(uuid.uuid4())
    body = args.body.encode()
    headers = {
        Header.MSG_ID.value: command_id,
        Header.WANT_OUTCOME.value: "1",
        Header.CORRELATION_ID.value: command_id,
    }
    if args.preview:
        # The identity apply would record, so previewed event ids equal the applied ones.
        headers[Header.MESSAGE_ID.value] = command_id
    if args.tenant:
        headers[Header.TENANT.value] = args.tenant
    if args.principal:
        headers[Header.PRINCIPAL.value] = args.principal
    async with services.connected(settings) as bus:
        if args.preview:
            reply = await bus.nc.request(
                subjects.preview_subject(args.domain, args.key, args.verb),
                body,
                timeout=args.wait,
                headers=headers,
            )
            sys.stdout.buffer.write(reply.data + b"\n")
            return 0
        out_subject = subjects.outcome_subject(args.domain, command_id)
        sub = await bus.nc.subscribe(out_subject)
        await bus.publish(subjects.command_subject(args.domain, args.key, args.verb), body, headers)
        try:
            msg = await sub.next_msg(timeout=args.wait)
        except Exception:
            err.print(f"no outcome within {args.wait}s; command id {command_id} is stored")
            return 3
        finally:
            await sub.unsubscribe()
        sys.stdout.buffer.write(msg.data + b"\n")
        outcome = msgspec.json.decode(msg.data, type=Outcome)
        return 0 if outcome.status == "applied" else 1


async def cmd_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from actors.kernel.catalog import render

    text = render(registry.load_all())
    if args.out == "-":
        sys.stdout.write(text)
    else:
        await asyncio.to_thread(Path(args.out).write_text, text)
        err.print(f"wrote {args.out}")
    return 0


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from actors.kernel import status

    write, read = engines(settings)
    try:
        async with services.connected(settings) as bus:
            result = await status.gather(bus, read)
    finally:
        await write.dispose()
        await read.dispose()
    sys.stdout.buffer.write(_json.encode(result) + b"\n")
    return 0 if result.ok else 1


# -- parser ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="troupe", description="Actors on NATS JetStream with an exactly-once SQL ledger."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run everything in one process (embedded NATS + SQLite)")
    up.add_argument("--http", help="gateway address HOST:PORT (default 127.0.0.1:8000)")
    up.add_argument("--nats-port", type=int, help="embedded nats-server port (0 = any free)")
    up.add_argument("--home", help="state directory (default .troupe)")
    up.add_argument("--insecure", action="store_true", help="allow a public address without auth")
    up.set_defaults(handler=cmd_up)

    actor = sub.add_parser("actor", help="run one actor against configured services")
    actor.add_argument("name")
    actor.add_argument("--partition", type=int, help="run only this partition")
    actor.set_defaults(handler=cmd_actor)

    sub.add_parser("actors", help="list the actors").set_defaults(handler=cmd_actors)

    relay = sub.add_parser("relay", help="publish outbox rows left unsent by crashed actors")
    relay.add_argument("--once", action="store_true", help="one pass, then exit")
    relay.set_defaults(handler=cmd_relay)

    mig = sub.add_parser("migrate", help="apply database migrations (every branch to its head)")
    mig.add_argument("--revision", default="heads")
    mig.add_argument("--down", help="downgrade to this revision instead ('base' for all)")
    mig.set_defaults(handler=cmd_migrate)

    replay = sub.add_parser("replay", help="print stored messages in stream order as JSON lines")
    replay.add_argument("subject", help="subject filter, e.g. 'evt.encounter.e1.>'")
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--from-seq", type=int, help="first stream sequence")
    start.add_argument("--since", help="ISO 8601 time, e.g. 2026-11-22T10:00:00+00:00")
    replay.add_argument("--limit", type=int)
    replay.add_argument("--stream", help="stream name (default: from the subject)")
    replay.set_defaults(handler=cmd_replay)

    audit = sub.add_parser("audit", help="fold an entity's events and diff them with the database")
    audit.add_argument("domain")
    audit.add_argument("key")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=cmd_audit)

    dlq = sub.add_parser("dlq", help="dead letters")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", help="list dead letters with their reasons")
    dlq_list.add_argument("--consumer", help="only this actor's")
    dlq_list.add_argument("--limit", type=int)
    dlq_list.add_argument("--json", action="store_true")
    dlq_list.set_defaults(handler=cmd_dlq)
    dlq_redrive = dlq_sub.add_parser("redrive", help="republish dead letters to their subjects")
    dlq_redrive.add_argument("--seq", type=int, action="append", default=[])
    dlq_redrive.add_argument("--all", action="store_true")
    dlq_redrive.add_argument("--consumer")
    dlq_redrive.set_defaults(handler=cmd_dlq, limit=None)

    send = sub.add_parser("send", help="publish a command and print its outcome")
    send.add_argument("domain")
    send.add_argument("key")
    send.add_argument("verb")
    send.add_argument("body", nargs="?", default="{}", help="JSON body (default {})")
    send.add_argument("--id", help="command id (Nats-Msg-Id); default a new UUID")
    send.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the outcome")
    send.add_argument("--preview", action="store_true", help="decide without applying")
    send.add_argument("--tenant", help="Troupe-Tenant header (default: the actor's default)")
    send.add_argument("--principal", help="Troupe-Principal header: who is asking")
    send.set_defaults(handler=cmd_send)

    sub.add_parser("status", help="readiness checks as JSON").set_defaults(handler=cmd_status)
    catalog = sub.add_parser("catalog", help="write the subjects and event catalogue (Markdown)")
    catalog.add_argument("--out", default="docs/subjects.md", help="file, or - for stdout")
    catalog.set_defaults(handler=cmd_catalog)
    for module in plugin_modules():
        module.register(sub)
    return p


def plugin_modules() -> list[Any]:
    """``troupe/commands/<name>.py`` modules: each adds its subcommands with ``register(sub)``.

    A registered handler has the signature of the ones above.
    """
    import importlib
    import pkgutil

    from troupe import commands

    return [
        importlib.import_module(f"troupe.commands.{m.name}")
        for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        overrides: dict[str, Any] = {}
        if getattr(args, "home", None):
            overrides["home"] = args.home
        if getattr(args, "nats_port", None) is not None:
            overrides["nats_port"] = args.nats_port
        settings = from_env(**overrides)
        handler: Handler = args.handler
        return asyncio.run(handler(args, settings))
    except (CliError, ConfigError, registry.UnknownActor, services.NotRunning) as exc:
        err.print(f"[red]troupe: {exc}[/red]")
        return 2
    except subjects.InvalidSubject as exc:
        err.print(f"[red]troupe: {exc}[/red]")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
