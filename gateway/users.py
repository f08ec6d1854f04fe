"""Callers as internal users: a token's (issuer, subject) gets a stable id and a row."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel.db import transaction
from gateway.auth import Principal
from gateway.tables import gateway_users

__all__ = ["USER_ID_NAMESPACE", "User", "UserDirectory", "user_id"]

USER_ID_NAMESPACE: Final = uuid.UUID("8f6a2b0e-3c1d-5e7f-9a4b-6d2c8e1f0a37")
"""uuid5 namespace of internal user ids; never change it."""

DEFAULT_TENANT: Final = "default"


def user_id(issuer: str, subject: str) -> str:
    """The internal id of the caller ``subject`` of ``issuer``: the same on every replica."""
    return str(uuid.uuid5(USER_ID_NAMESPACE, msgspec.json.encode([issuer, subject]).decode()))


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A caller as the gateway knows it."""

    id: str
    issuer: str
    subject: str
    tenant: str
    first_seen_at: datetime


class UserDirectory:
    """Creates a user row the first time a caller is seen; later lookups come from memory.

    Ids are derived from (issuer, subject), so concurrent first requests on
    several replicas agree on the id and the upsert keeps one row.
    """

    def __init__(self, engine: AsyncEngine, *, cache_size: int = 10_000) -> None:
        self.engine = engine
        self.cache_size = cache_size
        self._cache: dict[tuple[str, str], User] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def ensure(self, principal: Principal) -> User:
        """The user behind ``principal``; its row is created (or refreshed) when first seen."""
        ident = (principal.issuer, principal.subject)
        cached = self._cache.get(ident)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(ident, asyncio.Lock())
        async with lock:
            cached = self._cache.get(ident)
            if cached is not None:
                return cached
            user = await self._upsert(principal)
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[ident] = user
        self._locks.pop(ident, None)
        return user

    async def _upsert(self, principal: Principal) -> User:
        now = datetime.now(UTC)
        ident = user_id(principal.issuer, principal.subject)
        tenant = principal.tenant or DEFAULT_TENANT
        values = {
            "id": ident,
            "issuer": principal.issuer,
            "subject": principal.subject,
            "tenant": principal.tenant,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        dialect = self.engine.dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(gateway_users).values(**values)
        statement = statement.on_conflict_do_update(
            # The id is derived from (issuer, subject), so it is the one arbiter: naming
            # the pair instead lets two racing first sights trip the primary key.
            index_elements=[gateway_users.c.id],
            set_={"last_seen_at": now, "tenant": principal.tenant},
        )
        async with transaction(self.engine) as conn:
            await conn.execute(statement)
            row = (
                await conn.execute(
                    select(gateway_users.c.id, gateway_users.c.first_seen_at).where(
                        gateway_users.c.issuer == principal.issuer,
                        gateway_users.c.subject == principal.subject,
                    )
                )
            ).one()
        first_seen = row.first_seen_at
        if first_seen.tzinfo is None:
            # SQLite hands back naive datetimes; they were written in UTC.
            first_seen = first_seen.replace(tzinfo=UTC)
        return User(
            id=row.id,
            issuer=principal.issuer,
            subject=principal.subject,
            tenant=tenant,
            first_seen_at=first_seen,
        )
