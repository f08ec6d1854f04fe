"""Readiness: NATS connected, database reachable, streams present and not behind the outbox."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from nats.js.errors import NotFoundError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.kernel import outbox
from actors.kernel.bus import Bus, stream_specs

STARTED = time.time()


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One readiness check: ok or not, with the reason a person can act on."""

    name: str
    ok: bool
    detail: str = ""
    data: dict[str, Any] = {}


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """The /status body."""

    ok: bool
    version: str
    build: str
    uptime_seconds: float
    checks: list[Check]


def version() -> tuple[str, str]:
    """(package version, build id from TROUPE_BUILD or 'dev')."""
    import os
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as pkg_version

    try:
        v = pkg_version("troupe")
    except PackageNotFoundError:
        v = "0+unknown"
    return v, os.environ.get("TROUPE_BUILD", "dev")


async def check_database(engine: AsyncEngine) -> Check:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            lag = await outbox.lag(conn)
    except Exception as exc:
        return Check(name="database", ok=False, detail=f"unreachable: {exc}")
    return Check(
        name="database",
        ok=True,
        detail=f"{engine.dialect.name}; {lag.unsent} outbox rows unsent",
        data={"dialect": engine.dialect.name, "outbox_unsent": lag.unsent},
    )


async def check_streams(bus: Bus, engine: AsyncEngine) -> list[Check]:
    """Each stream exists, and its last sequence is not behind what the outbox recorded.

    A stream behind the outbox lost acknowledged writes (a server that acked
    before syncing, then crashed): events the database says were published
    are gone.
    """
    checks: list[Check] = []
    if not bus.nc.is_connected:
        return [Check(name="nats", ok=False, detail="not connected")]
    url = bus.nc.connected_url
    checks.append(Check(name="nats", ok=True, detail=url.netloc if url else ""))
    try:
        async with engine.connect() as conn:
            recorded = {
                spec.name: await outbox.highest_published_seq(conn, spec.name)
                for spec in stream_specs(bus.settings)
            }
    except Exception as exc:
        return [*checks, Check(name="streams", ok=False, detail=f"database unreachable: {exc}")]
    for spec in stream_specs(bus.settings):
        try:
            info = await bus.js.stream_info(spec.name)
        except NotFoundError:
            checks.append(Check(name=f"stream:{spec.name}", ok=False, detail="missing"))
            continue
        except Exception as exc:
            checks.append(Check(name=f"stream:{spec.name}", ok=False, detail=str(exc)))
            continue
        last = int(info.state.last_seq)
        expected = recorded[spec.name]
        behind = last < expected
        checks.append(
            Check(
                name=f"stream:{spec.name}",
                ok=not behind,
                detail=(
                    f"last sequence {last} is behind {expected}, which the outbox recorded as "
                    "published: acknowledged messages were lost"
                    if behind
                    else f"{int(info.state.messages)} messages, last sequence {last}"
                ),
                data={"last_seq": last, "outbox_seq": expected},
            )
        )
    return checks


async def gather(bus: Bus | None, engine: AsyncEngine) -> Status:
    checks = [await check_database(engine)]
    if bus is None:
        checks.append(Check(name="nats", ok=False, detail="not connected"))
    else:
        checks += await check_streams(bus, engine)
    v, build = version()
    return Status(
        ok=all(c.ok for c in checks),
        version=v,
        build=build,
        uptime_seconds=round(time.time() - STARTED, 3),
        checks=checks,
    )
