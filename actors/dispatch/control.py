"""The environment loader: tenants' policy environments read in the deciding transaction.

Ticket and workflow decisions need the tenant's active bundle and paused scopes. Their
stores call :meth:`Controls.refresh` from ``load``, on the connection of the transaction the
decisions commit in, so a pause committed before that batch began is in force for every
command of the batch. ``decide`` stays pure: it reads the refreshed snapshot through
:meth:`Controls.environment`, which does no I/O.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.dispatch.bundles.loader import Bundle, load_bundle
from actors.dispatch.env import PolicyEnvironment, empty
from actors.dispatch.errors import BundleError
from actors.dispatch.sql import database_of, from_json
from actors.policy.tables import bundles, controls, pauses
from schemas.base import Context
from schemas.dispatch.common import Scope
from schemas.dispatch.policy import ActiveBundle, KnownBundle, PausedScope, TenantControl

log = logging.getLogger("troupe.dispatch")

BUNDLE_CACHE = 64
"""Verified bundles kept in memory by sha256: verification runs once per bundle per process."""


def scope_of(kind: str, ident: str) -> Scope:
    """The Scope a pause row names (``scope_id`` is '' for the tenant scope)."""
    if kind == "tenant":
        return Scope(kind="tenant")
    if kind == "region":
        return Scope(kind="region", id=ident)
    return Scope(kind="ticket", id=ident)


class Controls:
    """A snapshot of every tenant's control (revision, pauses, verified active bundle).

    ``refresh`` reads one small row per tenant (``tenant, revision``) and reloads only the
    tenants whose revision moved; a tenant with no row has no bundle and nothing paused.
    """

    def __init__(self, bundle_cache: int = BUNDLE_CACHE) -> None:
        self._database = ""
        self._envs: dict[str, PolicyEnvironment] = {}
        self._bundles: OrderedDict[str, Bundle] = OrderedDict()
        self._bundle_cache = bundle_cache

    async def refresh(self, conn: AsyncConnection) -> None:
        """Bring the snapshot up to what ``conn``'s transaction sees."""
        database = database_of(conn)
        if database != self._database:
            # Revisions count per database: another database's snapshot proves nothing here.
            self._database, self._envs = database, {}
        revisions = {
            r.tenant: int(r.revision)
            for r in await conn.execute(select(controls.c.tenant, controls.c.revision))
        }
        stale = [
            tenant
            for tenant, revision in revisions.items()
            if (known := self._envs.get(tenant)) is None or known.control.revision != revision
        ]
        for tenant in set(self._envs) - set(revisions):
            del self._envs[tenant]  # a rolled-back database or a test's fresh schema
        if stale:
            for tenant, env in (await self._read(conn, stale)).items():
                self._envs[tenant] = env

    def environment(self, tenant: str) -> PolicyEnvironment:
        """The tenant's environment as of the last refresh."""
        found = self._envs.get(tenant)
        return found if found is not None else empty(tenant)

    def for_context(self, ctx: Context) -> PolicyEnvironment:
        """The environment of the tenant a message came from (what ``bind`` asks for)."""
        return self.environment(ctx.tenant)

    async def _read(
        self, conn: AsyncConnection, tenants: list[str]
    ) -> dict[str, PolicyEnvironment]:
        heads = {
            r.tenant: r
            for r in await conn.execute(select(controls).where(controls.c.tenant.in_(tenants)))
        }
        paused: dict[str, list[PausedScope]] = {t: [] for t in heads}
        rows = await conn.execute(
            select(pauses)
            .where(pauses.c.tenant.in_(list(heads)))
            .order_by(pauses.c.tenant, pauses.c.revision)
        )
        for r in rows:
            paused[r.tenant].append(
                PausedScope(
                    scope=scope_of(r.scope_kind, r.scope_id),
                    paused_by=r.paused_by,
                    paused_at=r.paused_at,
                    reason=r.reason,
                    revision=int(r.revision),
                )
            )
        wanted = [
            (t, h.active_sha256)
            for t, h in heads.items()
            if h.active_sha256 is not None and h.active_sha256 not in self._bundles
        ]
        files: dict[tuple[str, str], Any] = {}
        for tenant, sha in wanted:
            row = (
                await conn.execute(
                    select(bundles.c.files).where(
                        bundles.c.tenant == tenant, bundles.c.sha256 == sha
                    )
                )
            ).first()
            if row is not None:
                files[(tenant, sha)] = row.files
        out: dict[str, PolicyEnvironment] = {}
        for tenant, h in heads.items():
            out[tenant] = self._environment(tenant, h, tuple(paused[tenant]), files)
        return out

    def _environment(
        self,
        tenant: str,
        head: Any,
        paused: tuple[PausedScope, ...],
        files: dict[tuple[str, str], Any],
    ) -> PolicyEnvironment:
        control = TenantControl(tenant=tenant, paused=paused, revision=int(head.revision))
        sha = head.active_sha256
        if sha is None:
            return PolicyEnvironment(control=control)
        bundle = self._bundles.get(sha)
        if bundle is None:
            text = files.get((tenant, sha))
            try:
                if text is None:
                    raise BundleError(f"the active bundle {sha} of tenant {tenant} is not stored")
                bundle = load_bundle(from_json(text, dict[str, bytes]), expected_sha256=sha)
            except BundleError as err:
                # Fail closed for this tenant only: its commands are denied for want of a
                # verified bundle, and every other tenant keeps deciding.
                log.error("tenant %s: active bundle %s refused at load: %s", tenant, sha, err)
                return PolicyEnvironment(control=control)
            self._bundles[sha] = bundle
            while len(self._bundles) > self._bundle_cache:
                self._bundles.popitem(last=False)
        self._bundles.move_to_end(sha)
        active = ActiveBundle(
            version=head.active_version,
            sha256=sha,
            activated_at=head.activated_at,
            activated_by=head.activated_by or "",
        )
        kept = KnownBundle(
            version=bundle.version,
            sha256=bundle.sha256,
            created_at=bundle.created_at,
            files=bundle.files,
        )
        control = TenantControl(
            tenant=tenant,
            active=active,
            known=(kept,),
            paused=paused,
            revision=int(head.revision),
        )
        return PolicyEnvironment(control=control, bundle=bundle)


__all__ = ["BUNDLE_CACHE", "Controls", "scope_of"]
