"""Sending dispatch commands over the bus with idempotent replay and mismatch detection.

The request id is the command's ``Nats-Msg-Id`` and the ledger's message id, so a repeated
request is never applied twice: JetStream drops it inside its duplicate window and the
tickets actor's ledger after it. What the bus cannot tell is whether the repeat carries the
same command. ``DispatchClient.send`` answers that from the recorded outcome:

- no outcome yet for the request id: publish, wait for the outcome, return it;
- an outcome exists (a retry, or a concurrent duplicate): compare the command with the one
  recorded (its ``DecisionRecorded`` holds the normalized command and fingerprint); the same
  command gets the recorded outcome back byte for byte, a different one raises
  ``RequestMismatch`` listing every differing path (the gateway answers 409 with it).

Commands are normalized here first (``build``), so one that would not normalize is refused
before anything is published.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from actors.dispatch.errors import NoOutcome, RequestMismatch
from actors.dispatch.normalize import build
from actors.kernel import telemetry
from actors.kernel.bus import OUTCOMES
from actors.kernel.history import diff
from schemas import subjects
from schemas.base import Command, domain_of, tag_of
from schemas.dispatch.records import DispatchCommand
from schemas.dispatch.tickets import DecisionRecorded
from schemas.envelope import Outcome
from schemas.headers import Header

_DECISION = tag_of(DecisionRecorded)
_COMPARED = ("intent", "tenant", "ticket", "actor", "parameters")
"""What a fingerprint covers: request and correlation ids may differ between retries."""


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """A command's outcome, exactly as recorded, and whether this call only replayed it."""

    outcome: Outcome
    raw: bytes
    """The outcome message's bytes: a replay answers with these unchanged."""
    replayed: bool


def recorded_command(outcome: Outcome) -> DispatchCommand | None:
    """The normalized command a ticket outcome recorded its decision for, if any."""
    for emitted in outcome.events:
        if emitted.type == _DECISION:
            return msgspec.json.decode(emitted.data, type=DecisionRecorded).command
    return None


def differences(
    recorded: DispatchCommand, requested: DispatchCommand
) -> list[tuple[str, Any, Any]]:
    """Where two normalized commands differ, by JSON path (ids excluded)."""
    before = msgspec.to_builtins(recorded)
    after = msgspec.to_builtins(requested)
    return [
        (d.path, d.stored, d.folded)
        for d in diff({k: before[k] for k in _COMPARED}, {k: after[k] for k in _COMPARED})
    ]


class DispatchClient:
    """Publishes ticket and policy commands and returns their outcomes (see the module doc)."""

    def __init__(self, nc: NATS, *, timeout: float = 10.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.timeout = timeout

    async def send_ticket(
        self,
        ticket: str,
        command: Command,
        *,
        request_id: str,
        principal: str,
        tenant: str,
        correlation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Sent:
        """Send one ticket command; replay its recorded outcome or refuse a mismatch."""
        normalized = build(
            command,
            request_id=request_id,
            correlation_id=correlation_id or request_id,
            actor=principal,
            tenant=tenant,
            ticket=ticket,
        )

        def check(outcome: Outcome) -> None:
            recorded = recorded_command(outcome)
            if recorded is not None:
                if recorded.fingerprint != normalized.fingerprint:
                    raise RequestMismatch(
                        request_id,
                        differences(recorded, normalized),
                        decision_id=_decision_id(outcome),
                    )
                return
            _check_target(outcome, request_id, ticket, command)

        return await self._send(
            ticket, command, request_id, principal, tenant, correlation_id, headers, check
        )

    async def send_control(
        self,
        tenant: str,
        command: Command,
        *,
        request_id: str,
        principal: str,
        correlation_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Sent:
        """Send one policy command (key: the tenant) with the same replay rules."""

        def check(outcome: Outcome) -> None:
            _check_target(outcome, request_id, tenant, command)

        return await self._send(
            tenant, command, request_id, principal, tenant, correlation_id, headers, check
        )

    async def _send(
        self,
        key: str,
        command: Command,
        request_id: str,
        principal: str,
        tenant: str,
        correlation_id: str | None,
        headers: Mapping[str, str] | None,
        check: Any,
    ) -> Sent:
        domain = domain_of(type(command))
        out_subject = subjects.outcome_subject(domain, request_id)
        sub = await self.nc.subscribe(out_subject)
        try:
            stored = await self._stored(out_subject)
            if stored is not None:
                outcome = msgspec.json.decode(stored, type=Outcome)
                check(outcome)
                return Sent(outcome=outcome, raw=stored, replayed=True)
            sending = {
                **dict(headers or {}),
                Header.MSG_ID.value: request_id,
                Header.WANT_OUTCOME.value: "1",
                Header.CORRELATION_ID.value: correlation_id or request_id,
                Header.TENANT.value: tenant,
                Header.PRINCIPAL.value: principal,
            }
            if Header.TRACEPARENT.value not in sending:
                telemetry.inject(sending)
            ack = await self.js.publish(
                subjects.command_subject_for(type(command), key),
                msgspec.json.encode(command),
                headers=sending,
            )
            raw = await self._wait(sub, out_subject, request_id)
            outcome = msgspec.json.decode(raw, type=Outcome)
            check(outcome)
            return Sent(outcome=outcome, raw=raw, replayed=bool(ack.duplicate))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _stored(self, out_subject: str) -> bytes | None:
        try:
            msg = await self.js.get_last_msg(OUTCOMES, out_subject)
        except nats.js.errors.NotFoundError:
            return None
        return bytes(msg.data or b"")

    async def _wait(self, sub: Subscription, out_subject: str, request_id: str) -> bytes:
        try:
            msg = await sub.next_msg(timeout=self.timeout)
            return bytes(msg.data)
        except (nats.errors.TimeoutError, TimeoutError):
            # Published between our check and the subscription, or the live copy was missed.
            stored = await self._stored(out_subject)
            if stored is not None:
                return stored
            raise NoOutcome(request_id, self.timeout) from None


def _decision_id(outcome: Outcome) -> str | None:
    for emitted in outcome.events:
        if emitted.type == _DECISION:
            return msgspec.json.decode(emitted.data, type=DecisionRecorded).decision_id
    return None


def _check_target(outcome: Outcome, request_id: str, key: str, command: Command) -> None:
    """Without a recorded command, a reuse is caught by its target and its type."""
    found: list[tuple[str, Any, Any]] = []
    if outcome.key != key:
        found.append(("$.key", outcome.key, key))
    if outcome.command != tag_of(type(command)):
        found.append(("$.command", outcome.command, tag_of(type(command))))
    if found:
        raise RequestMismatch(request_id, found)


__all__ = ["DispatchClient", "Sent", "differences", "recorded_command"]
