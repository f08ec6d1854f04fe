"""Reading JetStream history: replay in stream order, pages for the gateway, and audit by fold."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Union

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js import api as js_api
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.actor import Actor, fold
from actors.kernel.bus import EVENTS
from schemas.envelope import Recorded
from schemas.headers import Header


def _raw_json(data: bytes) -> msgspec.Raw:
    """The body as JSON if it is JSON, else as a JSON string (a poison message stays printable)."""
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        return msgspec.Raw(msgspec.json.encode(data.decode("utf-8", "replace")))
    return msgspec.Raw(data)


async def read(
    js: JetStreamContext,
    stream: str,
    subject_filter: str,
    *,
    from_seq: int | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> AsyncIterator[Recorded]:
    """Stored messages matching ``subject_filter``, in stream order, then stop.

    An ephemeral, unacknowledged consumer reads what exists when the call
    starts; nothing is consumed for anyone else.
    """
    if from_seq:
        policy = js_api.DeliverPolicy.BY_START_SEQUENCE
    elif since is not None:
        policy = js_api.DeliverPolicy.BY_START_TIME
    else:
        policy = js_api.DeliverPolicy.ALL
    config = js_api.ConsumerConfig(
        ack_policy=js_api.AckPolicy.NONE,
        deliver_policy=policy,
        opt_start_seq=from_seq or None,
        opt_start_time=since.isoformat() if since is not None else None,  # type: ignore[arg-type]
        filter_subject=subject_filter,
        inactive_threshold=30.0,
        mem_storage=True,
        num_replicas=1,
    )
    sub = await js.pull_subscribe(subject_filter, stream=stream, config=config)
    try:
        info = await sub.consumer_info()
        remaining = int(info.num_pending or 0)
        emitted = 0
        while remaining > 0 and (limit is None or emitted < limit):
            want = min(remaining, 256, (limit - emitted) if limit is not None else 256)
            try:
                msgs = await sub.fetch(want, timeout=5)
            except (nats.errors.TimeoutError, TimeoutError):
                return
            for msg in msgs:
                meta = msg.metadata
                headers = dict(msg.headers or {})
                yield Recorded(
                    stream=meta.stream,
                    seq=int(meta.sequence.stream),
                    subject=msg.subject,
                    time=meta.timestamp,
                    id=headers.get(Header.MSG_ID),
                    headers=headers,
                    data=_raw_json(msg.data),
                )
                emitted += 1
                remaining = int(meta.num_pending)
                if limit is not None and emitted >= limit:
                    return
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class Difference(msgspec.Struct, frozen=True):
    """One place where the stored state and the folded state disagree."""

    path: str
    stored: Any
    folded: Any


class AuditReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``troupe audit`` found for one entity."""

    domain: str
    key: str
    actor: str
    events: int
    duplicates: int
    stored_version: int
    folded_version: int
    stored: Any
    folded: Any
    differences: list[Difference]
    unknown_types: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.differences and not self.unknown_types


def diff(stored: Any, folded: Any, path: str = "$") -> list[Difference]:
    """Differences between two JSON-like values, by JSON path."""
    if isinstance(stored, dict) and isinstance(folded, dict):
        out: list[Difference] = []
        for key in sorted(set(stored) | set(folded), key=str):
            out += diff(stored.get(key), folded.get(key), f"{path}.{key}")
        return out
    if isinstance(stored, list) and isinstance(folded, list) and len(stored) == len(folded):
        out = []
        for i, (a, b) in enumerate(zip(stored, folded, strict=True)):
            out += diff(a, b, f"{path}[{i}]")
        return out
    return [] if stored == folded else [Difference(path, stored, folded)]


async def audit(
    js: JetStreamContext, engine: AsyncEngine, actor: Actor[Any], key: str
) -> AuditReport:
    """Fold the actor's own events for ``key`` from JetStream and compare with the database."""
    union: Any = actor.emits[0] if len(actor.emits) == 1 else Union[tuple(actor.emits)]  # noqa: UP007
    decoder = msgspec.json.Decoder(union)
    state = actor.initial(key)
    seen: set[str] = set()
    causes: set[str] = set()
    duplicates = 0
    unknown: list[str] = []
    count = 0
    async for record in read(js, EVENTS, f"evt.{actor.domain}.{key}.>"):
        if record.headers.get(Header.PRODUCER) != actor.name:
            continue
        if record.id is not None:
            if record.id in seen:
                duplicates += 1
                continue
            seen.add(record.id)
        try:
            event = decoder.decode(record.data)
        except msgspec.ValidationError:
            unknown.append(f"seq {record.seq}: {record.subject}")
            continue
        state = fold(actor, state, [event])
        count += 1
        cause = record.headers.get(Header.CAUSATION_ID)
        if cause:
            causes.add(cause)
    async with engine.connect() as conn:
        loaded = await actor.store.load(conn, actor.name, [key])
    stored = loaded.get(key)
    stored_state = msgspec.to_builtins(stored.state) if stored else None
    folded_state = msgspec.to_builtins(state) if count else None
    differences = diff(stored_state, folded_state)
    stored_version = stored.version if stored else 0
    if stored_version != len(causes):
        differences.append(Difference("version", stored_version, len(causes)))
    return AuditReport(
        domain=actor.domain,
        key=key,
        actor=actor.name,
        events=count,
        duplicates=duplicates,
        stored_version=stored_version,
        folded_version=len(causes),
        stored=stored_state,
        folded=folded_state,
        differences=differences,
        unknown_types=unknown,
    )
