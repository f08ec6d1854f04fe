"""Idempotency records and pending-command markers in one NATS KV bucket shared by replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from gateway.idempotency import IdempotencyRecord, StoredRecord, decode_record, encode_record
from schemas.subjects import digest

__all__ = ["IdempotencyBucket", "Pending"]

log = logging.getLogger("troupe.gateway.kv")

_WRONG_LAST_SEQUENCE = (10071, 10164)
_IDEM_PREFIX = "idem."
_PENDING_PREFIX = "pending."


class Pending(msgspec.Struct, frozen=True, kw_only=True, tag="gateway.pending.v1"):
    """A command sent through the gateway whose outcome had not arrived when it answered 202."""

    command_id: str
    domain: str
    key: str
    command: str
    tenant: str
    principal: str
    status_url: str
    sent_at: datetime


_PENDING = msgspec.json.Decoder(Pending)


class IdempotencyBucket:
    """``IdempotencyStore`` on a NATS KV bucket, plus pending markers for status URLs.

    Writes use the bucket's compare-and-set (expected last subject sequence), so
    two replicas racing on one key see exactly one winner. Waiters learn about
    changes from one core subscription on the bucket's subjects per process,
    not one watcher per waiting request.
    """

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        bucket: str,
        ttl: timedelta,
        *,
        replicas: int = 1,
        memory: bool = False,
    ) -> None:
        self.nc = nc
        self.js = js
        self.bucket = bucket
        self.ttl = ttl
        self.replicas = replicas
        self.memory = memory
        self._kv: KeyValue | None = None
        self._sub: Subscription | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("the idempotency bucket is not open; call start() first")
        return self._kv

    async def start(self) -> None:
        """Create the bucket if needed (max age at least the retention) and listen for changes."""
        seconds = self.ttl.total_seconds()
        try:
            kv = await self.js.key_value(self.bucket)
        except BucketNotFoundError:
            kv = await self.js.create_key_value(
                js_api.KeyValueConfig(
                    bucket=self.bucket,
                    description="Gateway idempotency records and pending commands.",
                    history=1,
                    ttl=seconds,
                    storage=js_api.StorageType.MEMORY if self.memory else js_api.StorageType.FILE,
                    replicas=self.replicas,
                    direct=True,
                )
            )
        else:
            await self._ensure_ttl(seconds)
        self._kv = kv
        self._sub = await self.nc.subscribe(f"$KV.{self.bucket}.>", cb=self._changed)

    async def _ensure_ttl(self, seconds: float) -> None:
        stream = f"KV_{self.bucket}"
        info = await self.js.stream_info(stream)
        wanted = js_api.StorageType.MEMORY if self.memory else js_api.StorageType.FILE
        if info.config.storage is not None and info.config.storage != wanted:
            # JetStream cannot move a stream between storages; the bucket keeps its own.
            log.warning(
                "bucket %s uses %s storage, not %s; delete it to change (keys are lost)",
                self.bucket,
                info.config.storage.value,
                wanted.value,
            )
        current = float(info.config.max_age or 0)
        if current and current < seconds:
            # Records must outlive the retention, or a retry would run a finished request again.
            config = info.config
            config.max_age = seconds
            await self.js.update_stream(config)
            log.info("raised max age of %s to %.0fs", stream, seconds)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        for futures in self._waiters.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)
        self._waiters.clear()

    async def check(self) -> None:
        """Raise unless the bucket answers (for /status)."""
        await self.kv.status()

    async def _changed(self, msg: Msg) -> None:
        key = msg.subject[len(f"$KV.{self.bucket}.") :]
        for future in self._waiters.pop(key, ()):
            if not future.done():
                future.set_result(None)

    # -- IdempotencyStore ---------------------------------------------------------

    async def get(self, key: str) -> StoredRecord | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        return StoredRecord(decode_record(entry.value), int(entry.revision))

    async def create(self, key: str, record: IdempotencyRecord) -> int | None:
        try:
            return int(await self.kv.create(key, encode_record(record)))
        except KeyWrongLastSequenceError:
            return None

    async def replace(self, key: str, record: IdempotencyRecord, revision: int) -> int | None:
        try:
            return int(await self.kv.update(key, encode_record(record), last=revision))
        except KeyWrongLastSequenceError:
            return None

    async def delete(self, key: str, revision: int) -> bool:
        try:
            await self.kv.delete(key, last=revision)
        except APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                return False
            raise
        return True

    async def wait_for_change(self, key: str, revision: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(future)
        try:
            # The change may have landed between the caller's read and this registration.
            current = await self.get(key)
            if current is None or current.revision != revision:
                return
            await future
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(future)
                if not waiters:
                    self._waiters.pop(key, None)

    # -- pending commands -------------------------------------------------------

    @staticmethod
    def pending_key(domain: str, command_id: str) -> str:
        return f"{_PENDING_PREFIX}{domain}.{digest(command_id)}"

    async def put_pending(self, pending: Pending) -> None:
        """Remember a command answered with 202, so its status URL can say "pending"."""
        await self.kv.put(
            self.pending_key(pending.domain, pending.command_id), msgspec.json.encode(pending)
        )

    async def get_pending(self, domain: str, command_id: str) -> Pending | None:
        try:
            entry = await self.kv.get(self.pending_key(domain, command_id))
        except (KeyNotFoundError, NotFoundError):
            return None
        if not entry.value:
            return None
        try:
            return _PENDING.decode(entry.value)
        except msgspec.DecodeError:
            return None
