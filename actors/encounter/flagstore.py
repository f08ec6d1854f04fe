"""Feature flags in a NATS KV bucket: read, write idempotently, and keep a live copy by watching."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
import nats.errors
import nats.js.errors
from nats.js import api as js_api
from nats.js.kv import KeyValue

from actors.encounter.flags import ALLOWED, evaluate
from schemas.flags import COMBAT, FeatureFlag, FlagVerdict

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext

    from actors.kernel.config import Settings

log = logging.getLogger("troupe.encounter.flags")

BUCKET = "troupe_flags"
"""The KV bucket holding every feature flag, one key per flag name."""
HISTORY = 16
"""Revisions kept per flag: enough to see who changed what during a rollout."""
RESYNC_SECONDS = 5.0
"""How often a watcher with no news checks the stored revision (and its connection)."""
WRITE_ATTEMPTS = 5

_decoder = msgspec.json.Decoder(FeatureFlag)
_encoder = msgspec.json.Encoder()


class FlagStoreError(Exception):
    """Base of the errors of the flag store."""


class FlagWriteConflict(FlagStoreError):
    """Raised when a flag kept changing underneath a write for every attempt."""

    def __init__(self, name: str, attempts: int) -> None:
        super().__init__(
            f"flag {name} changed underneath {attempts} write attempts in a row; "
            "someone else is writing it: check `troupe flags show` and retry"
        )
        self.name = name
        self.attempts = attempts


class InvalidStoredFlag(FlagStoreError):
    """Raised when the value stored under a flag's key is not a valid ``FeatureFlag``."""

    def __init__(self, name: str, revision: int, error: str) -> None:
        super().__init__(
            f"flag {name} revision {revision} is not a valid flag ({error}); "
            f"rewrite it with `troupe flags set {name} ...`"
        )
        self.name = name
        self.revision = revision
        self.error = error


class StoredFlag(msgspec.Struct, frozen=True, kw_only=True):
    """A flag as read from the bucket; ``revision`` 0 and no flag when it was never written."""

    name: str
    flag: FeatureFlag | None
    revision: int


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a write did: ``changed`` is false when the flag already had that value."""

    flag: FeatureFlag
    revision: int
    changed: bool
    previous: FeatureFlag | None = None


def bucket_name(settings: Settings) -> str:
    """The flag bucket of a deployment (carries the stream prefix, like the streams do)."""
    return f"{settings.streams.prefix}{BUCKET}"


def decode(name: str, revision: int, data: bytes) -> FeatureFlag:
    """A stored value as a flag, or ``InvalidStoredFlag``."""
    try:
        flag = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidStoredFlag(name, revision, str(exc)) from exc
    if flag.name != name:
        raise InvalidStoredFlag(name, revision, f"it names flag {flag.name!r}")
    return flag


class FlagStore:
    """One flag bucket; every write is a compare-and-set on the key's last revision."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, *, replicas: int = 1) -> FlagStore:
        """The bucket, created (file storage, ``HISTORY`` revisions per key) if it is missing."""
        try:
            kv = await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(
                js_api.KeyValueConfig(
                    bucket=bucket,
                    description="Troupe feature flags (FeatureFlag JSON per key)",
                    history=HISTORY,
                    storage=js_api.StorageType.FILE,
                    replicas=replicas,
                )
            )
        return cls(kv)

    async def get(self, name: str) -> StoredFlag:
        """The current value of ``name`` (no flag, revision of the tombstone, if deleted)."""
        try:
            entry = await self.kv.get(name)
        except nats.js.errors.KeyNotFoundError as exc:
            tombstone = getattr(exc, "entry", None)
            revision = int(tombstone.revision) if tombstone is not None else 0
            return StoredFlag(name=name, flag=None, revision=revision)
        revision = int(entry.revision or 0)
        return StoredFlag(
            name=name, flag=decode(name, revision, entry.value or b""), revision=revision
        )

    async def write(self, name: str, change: Callable[[FeatureFlag], FeatureFlag]) -> WriteResult:
        """Apply ``change`` to the stored flag (a default one if absent) and store the result.

        Idempotent: when the result equals what is stored nothing is written and the
        revision stays. A concurrent writer makes the compare-and-set fail; the change is
        then re-applied to the newer value.
        """
        for _ in range(WRITE_ATTEMPTS):
            try:
                current = await self.get(name)
                base = current.flag
            except InvalidStoredFlag as exc:
                # A broken value is overwritten from defaults rather than left in force.
                log.warning("%s", exc)
                current = StoredFlag(name=name, flag=None, revision=exc.revision)
                base = None
            new = change(base or FeatureFlag(name=name))
            if new.name != name:
                raise ValueError(f"a change to flag {name} may not rename it to {new.name}")
            if base is not None and new == base:
                return WriteResult(
                    flag=new, revision=current.revision, changed=False, previous=base
                )
            payload = _encoder.encode(new)
            try:
                if current.revision == 0:
                    revision = await self.kv.create(name, payload)
                else:
                    revision = await self.kv.update(name, payload, last=current.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue
            return WriteResult(flag=new, revision=int(revision), changed=True, previous=base)
        raise FlagWriteConflict(name, WRITE_ATTEMPTS)


class FlagHolder:
    """The latest value of one flag this process has seen: what ``decide`` evaluates."""

    def __init__(self, name: str = COMBAT) -> None:
        self.name = name
        self.flag: FeatureFlag | None = None
        self.revision = 0
        self.error: str | None = None
        self._changed: list[asyncio.Event] = []

    def set(self, flag: FeatureFlag | None, revision: int, *, force: bool = False) -> bool:
        """Take a value seen at ``revision``; older revisions are ignored unless ``force``.

        ``force`` is for a fresh read of the bucket (start-up, resync), which may come
        from a server whose revisions restarted.
        """
        if not force and revision < self.revision:
            return False
        changed = flag != self.flag or revision != self.revision
        self.flag, self.revision, self.error = flag, revision, None
        if changed:
            waiting, self._changed = self._changed, []
            for event in waiting:
                event.set()
        return changed

    def invalid(self, revision: int, error: str) -> None:
        """A revision could not be decoded: the last good value stays in force."""
        self.revision = max(self.revision, revision)
        self.error = error

    def changed_event(self) -> asyncio.Event:
        """An event set at the next change (tests and the CLI wait on it)."""
        event = asyncio.Event()
        self._changed.append(event)
        return event

    def verdict(self, cohort: str | None) -> FlagVerdict:
        """Whether the flag lets ``cohort`` in; no stored flag restricts nothing.

        Without a cohort (an encounter not created yet) only the kill switch and the
        master switch can refuse: the rules then say the encounter does not exist.
        """
        flag = self.flag
        if flag is None:
            return ALLOWED
        if cohort is None:
            if flag.kill_switch or not flag.enabled:
                return evaluate(flag, "unknown")
            return ALLOWED
        return evaluate(flag, cohort)


class FlagWatcher:
    """Keeps a ``FlagHolder`` current from the bucket, across reconnects and server restarts.

    A KV watch delivers changes at once. Because a watch is an ephemeral consumer that a
    restarted server forgets, the watcher also re-subscribes whenever the connection has
    reconnected, and every ``resync_seconds`` without news compares the stored revision
    with the one it holds, re-subscribing if they differ.
    """

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        bucket: str,
        holder: FlagHolder,
        *,
        replicas: int = 1,
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self.nc = nc
        self.js = js
        self.bucket = bucket
        self.holder = holder
        self.replicas = replicas
        self.resync_seconds = resync_seconds
        self.subscriptions = 0
        """How many watches were started (the first, then one per re-subscription)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the flag once (so the actor starts with it), then watch in the background."""
        store = await FlagStore.open(self.js, self.bucket, replicas=self.replicas)
        await self._resync(store)
        self._task = asyncio.create_task(self._run(), name=f"flag-watch-{self.holder.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _reconnects(self) -> int:
        return int(self.nc.stats.get("reconnects", 0))

    async def _resync(self, store: FlagStore) -> bool:
        """Force the holder to the stored value; True if that changed it."""
        try:
            stored = await store.get(self.holder.name)
        except InvalidStoredFlag as exc:
            log.error("%s", exc, extra={"flag": self.holder.name})
            self.holder.invalid(exc.revision, exc.error)
            return False
        changed = self.holder.set(stored.flag, stored.revision, force=True)
        if changed:
            self._log_value("flag loaded")
        return changed

    def _log_value(self, message: str) -> None:
        flag = self.holder.flag
        log.info(
            message,
            extra={
                "flag": self.holder.name,
                "revision": self.holder.revision,
                "value": msgspec.to_builtins(flag) if flag is not None else None,
            },
        )

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._watch_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.warning(
                    "flag watch of %s interrupted (%s: %s); retrying",
                    self.holder.name,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))

    async def _watch_once(self) -> None:
        """Watch until the watch looks stale; return to have it started again."""
        store = await FlagStore.open(self.js, self.bucket, replicas=self.replicas)
        reconnects = self._reconnects()
        watch = await store.kv.watch(self.holder.name)
        self.subscriptions += 1
        try:
            # A change made while no watch was running is picked up here.
            await self._resync(store)
            while True:
                try:
                    entry = await watch.updates(timeout=self.resync_seconds)  # type: ignore[no-untyped-call]
                except nats.errors.TimeoutError:
                    if self._reconnects() != reconnects:
                        log.info(
                            "connection re-established; watching flag %s again", self.holder.name
                        )
                        return
                    if await self._resync(store):
                        log.warning(
                            "flag %s watch missed a change; watching again", self.holder.name
                        )
                        return
                    continue
                if entry is None:
                    continue  # the marker after the initial value
                self._take(entry)
        finally:
            with contextlib.suppress(Exception):
                await watch.stop()  # type: ignore[no-untyped-call]

    def _take(self, entry: KeyValue.Entry) -> None:
        revision = int(entry.revision or 0)
        if entry.operation in ("DEL", "PURGE"):
            if self.holder.set(None, revision):
                self._log_value("flag deleted")
            return
        try:
            flag = decode(self.holder.name, revision, entry.value or b"")
        except InvalidStoredFlag as exc:
            log.error("%s", exc, extra={"flag": self.holder.name})
            self.holder.invalid(revision, exc.error)
            return
        if self.holder.set(flag, revision):
            self._log_value("flag changed")


__all__ = [
    "BUCKET",
    "FlagHolder",
    "FlagStore",
    "FlagStoreError",
    "FlagWatcher",
    "FlagWriteConflict",
    "InvalidStoredFlag",
    "StoredFlag",
    "WriteResult",
    "bucket_name",
    "decode",
]
