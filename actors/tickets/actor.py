"""The tickets actor: every ticket command decided, recorded and linked, on ``cmd.tickets.<id>``.

Its lifespan runs the approval expiry scheduler: every ``TROUPE_DISPATCH_EXPIRY_INTERVAL``
seconds (default 30; 0 turns it off) it finds holds past their deadline and sends
``tickets.expire_approval.v1`` for each, as principal ``svc:approval-expiry``. The scan also
feeds the hold and pause gauges of ``actors.dispatch.metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, select

from actors.dispatch import metrics
from actors.kernel import telemetry
from actors.kernel.actor import Actor, Services
from actors.policy.tables import pauses
from actors.tickets import rules
from actors.tickets.store import TicketStore
from actors.tickets.tables import approvals
from schemas.dispatch.tickets import ExpireApproval, TicketState
from schemas.headers import Header
from schemas.subjects import command_subject_for

log = logging.getLogger("troupe.dispatch.expiry")

EXPIRY_PRINCIPAL = "svc:approval-expiry"
INTERVAL_ENV = "TROUPE_DISPATCH_EXPIRY_INTERVAL"
GRACE = timedelta(seconds=2)
"""Sent this long after the deadline, so JetStream's clock (which stamps ``received_at``)
is past it too and the expiry is not denied as ``approval.not_due``."""
RESEND_AFTER = timedelta(minutes=5)
"""A hold still pending this long after its expiry was sent is sent again, with a new id."""
SCAN_LIMIT = 500

STORE = TicketStore()


def expiry_request_id(approval_id: str, now: datetime) -> str:
    """One id per hold per resend period: copies from several runners are one message."""
    bucket = int(now.timestamp() // RESEND_AFTER.total_seconds())
    return f"expire-{approval_id}-{bucket}"


async def expire_due(services: Services, now: datetime) -> int:
    """Send ``expire_approval`` for every hold past its deadline; returns how many were sent.

    Also reports the hold and pause gauges. The command ids are derived from the hold and the
    resend period, so concurrent scans send each expiry once.
    """
    async with services.read_engine.connect() as conn:
        pending = (
            await conn.execute(
                select(func.count()).select_from(approvals).where(approvals.c.status == "pending")
            )
        ).scalar_one()
        due = list(
            await conn.execute(
                select(
                    approvals.c.tenant,
                    approvals.c.ticket_id,
                    approvals.c.approval_id,
                    approvals.c.expires_at,
                )
                .where(approvals.c.status == "pending", approvals.c.expires_at <= now - GRACE)
                .order_by(approvals.c.expires_at)
                .limit(SCAN_LIMIT)
            )
        )
        by_kind = {
            r[0]: int(r[1])
            for r in await conn.execute(
                select(pauses.c.scope_kind, func.count()).group_by(pauses.c.scope_kind)
            )
        }
    gauges = metrics.get()
    oldest = (now - due[0].expires_at).total_seconds() if due else 0.0
    gauges.holds(int(pending), len(due), oldest)
    gauges.paused_scopes(by_kind)
    sent = 0
    tracer = telemetry.tracer("troupe.dispatch")
    for row in due:
        request_id = expiry_request_id(row.approval_id, now)
        with tracer.start_as_current_span("dispatch.expire_approval") as span:
            span.set_attribute("troupe.approval_id", row.approval_id)
            headers = telemetry.inject(
                {
                    Header.MSG_ID.value: request_id,
                    Header.CORRELATION_ID.value: request_id,
                    Header.TENANT.value: row.tenant,
                    Header.PRINCIPAL.value: EXPIRY_PRINCIPAL,
                }
            )
            await services.bus.publish(
                command_subject_for(ExpireApproval, row.ticket_id),
                msgspec.json.encode(ExpireApproval(approval_id=row.approval_id)),
                headers,
            )
        sent += 1
    gauges.expiries_sent(sent)
    return sent


def interval_from_env() -> float:
    """Seconds between scans from ``TROUPE_DISPATCH_EXPIRY_INTERVAL`` (0 disables)."""
    raw = os.environ.get(INTERVAL_ENV, "30")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ValueError(f"{INTERVAL_ENV} must be 0 (off) or positive, not {raw!r}")
    return value


@contextlib.asynccontextmanager
async def expiry_scheduler(services: Services) -> AsyncIterator[None]:
    """Runs while this process holds the tickets consumer: one scheduler per active instance."""
    interval = interval_from_env()
    if interval == 0:
        yield
        return
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await expire_due(services, datetime.now(UTC))
            except Exception as exc:
                log.warning("approval expiry scan failed (retried next interval): %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


ACTOR: Actor[TicketState] = Actor(
    name=rules.NAME,
    domain=rules.DOMAIN,
    state_type=TicketState,
    initial=rules.initial,
    decide=rules.bind(STORE.controls.for_context),
    evolve=rules.evolve,
    store=STORE,
    commands=rules.COMMANDS,
    emits=rules.EMITS,
    lifespan=expiry_scheduler,
    description=(
        "Field-service tickets: every command normalized, decided under the tenant's active "
        "policy bundle and kill switch, recorded with its decision and linked on the timeline; "
        "REQUIRE_APPROVAL holds until approved, rejected or expired."
    ),
)

__all__ = ["ACTOR", "EXPIRY_PRINCIPAL", "STORE", "expire_due", "expiry_request_id"]
