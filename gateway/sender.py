"""Publishing a command and awaiting its outcome; preview and state over request/reply."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

import msgspec
import nats.errors
from nats.js.errors import NotFoundError

from actors.kernel import telemetry
from actors.kernel.bus import OUTCOMES, Bus
from schemas import subjects
from schemas.base import Command, Rejection, domain_of, name_of
from schemas.envelope import Outcome, StateReply
from schemas.headers import Header

__all__ = [
    "BusUnavailable",
    "CommandSender",
    "Found",
    "NoResponder",
    "RequestRefused",
    "SendError",
    "Sent",
]

log = logging.getLogger("troupe.gateway.sender")

_OUTCOME = msgspec.json.Decoder(Outcome)
_STATE = msgspec.json.Decoder(StateReply)
_ENCODER = msgspec.json.Encoder()


class _Probe(msgspec.Struct, frozen=True):
    """Tells an ``ErrorReply`` from a regular answer (both are untagged objects)."""

    error: Rejection | None = None


_PROBE = msgspec.json.Decoder(_Probe)


def _refusal(data: bytes) -> Rejection | None:
    try:
        return _PROBE.decode(data).error
    except msgspec.DecodeError:
        return None


class SendError(Exception):
    """Raised when a command or request could not be handed to the bus or answered on it."""


class BusUnavailable(SendError):
    """Raised when NATS or JetStream did not take the command (it was not stored; retry)."""

    def __init__(self, subject: str, cause: BaseException) -> None:
        super().__init__(f"could not publish to {subject}: {type(cause).__name__}: {cause}")
        self.subject = subject
        self.cause = cause


class NoResponder(SendError):
    """Raised when no actor answers request/reply for a domain (none running, or too slow)."""

    def __init__(self, domain: str, what: str, timed_out: bool) -> None:
        how = "did not answer in time" if timed_out else "is not running"
        super().__init__(f"the {domain} actor {how} ({what})")
        self.domain = domain
        self.timed_out = timed_out


class RequestRefused(SendError):
    """Raised when the actor answered a request/reply call with an error (an unusable request)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


class Sent(msgspec.Struct, frozen=True, kw_only=True):
    """What became of a published command.

    ``outcome`` is None when it did not arrive within the wait; the command is
    stored all the same and its outcome lands on the OUTCOMES stream later.
    ``raw`` is the outcome's wire body (a JSON ``Outcome``), passed on unchanged.
    """

    command_id: str
    domain: str
    key: str
    subject: str
    duplicate: bool
    outcome: Outcome | None = None
    raw: bytes | None = None


class Found(msgspec.Struct, frozen=True, kw_only=True):
    """A stored outcome and the headers it was published with (tenant, principal, ...)."""

    outcome: Outcome
    raw: bytes
    headers: dict[str, str]


class CommandSender:
    """Sends commands on the process's one NATS connection; nothing here opens another."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def headers(
        self,
        command_id: str,
        *,
        tenant: str,
        principal: str | None,
        correlation_id: str | None,
        expected_version: int | None = None,
        want_outcome: bool = True,
    ) -> dict[str, str]:
        """The headers of a command: dedup id, caller, correlation and the current trace."""
        headers = {
            Header.MSG_ID.value: command_id,
            Header.TENANT.value: tenant,
            Header.CORRELATION_ID.value: correlation_id or command_id,
        }
        if want_outcome:
            headers[Header.WANT_OUTCOME.value] = "1"
        if principal:
            headers[Header.PRINCIPAL.value] = principal
        if expected_version is not None:
            headers[Header.EXPECTED_VERSION.value] = str(expected_version)
        telemetry.inject(headers)
        return headers

    async def send(
        self,
        command: Command,
        key: str,
        *,
        command_id: str,
        tenant: str,
        principal: str | None,
        correlation_id: str | None = None,
        wait: float = 5.0,
        expected_version: int | None = None,
    ) -> Sent:
        """Publish ``command`` for ``key`` with id ``command_id`` and wait up to ``wait`` seconds.

        The outcome subscription exists before the publish, so an actor that
        answers at once cannot be missed. A repeated id (``duplicate``) was
        stored earlier: its outcome may already sit in the OUTCOMES stream.
        """
        cls = type(command)
        domain = domain_of(cls)
        subject = subjects.command_subject(domain, key, name_of(cls))
        out_subject = subjects.outcome_subject(domain, command_id)
        headers = self.headers(
            command_id,
            tenant=tenant,
            principal=principal,
            correlation_id=correlation_id,
            expected_version=expected_version,
        )
        payload = _ENCODER.encode(command)
        nc = self.bus.nc
        try:
            sub = await nc.subscribe(out_subject, max_msgs=1)
        except Exception as exc:
            raise BusUnavailable(out_subject, exc) from exc
        try:
            try:
                ack = await self.bus.js.publish(subject, payload, headers=headers)
            except (nats.errors.Error, TimeoutError, OSError) as exc:
                raise BusUnavailable(subject, exc) from exc
            duplicate = bool(ack.duplicate)
            if duplicate:
                found = await self.stored_outcome(domain, command_id)
                if found is not None:
                    return self._sent(command_id, domain, key, subject, True, found.raw)
            if wait <= 0:
                return Sent(
                    command_id=command_id,
                    domain=domain,
                    key=key,
                    subject=subject,
                    duplicate=duplicate,
                )
            try:
                msg = await sub.next_msg(timeout=wait)
            except (nats.errors.TimeoutError, TimeoutError):
                return Sent(
                    command_id=command_id,
                    domain=domain,
                    key=key,
                    subject=subject,
                    duplicate=duplicate,
                )
            return self._sent(command_id, domain, key, subject, duplicate, msg.data)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    @staticmethod
    def _sent(
        command_id: str, domain: str, key: str, subject: str, duplicate: bool, raw: bytes
    ) -> Sent:
        return Sent(
            command_id=command_id,
            domain=domain,
            key=key,
            subject=subject,
            duplicate=duplicate,
            outcome=_OUTCOME.decode(raw),
            raw=raw,
        )

    async def stored_outcome(self, domain: str, command_id: str) -> Found | None:
        """The outcome of ``command_id`` if the OUTCOMES stream holds it (a direct get)."""
        subject = subjects.outcome_subject(domain, command_id)
        try:
            msg = await self.bus.js.get_last_msg(OUTCOMES, subject, direct=True)
        except NotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise BusUnavailable(subject, exc) from exc
        data = bytes(msg.data or b"")
        try:
            outcome = _OUTCOME.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable outcome on %s", subject)
            return None
        return Found(outcome=outcome, raw=data, headers=dict(msg.headers or {}))

    async def _request(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        domain: str,
        within: float,
    ) -> bytes:
        try:
            reply = await self.bus.nc.request(
                subject, payload, timeout=within, headers=dict(headers)
            )
        except nats.errors.NoRespondersError as exc:
            raise NoResponder(domain, subject, timed_out=False) from exc
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise NoResponder(domain, subject, timed_out=True) from exc
        except nats.errors.Error as exc:
            raise BusUnavailable(subject, exc) from exc
        return bytes(reply.data)

    async def preview(
        self,
        command: Command,
        key: str,
        *,
        tenant: str,
        principal: str | None,
        correlation_id: str | None = None,
        within: float = 5.0,
    ) -> tuple[Outcome, bytes]:
        """What ``command`` would do to ``key`` now; nothing is committed or published."""
        cls = type(command)
        domain = domain_of(cls)
        subject = subjects.preview_subject(domain, key, name_of(cls))
        headers = {Header.TENANT.value: tenant}
        if principal:
            headers[Header.PRINCIPAL.value] = principal
        if correlation_id:
            headers[Header.CORRELATION_ID.value] = correlation_id
        telemetry.inject(headers)
        data = await self._request(
            subject, _ENCODER.encode(command), headers, domain=domain, within=within
        )
        refusal = _refusal(data)
        if refusal is not None:
            raise RequestRefused(refusal)
        return _OUTCOME.decode(data), data

    async def state(
        self, domain: str, key: str, *, within: float = 5.0
    ) -> tuple[StateReply, bytes]:
        """An entity's current state and version, from the actor that owns it."""
        subject = subjects.query_subject(domain, key)
        headers: dict[str, str] = {}
        telemetry.inject(headers)
        data = await self._request(subject, b"", headers, domain=domain, within=within)
        refusal = _refusal(data)
        if refusal is not None:
            raise RequestRefused(refusal)
        return _STATE.decode(data), data
