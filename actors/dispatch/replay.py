"""Shadow replay from JetStream: recorded ticket decisions re-made under a bundle, read-only.

Reads three things and writes one artefact; it publishes nothing and touches no database:

- ``evt.tickets.>`` (EVENTS): the tickets actor's events in stream order, folded per ticket so
  each recorded decision is re-made against the ticket as it stood then;
- ``evt.policy.>`` (EVENTS): folded with the policy rules, the tenants' currently active
  bundles (the default bundle of a replay);
- ``cmd.tickets.>`` (COMMANDS): the attempted commands, linking each record to its command and
  counting commands that never reached a decision.

The artefact is JSON lines: one ``ShadowRecord`` per recorded decision (or per flipped one),
each stamped with the bundle version and sha256 it was re-made under, then one
``ShadowSummary`` per tenant.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import IO

import msgspec
from nats.js import JetStreamContext

from actors.dispatch.bundles.loader import Bundle
from actors.dispatch.env import environment
from actors.dispatch.errors import BundleError
from actors.dispatch.shadow import compare
from actors.kernel import history
from actors.kernel.bus import COMMANDS, EVENTS
from actors.kernel.codec import message_id
from actors.policy import rules as policy_rules
from actors.tickets import rules as ticket_rules
from schemas import subjects
from schemas.dispatch.policy import PolicyEventType, TenantControl
from schemas.dispatch.shadow import HistoryEntry, ShadowRecord, ShadowSummary
from schemas.dispatch.tickets import DecisionRecorded, TicketEventType, TicketState
from schemas.headers import Header

log = logging.getLogger("troupe.dispatch.replay")

_TICKET_EVENTS = msgspec.json.Decoder(TicketEventType)
_POLICY_EVENTS = msgspec.json.Decoder(PolicyEventType)
_ENCODER = msgspec.json.Encoder()


class CommandSeen(msgspec.Struct, frozen=True, kw_only=True):
    """One ticket command as the COMMANDS stream holds it."""

    request_id: str
    ticket: str
    tenant: str
    stream_seq: int
    at: datetime


class ReplayResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one replay wrote: the per-tenant totals and the tenants it could not replay."""

    summaries: list[ShadowSummary]
    skipped_tenants: list[str]
    """Tenants with decisions in range but no active bundle (and no bundle was given)."""


async def ticket_history(js: JetStreamContext) -> list[HistoryEntry]:
    """The tickets actor's own events, in stream order, each once."""
    out: list[HistoryEntry] = []
    seen: set[str] = set()
    async for record in history.read(js, EVENTS, f"{subjects.EVENTS}.{ticket_rules.DOMAIN}.>"):
        if record.headers.get(Header.PRODUCER) != ticket_rules.NAME:
            continue
        if record.id is not None:
            if record.id in seen:
                continue
            seen.add(record.id)
        try:
            event = _TICKET_EVENTS.decode(record.data)
        except msgspec.ValidationError:
            log.warning(
                "skipping undecodable ticket event at seq %d (%s)", record.seq, record.subject
            )
            continue
        ticket = subjects.parse(record.subject).key
        out.append(HistoryEntry(ticket_id=ticket, event=event, stream_seq=record.seq))
    return out


async def tenant_controls(js: JetStreamContext) -> dict[str, TenantControl]:
    """Every tenant's control, folded from the policy actor's events (what is active now)."""
    controls: dict[str, TenantControl] = {}
    seen: set[str] = set()
    async for record in history.read(js, EVENTS, f"{subjects.EVENTS}.{policy_rules.DOMAIN}.>"):
        if record.headers.get(Header.PRODUCER) != policy_rules.NAME:
            continue
        if record.id is not None:
            if record.id in seen:
                continue
            seen.add(record.id)
        try:
            event = _POLICY_EVENTS.decode(record.data)
        except msgspec.ValidationError:
            continue
        tenant = subjects.parse(record.subject).key
        state = controls.get(tenant) or policy_rules.initial(tenant)
        controls[tenant] = policy_rules.evolve(state, event)
    return controls


async def ticket_commands(
    js: JetStreamContext, *, since: datetime | None = None
) -> dict[str, CommandSeen]:
    """Ticket commands in the COMMANDS stream (from ``since``), by request id (first copy)."""
    out: dict[str, CommandSeen] = {}
    async for record in history.read(
        js, COMMANDS, f"{subjects.COMMANDS}.{ticket_rules.DOMAIN}.>", since=since
    ):
        request_id = message_id(record.headers, record.stream, record.seq)
        if request_id in out:
            continue
        out[request_id] = CommandSeen(
            request_id=request_id,
            ticket=subjects.parse(record.subject).key,
            tenant=record.headers.get(Header.TENANT) or "default",
            stream_seq=record.seq,
            at=record.time,
        )
    return out


def active_bundles(controls: dict[str, TenantControl]) -> dict[str, Bundle]:
    """Each tenant's verified active bundle; a tenant whose bundle fails verification is left
    out (and logged), never replayed under a bundle that is not intact."""
    out: dict[str, Bundle] = {}
    for tenant, control in controls.items():
        try:
            bundle = environment(control).bundle
        except BundleError as err:
            log.error("tenant %s: active bundle refused: %s", tenant, err)
            continue
        if bundle is not None:
            out[tenant] = bundle
    return out


def records(
    entries: Iterable[HistoryEntry],
    bundle_for: Callable[[str], Bundle | None],
    commands: dict[str, CommandSeen],
    *,
    tenant: str | None = None,
    since: datetime | None = None,
) -> Iterable[ShadowRecord | str]:
    """Shadow records in history order; a tenant with no bundle yields its name instead."""
    states: dict[str, TicketState] = {}
    for entry in entries:
        state = states.get(entry.ticket_id) or ticket_rules.initial(entry.ticket_id)
        event = entry.event
        if (
            isinstance(event, DecisionRecorded)
            and (tenant is None or event.command.tenant == tenant)
            and (since is None or event.at >= since)
        ):
            bundle = bundle_for(event.command.tenant)
            if bundle is None:
                yield event.command.tenant
            else:
                record = compare(state, event, bundle, entry.stream_seq)
                seen = commands.get(event.command.request_id)
                yield msgspec.structs.replace(
                    record, command_seq=0 if seen is None else seen.stream_seq
                )
        states[entry.ticket_id] = ticket_rules.evolve(state, event)


class _Totals:
    def __init__(self, tenant: str, bundle: Bundle) -> None:
        self.tenant = tenant
        self.bundle = bundle
        self.decisions = self.carried = self.changed = 0
        self.flips: Counter[str] = Counter()

    def add(self, record: ShadowRecord) -> None:
        self.decisions += 1
        self.carried += record.carried
        self.changed += record.reason_changed
        if record.flip is not None:
            self.flips[record.flip] += 1

    def summary(self, commands: int, undecided: int) -> ShadowSummary:
        return ShadowSummary(
            bundle_version=self.bundle.version,
            bundle_sha256=self.bundle.sha256,
            decisions=self.decisions,
            flipped=sum(self.flips.values()),
            carried=self.carried,
            reason_changed=self.changed,
            flips=dict(sorted(self.flips.items())),
            tenant=self.tenant,
            commands=commands,
            undecided=undecided,
        )


async def shadow_replay(
    js: JetStreamContext,
    out: IO[bytes],
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    bundle: Bundle | None = None,
    flips_only: bool = False,
) -> ReplayResult:
    """Replay recorded decisions under ``bundle`` (default: each tenant's active bundle)
    and write the JSON-lines artefact to ``out``. Reads JetStream only."""
    entries = await ticket_history(js)
    commands = await ticket_commands(js, since=since)
    actives = {} if bundle is not None else active_bundles(await tenant_controls(js))

    def bundle_for(name: str) -> Bundle | None:
        return bundle if bundle is not None else actives.get(name)

    totals: dict[str, _Totals] = {}
    skipped: set[str] = set()
    decided: set[str] = set()
    for item in records(entries, bundle_for, commands, tenant=tenant, since=since):
        if isinstance(item, str):
            skipped.add(item)
            continue
        decided.add(item.request_id)
        used = bundle_for(item.tenant)
        assert used is not None
        totals.setdefault(item.tenant, _Totals(item.tenant, used)).add(item)
        if item.flipped or not flips_only:
            out.write(_ENCODER.encode(item) + b"\n")
    # Commands of other tenants are not counted; decisions outside [since, ...) are ignored
    # too, since the command read started at ``since``.
    seen = [c for c in commands.values() if tenant is None or c.tenant == tenant]
    summaries: list[ShadowSummary] = []
    for name in sorted(totals):
        mine = [c for c in seen if c.tenant == name]
        undecided = sum(1 for c in mine if c.request_id not in decided)
        summary = totals[name].summary(len(mine), undecided)
        summaries.append(summary)
        out.write(_ENCODER.encode(summary) + b"\n")
    return ReplayResult(summaries=summaries, skipped_tenants=sorted(skipped))


__all__ = [
    "CommandSeen",
    "ReplayResult",
    "active_bundles",
    "records",
    "shadow_replay",
    "tenant_controls",
    "ticket_commands",
    "ticket_history",
]
