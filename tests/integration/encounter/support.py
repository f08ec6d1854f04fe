"""A client for the turn-engine tests: send commands, await outcomes, read state and history."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Union

import msgspec
import nats
import nats.js.errors
from nats.aio.client import Client as NATS

from actors.encounter.ordering import Violation, check_turn_order
from actors.kernel import history
from actors.kernel.bus import EVENTS, OUTCOMES
from schemas import subjects
from schemas.base import Command, Event, domain_of, name_of
from schemas.effects import EFFECTS_EVENTS
from schemas.encounter import ENCOUNTER_EVENTS
from schemas.envelope import ErrorReply, Outcome, Recorded, StateReply
from schemas.headers import Header
from schemas.mastery import MASTERY_EVENTS

ALL_EVENTS: tuple[type[Event], ...] = (*ENCOUNTER_EVENTS, *EFFECTS_EVENTS, *MASTERY_EVENTS)
_event_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[ALL_EVENTS])  # noqa: UP007
_outcome_decoder = msgspec.json.Decoder(Outcome)


def _reply(data: bytes, kind: type[Any]) -> Any:
    """A request/reply answer as ``kind``, failing the test on an ``ErrorReply``."""
    raw = msgspec.json.decode(data)
    assert "error" not in raw, msgspec.convert(raw, ErrorReply)
    return msgspec.json.decode(data, type=kind)


WAIT = 20.0


class Logged(msgspec.Struct, frozen=True):
    """An event read back from the EVENTS stream with its stream sequence."""

    seq: int
    subject: str
    event: Event


def decode_event(data: bytes) -> Event:
    event: Event = _event_decoder.decode(data)
    return event


class Client:
    """Drives the turn-engine actors over a plain NATS connection, like any other client."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    @classmethod
    async def connect(cls, url: str) -> Client:
        return cls(await nats.connect(url))

    async def close(self) -> None:
        await self.nc.close()

    async def publish(
        self,
        key: str,
        command: Command,
        command_id: str,
        *,
        msg_id: str | None = None,
    ) -> None:
        """Store a command; ``msg_id`` other than ``command_id`` slips past JetStream's dedup."""
        headers = {
            Header.MSG_ID.value: msg_id or command_id,
            Header.WANT_OUTCOME.value: "1",
            Header.CORRELATION_ID.value: command_id,
        }
        if msg_id is not None:
            headers[Header.MESSAGE_ID.value] = command_id
        await self.js.publish(
            subjects.command_subject_for(type(command), key),
            msgspec.json.encode(command),
            headers=headers,
        )

    async def outcome(self, domain: str, command_id: str, wait: float = WAIT) -> Outcome:
        subject = subjects.outcome_subject(domain, command_id)
        async with asyncio.timeout(wait):
            while True:
                try:
                    msg = await self.js.get_last_msg(OUTCOMES, subject)
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.02)
                    continue
                return _outcome_decoder.decode(msg.data or b"")

    async def send(self, key: str, command: Command, command_id: str) -> Outcome:
        """Publish and wait for the outcome."""
        await self.publish(key, command, command_id)
        return await self.outcome(domain_of(type(command)), command_id)

    async def preview(self, key: str, command: Command, command_id: str) -> Outcome:
        """What applying ``command`` under ``command_id`` would do; nothing changes."""
        reply = await self.nc.request(
            subjects.preview_subject(domain_of(type(command)), key, name_of(type(command))),
            msgspec.json.encode(command),
            timeout=WAIT,
            headers={Header.MESSAGE_ID.value: command_id},
        )
        outcome: Outcome = _reply(reply.data, Outcome)
        return outcome

    async def state(self, domain: str, key: str) -> StateReply:
        reply = await self.nc.request(subjects.query_subject(domain, key), b"", timeout=WAIT)
        answer: StateReply = _reply(reply.data, StateReply)
        return answer

    async def state_json(self, domain: str, key: str) -> dict[str, Any]:
        reply = await self.state(domain, key)
        return {
            "exists": reply.exists,
            "version": reply.version,
            "state": msgspec.json.decode(reply.state),
        }

    async def settled(self, key: str, wait: float = WAIT) -> dict[str, Any]:
        """The encounter's state once no step is ending and effects/mastery caught up with it."""
        async with asyncio.timeout(wait):
            while True:
                enc = (await self.state_json("encounter", key))["state"]
                fx = (await self.state_json("effects", key))["state"]
                ms = (await self.state_json("mastery", key))["state"]
                done = enc["status"] != "active" or not enc["ending"]
                ended_steps = enc["step"] - 1 if enc["status"] == "active" else enc["step"]
                if enc["status"] == "ended":
                    # Effects and mastery close on EncounterEnded.
                    done = done and fx["closed"] and ms["closed"]
                else:
                    done = (
                        done
                        and fx["resolved_through"] >= ended_steps
                        and ms["resolved_through"] >= ended_steps
                    )
                if done:
                    return enc  # type: ignore[no-any-return]
                await asyncio.sleep(0.02)

    async def records(self, key: str) -> list[Recorded]:
        """Every stored event about ``key``, of any domain, in stream order."""
        return [r async for r in history.read(self.js, EVENTS, f"evt.*.{key}.>")]

    async def events(self, key: str) -> list[Logged]:
        return [
            Logged(r.seq, r.subject, decode_event(bytes(r.data))) for r in await self.records(key)
        ]


def violations(logged: Sequence[Logged]) -> list[Violation]:
    """Breaches of the turn-step order in events read back from JetStream."""
    return check_turn_order([x.event for x in logged], [x.seq for x in logged])


async def assert_turn_order(client: Client, key: str) -> list[Logged]:
    """Read ``evt.*.<key>.>`` in stream order and fail on any breach of the order contract."""
    logged = await client.events(key)
    found = violations(logged)
    assert not found, "turn order violated:\n" + "\n".join(
        f"  #{v.index} seq {logged[v.index].seq if v.index < len(logged) else '?'} "
        f"{v.code}: {v.message}"
        for v in found
    )
    return logged


def of_type(logged: Sequence[Logged], kind: type[Event] | tuple[type[Event], ...]) -> list[Any]:
    return [x.event for x in logged if isinstance(x.event, kind)]


def metric_points(reader: Any) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """Every data point an in-memory metric reader holds: name -> [(attributes, value)]."""
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = point.count  # histograms: how many were recorded
                    out.setdefault(metric.name, []).append((dict(point.attributes), value))
    return out


def metric_value(
    points: dict[str, list[tuple[dict[str, Any], float]]], name: str, **labels: str
) -> float:
    """The sum of ``name``'s points whose attributes include ``labels``."""
    return sum(
        value
        for attributes, value in points.get(name, [])
        if all(attributes.get(k) == v for k, v in labels.items())
    )


async def until(predicate: Callable[[], bool], wait: float = WAIT, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds, failing after ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} did not hold within {wait}s") from None
