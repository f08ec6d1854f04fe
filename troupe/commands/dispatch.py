"""``troupe dispatch``: policy bundles (upload, activate, show), the shadow replay, and send."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from actors.dispatch.bundles import Bundle, load_bundle
from actors.dispatch.bundles.sources import (
    OBJECT_PREFIX,
    download,
    listing,
    read_path,
    resolve_source,
    upload,
)
from actors.dispatch.client import DispatchClient
from actors.dispatch.errors import BundleError, DispatchError, RequestMismatch
from actors.dispatch.normalize import parse_command
from actors.dispatch.replay import shadow_replay
from actors.kernel.config import Settings
from schemas import subjects
from schemas.base import name_of, tag_of
from schemas.dispatch.bundle import MANIFEST
from schemas.dispatch.policy import (
    POLICY_COMMANDS,
    ActivateBundle,
    BundleActivated,
    TenantControl,
)
from schemas.envelope import ErrorReply, Outcome, StateReply
from troupe import services

console = Console()
_json = msgspec.json.Encoder()

VERSION_PREFIX = "version:"
PRINCIPAL_ENV = "TROUPE_PRINCIPAL"


class DispatchCliError(Exception):
    """Raised for a dispatch command a user can correct; printed without a traceback."""


def _principal(explicit: str | None) -> str:
    return explicit or os.environ.get(PRINCIPAL_ENV) or f"user:{getpass.getuser()}"


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise DispatchCliError(
            f"--since {text!r} is not ISO 8601, e.g. 2026-11-22T10:00:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise DispatchCliError(f"--since {text!r} needs an offset, e.g. +00:00")
    return value


def _default_out(tenant: str | None, bundle: Bundle | None) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    which = bundle.sha256[:12] if bundle is not None else "active"
    return Path("artifacts") / "shadow" / f"{tenant or 'all'}-{which}-{stamp}.jsonl"


async def cmd_shadow_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay recorded ticket decisions under a bundle; write the JSON-lines artefact."""
    since = _since(args.since)
    async with services.connected(settings) as bus:
        bundle = None
        if args.bundle:
            try:
                bundle = await resolve_source(bus.js, args.bundle)
            except BundleError as exc:
                raise DispatchCliError(f"--bundle {args.bundle}: {exc}") from exc
        out: Path = args.out or _default_out(args.tenant, bundle)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as handle:
            result = await shadow_replay(
                bus.js,
                handle,
                tenant=args.tenant,
                since=since,
                bundle=bundle,
                flips_only=args.flips_only,
            )
    table = Table("tenant", "bundle", "sha256", "decisions", "flipped", "carried", "undecided")
    for s in result.summaries:
        table.add_row(
            s.tenant,
            s.bundle_version,
            s.bundle_sha256[:12],
            str(s.decisions),
            str(s.flipped),
            str(s.carried),
            f"{s.undecided} of {s.commands}",
        )
    console.print(table)
    for s in result.summaries:
        for flip, n in s.flips.items():
            console.print(f"  {s.tenant}: {n} x {flip}")
    if result.skipped_tenants:
        console.print(
            "not replayed (no active bundle; pass --bundle): " + ", ".join(result.skipped_tenants)
        )
    console.print(f"written to {out}")
    return 0


async def cmd_bundle_upload(args: argparse.Namespace, settings: Settings) -> int:
    """Verify a bundle and store it in the JetStream object store under its sha256."""
    async with services.connected(settings) as bus:
        try:
            bundle = await resolve_source(bus.js, args.source)
            stored = await upload(bus.js, bundle.files)
        except BundleError as exc:
            raise DispatchCliError(f"{args.source}: {exc}") from exc
    console.print(f"stored {stored.version} as object:{stored.name} ({stored.size} bytes)")
    return 0


async def cmd_bundle_activate(args: argparse.Namespace, settings: Settings) -> int:
    """Ask the policy actor to make a bundle the tenant's active one; print the outcome."""
    subjects.check_key(args.tenant)
    async with services.connected(settings) as bus:
        if args.source.startswith(VERSION_PREFIX):
            version = args.source.removeprefix(VERSION_PREFIX)
            control = await _control(bus.nc, args.tenant)
            kept = None if control is None else control.known_bundle(version=version)
            if kept is None:
                raise DispatchCliError(
                    f"tenant {args.tenant} has no kept bundle {version!r} to roll back to"
                )
            command = ActivateBundle(
                expected_sha256=kept.sha256, reason=args.reason, version=version
            )
        elif args.source.startswith(OBJECT_PREFIX):
            try:
                bundle = await download(bus.js, args.source)
            except BundleError as exc:
                raise DispatchCliError(f"{args.source}: {exc}") from exc
            command = ActivateBundle(
                expected_sha256=args.sha256 or bundle.sha256, reason=args.reason, files=bundle.files
            )
        else:
            # Sent as read even when it does not verify here: the policy actor refuses it on
            # the record, and that refusal is the audit trail of the attempt.
            try:
                files = read_path(Path(args.source))
            except BundleError as exc:
                raise DispatchCliError(f"{args.source}: {exc}") from exc
            command = ActivateBundle(
                expected_sha256=args.sha256 or _expected(files), reason=args.reason, files=files
            )
        client = DispatchClient(bus.nc, timeout=args.wait)
        try:
            sent = await client.send_control(
                args.tenant,
                command,
                request_id=args.request_id or f"activate-{uuid.uuid4()}",
                principal=_principal(args.principal),
            )
        except DispatchError as exc:
            raise DispatchCliError(str(exc)) from exc
    return _report_activation(sent.outcome)


def _expected(files: dict[str, bytes]) -> str:
    """The hash to expect: the bundle's own when it verifies, else what its manifest claims."""
    try:
        return load_bundle(files).sha256
    except BundleError:
        pass
    try:
        declared = msgspec.json.decode(files.get(MANIFEST, b"{}")).get("sha256")
    except (msgspec.DecodeError, AttributeError):
        declared = None
    if isinstance(declared, str) and re.fullmatch(r"[0-9a-f]{64}", declared):
        return declared
    raise DispatchCliError("the bundle does not verify and declares no sha256; pass --sha256")


def _report_activation(outcome: Outcome) -> int:
    if outcome.rejection is not None:
        console.print(f"[red]rejected[/red] {outcome.rejection.code}: {outcome.rejection.reason}")
        return 1
    for emitted in outcome.events:
        data: Any = msgspec.json.decode(emitted.data)
        if emitted.type == "policy.bundle_activated.v1":
            event = msgspec.json.decode(emitted.data, type=BundleActivated)
            console.print(
                f"[green]activated[/green] {event.version} ({event.sha256}) for "
                f"{outcome.key}; previous {event.previous_version or 'none'}"
            )
            return 0
        console.print(
            f"[red]refused[/red] {data.get('error_code')}: {data.get('error')}; "
            f"active stays {data.get('active_version') or 'none'}"
        )
    return 1


async def _control(nc: Any, tenant: str) -> TenantControl | None:
    reply = await nc.request(subjects.query_subject("policy", tenant), b"", timeout=5)
    try:
        answer = msgspec.json.decode(reply.data, type=StateReply)
    except msgspec.ValidationError:
        error = msgspec.json.decode(reply.data, type=ErrorReply).error
        raise DispatchCliError(f"policy query failed: {error.reason}") from None
    if not answer.exists:
        return None
    return msgspec.json.decode(answer.state, type=TenantControl)


async def cmd_bundle_show(args: argparse.Namespace, settings: Settings) -> int:
    """A tenant's active bundle, kept bundles, pauses and recent attempts; or the object store."""
    async with services.connected(settings) as bus:
        if args.tenant is None:
            stored = await listing(bus.js)
            if args.json:
                for s in stored:
                    sys.stdout.buffer.write(_json.encode(s) + b"\n")
                return 0
            table = Table("version", "object", "size", "uploaded")
            for s in stored:
                table.add_row(
                    s.version,
                    f"object:{s.name}",
                    str(s.size),
                    "" if s.modified is None else s.modified.isoformat(),
                )
            console.print(table)
            return 0
        subjects.check_key(args.tenant)
        control = await _control(bus.nc, args.tenant)
    if args.json:
        sys.stdout.buffer.write(_json.encode(control) + b"\n")
        return 0
    if control is None or control.active is None:
        console.print(f"tenant {args.tenant}: no active bundle (every policy decision is DENY)")
    else:
        a = control.active
        console.print(
            f"tenant {args.tenant}: active {a.version} ({a.sha256}) since "
            f"{a.activated_at.isoformat()} by {a.activated_by}; control revision {control.revision}"
        )
    if control is None:
        return 0
    for kept in control.known:
        console.print(f"  kept {kept.version} ({kept.sha256})")
    for pause in control.paused:
        console.print(
            f"  paused {pause.scope.label()} since {pause.paused_at.isoformat()} by "
            f"{pause.paused_by}: {pause.reason}"
        )
    for record in control.activations[-10:]:
        what = record.version or record.expected_sha256[:12]
        extra = f" ({record.error_code})" if record.error_code else ""
        console.print(
            f"  #{record.seq} {record.at.isoformat()} {record.outcome} {what}{extra} "
            f"by {record.actor}: {record.reason}"
        )
    return 0


async def cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    """Send one ticket or policy command with its headers; print the outcome as JSON."""
    try:
        body: Any = msgspec.json.decode(args.body)
    except msgspec.DecodeError as exc:
        raise DispatchCliError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise DispatchCliError("the body must be a JSON object")
    subjects.check_key(args.key)
    principal = _principal(args.principal)
    request_id = args.request_id or f"cli-{uuid.uuid4()}"
    async with services.connected(settings) as bus:
        client = DispatchClient(bus.nc, timeout=args.wait)
        try:
            if args.domain == "tickets":
                if args.tenant is None:
                    raise DispatchCliError("ticket commands need --tenant")
                command: Any = parse_command(args.verb, body)
                sent = await client.send_ticket(
                    args.key,
                    command,
                    request_id=request_id,
                    principal=principal,
                    tenant=args.tenant,
                )
            else:
                verbs = {name_of(c): c for c in POLICY_COMMANDS}
                if args.verb not in verbs:
                    raise DispatchCliError(
                        f"policy has no command {args.verb!r} (known: {', '.join(sorted(verbs))})"
                    )
                try:
                    command = msgspec.convert(
                        {**body, "type": tag_of(verbs[args.verb])}, verbs[args.verb]
                    )
                except msgspec.ValidationError as exc:
                    raise DispatchCliError(f"{args.verb}: {exc}") from exc
                sent = await client.send_control(
                    args.key, command, request_id=request_id, principal=principal
                )
        except RequestMismatch as exc:
            sys.stdout.buffer.write(_json.encode(exc.details()) + b"\n")
            raise DispatchCliError(str(exc)) from exc
        except DispatchError as exc:
            raise DispatchCliError(str(exc)) from exc
    sys.stdout.buffer.write(sent.raw + b"\n")
    sys.stdout.flush()
    return 0 if sent.outcome.status == "applied" else 1


def _wrap(handler: Any) -> Any:
    async def run(args: argparse.Namespace, settings: Settings) -> int:
        from troupe.cli import CliError

        try:
            code: int = await handler(args, settings)
        except DispatchCliError as exc:
            raise CliError(str(exc)) from exc
        return code

    run.__doc__ = handler.__doc__
    return run


def register(subparsers: Any) -> None:
    """Add ``troupe dispatch ...``."""
    dispatch = subparsers.add_parser(
        "dispatch", help="field-service dispatch: policy bundles and shadow replay"
    )
    sub = dispatch.add_subparsers(dest="dispatch_command", required=True)

    replay = sub.add_parser(
        "shadow-replay",
        help="re-decide recorded ticket decisions under a bundle; writes JSON lines, changes "
        "nothing",
    )
    replay.add_argument("--tenant", help="only this tenant's decisions")
    replay.add_argument("--since", help="only decisions from this time (ISO 8601 with offset)")
    replay.add_argument(
        "--bundle",
        help="replay under this bundle instead of each tenant's active one: a directory, an "
        "archive file, or object:<sha256|version>",
    )
    replay.add_argument("--out", type=Path, help="artefact path (default artifacts/shadow/...)")
    replay.add_argument("--flips-only", action="store_true", help="write flipped decisions only")
    replay.set_defaults(handler=_wrap(cmd_shadow_replay))

    send = sub.add_parser(
        "send",
        help="send a ticket or policy command with tenant and principal; print its outcome",
    )
    send.add_argument("domain", choices=["tickets", "policy"])
    send.add_argument("key", help="the ticket id, or the tenant for policy commands")
    send.add_argument("verb", help="e.g. expire_approval, record_approval_decision, pause_autonomy")
    send.add_argument("body", nargs="?", default="{}", help="JSON body (default {})")
    send.add_argument("--tenant", help="the ticket's tenant (ticket commands)")
    send.add_argument("--as", dest="principal", help=f"principal (default ${PRINCIPAL_ENV})")
    send.add_argument("--request-id", help="idempotency key (default: a new one)")
    send.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the outcome")
    send.set_defaults(handler=_wrap(cmd_send))

    bundle = sub.add_parser("bundle", help="policy bundles")
    bsub = bundle.add_subparsers(dest="bundle_command", required=True)
    up = bsub.add_parser(
        "upload", help="verify a bundle and store it in the JetStream object store"
    )
    up.add_argument("source", help="a bundle directory or archive file")
    up.set_defaults(handler=_wrap(cmd_bundle_upload))

    act = bsub.add_parser("activate", help="make a bundle a tenant's one active bundle")
    act.add_argument(
        "source",
        help="a directory, an archive file, object:<sha256|version>, or version:<v> to roll "
        "back to a bundle the tenant kept",
    )
    act.add_argument("--tenant", required=True)
    act.add_argument("--reason", default="activated from the command line")
    act.add_argument("--sha256", help="the hash you expect (default: the bundle's own)")
    act.add_argument("--as", dest="principal", help=f"principal (default ${PRINCIPAL_ENV})")
    act.add_argument("--request-id", help="idempotency key (default: a new one)")
    act.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the outcome")
    act.set_defaults(handler=_wrap(cmd_bundle_activate))

    show = bsub.add_parser("show", help="a tenant's bundles and pauses, or the object store")
    show.add_argument("--tenant", help="show this tenant's control (default: list the store)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_wrap(cmd_bundle_show))


__all__ = [
    "DispatchCliError",
    "cmd_bundle_activate",
    "cmd_bundle_show",
    "cmd_bundle_upload",
    "cmd_send",
    "cmd_shadow_replay",
    "register",
]
