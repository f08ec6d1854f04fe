"""``troupe flags show|set|kill``: read and change feature flags in the NATS KV bucket."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from actors.encounter.flags import ALLOWED, evaluate
from actors.encounter.flagstore import (
    FlagStore,
    FlagStoreError,
    StoredFlag,
    WriteResult,
    bucket_name,
)
from actors.kernel.config import Settings
from schemas.flags import COMBAT, FeatureFlag
from troupe import services

console = Console()
_json = msgspec.json.Encoder()


class FlagCommandError(Exception):
    """Raised when a flag command cannot run as given; printed without a traceback."""


def _percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 100")
    return value


def register(sub: Any) -> None:
    """Add ``troupe flags`` and its subcommands."""
    flags = sub.add_parser("flags", help="feature flags (the combat rollout) in the KV bucket")
    verbs = flags.add_subparsers(dest="flags_command", required=True)

    show = verbs.add_parser("show", help="print a flag, and its verdict for cohorts")
    show.add_argument("name", nargs="?", default=COMBAT, help="flag name (default combat)")
    show.add_argument(
        "--cohort", action="append", default=[], help="campaign or guild id to evaluate"
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=handler)

    set_ = verbs.add_parser("set", help="change a flag; running it again changes nothing")
    set_.add_argument("name", nargs="?", default=COMBAT, help="flag name (default combat)")
    switch = set_.add_mutually_exclusive_group()
    switch.add_argument(
        "--enable", dest="enabled", action="store_true", default=None, help="master switch on"
    )
    switch.add_argument(
        "--disable", dest="enabled", action="store_false", help="master switch off: nobody is in"
    )
    set_.add_argument("--percent", type=_percent, help="rollout percentage 0..100")
    set_.add_argument("--allow", action="append", default=[], help="add a cohort to the allow-list")
    set_.add_argument(
        "--disallow", action="append", default=[], help="remove a cohort from the allow-list"
    )
    set_.add_argument("--kill-switch", choices=("on", "off"), help="the emergency stop")
    set_.add_argument("--note", help="why (recorded with the flag)")
    set_.add_argument("--json", action="store_true", help="print JSON")
    set_.set_defaults(handler=handler)

    kill = verbs.add_parser("kill", help="turn the kill switch on: refuse every cohort now")
    kill.add_argument("name", nargs="?", default=COMBAT, help="flag name (default combat)")
    kill.add_argument("--note", help="why (the incident, who)")
    kill.add_argument("--json", action="store_true", help="print JSON")
    kill.set_defaults(handler=handler)


def change_for(args: argparse.Namespace) -> Callable[[FeatureFlag], FeatureFlag]:
    """The edit ``set`` or ``kill`` makes, as a function of the stored flag."""
    updates: dict[str, Any] = {}
    if args.flags_command == "kill":
        updates["kill_switch"] = True
    else:
        if args.enabled is not None:
            updates["enabled"] = args.enabled
        if args.percent is not None:
            updates["rollout_percent"] = args.percent
        if args.kill_switch is not None:
            updates["kill_switch"] = args.kill_switch == "on"
    if args.note is not None:
        updates["note"] = args.note
    added, removed = list(getattr(args, "allow", [])), set(getattr(args, "disallow", []))
    if args.flags_command == "set" and not (updates or added or removed):
        raise FlagCommandError(
            "nothing to set: give --enable/--disable, --percent, --allow, --disallow, "
            "--kill-switch or --note"
        )

    def change(flag: FeatureFlag) -> FeatureFlag:
        allow = [c for c in flag.allow if c not in removed]
        allow += [c for c in dict.fromkeys(added) if c not in allow]
        raw = {**msgspec.to_builtins(flag), **updates, "allow": allow}
        try:
            return msgspec.convert(raw, FeatureFlag)
        except msgspec.ValidationError as exc:
            raise FlagCommandError(f"invalid flag {flag.name}: {exc}") from exc

    return change


def _print_flag(stored: StoredFlag, cohorts: list[str]) -> None:
    flag = stored.flag
    if flag is None:
        console.print(
            f"{stored.name}: not set (revision {stored.revision}); nothing restricts it: "
            f"{ALLOWED.reason}"
        )
        return
    table = Table("field", "value", title=f"{stored.name} at revision {stored.revision}")
    table.add_row("enabled", str(flag.enabled))
    table.add_row("rollout_percent", str(flag.rollout_percent))
    table.add_row("allow", ", ".join(flag.allow) or "-")
    table.add_row("kill_switch", str(flag.kill_switch))
    table.add_row("note", flag.note or "-")
    console.print(table)
    for cohort in cohorts:
        verdict = evaluate(flag, cohort)
        mark = "[green]allowed[/green]" if verdict.allowed else "[red]refused[/red]"
        console.print(f"  {cohort}: {mark} ({verdict.code}): {verdict.reason}")


def _print_write(result: WriteResult, name: str) -> None:
    if result.changed:
        console.print(f"{name}: written at revision {result.revision}")
    else:
        console.print(f"{name}: unchanged at revision {result.revision}")
    _print_flag(StoredFlag(name=name, flag=result.flag, revision=result.revision), [])


async def handler(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``troupe flags show|set|kill``."""
    from troupe.cli import CliError

    try:
        change = None if args.flags_command == "show" else change_for(args)
        async with services.connected(settings) as bus:
            store = await FlagStore.open(
                bus.js, bucket_name(settings), replicas=settings.streams.replicas
            )
            if change is None:
                stored = await store.get(args.name)
                if args.json:
                    verdicts = {
                        c: msgspec.to_builtins(evaluate(stored.flag, c) if stored.flag else ALLOWED)
                        for c in args.cohort
                    }
                    payload = {**msgspec.to_builtins(stored), "verdicts": verdicts}
                    sys.stdout.buffer.write(_json.encode(payload) + b"\n")
                else:
                    _print_flag(stored, args.cohort)
                return 0
            result = await store.write(args.name, change)
    except (FlagCommandError, FlagStoreError) as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        payload = {"name": args.name, **msgspec.to_builtins(result)}
        sys.stdout.buffer.write(_json.encode(payload) + b"\n")
    else:
        _print_write(result, args.name)
    return 0
