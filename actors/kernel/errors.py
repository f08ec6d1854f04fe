"""How the runtime classifies failures: transient infrastructure versus a message's own fault."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

from actors.kernel.actor import StaleState

# SQLSTATE classes that say "try again": connection exceptions, transaction
# rollback (serialization, deadlock), insufficient resources, operator
# intervention (pg_terminate_backend, shutdown).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P", "58")


class KernelError(Exception):
    """Base of the runtime's own errors."""


class HandlerFailed(KernelError):
    """Raised when an actor's decide, evolve or store raised for one message."""

    def __init__(self, message_id: str, cause: BaseException) -> None:
        super().__init__(f"handling {message_id} failed: {type(cause).__name__}: {cause}")
        self.message_id = message_id
        self.cause = cause


class PayloadTooLarge(KernelError):
    """Raised when an emitted message exceeds the server's max_payload."""

    def __init__(self, subject: str, size: int, limit: int) -> None:
        super().__init__(f"message for {subject} is {size} bytes, over the {limit}-byte limit")
        self.subject = subject
        self.size = size
        self.limit = limit


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        if candidate is None:
            continue
        for attr in ("sqlstate", "pgcode"):
            value = getattr(candidate, attr, None)
            if isinstance(value, str):
                return value
    return None


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed (the database or network hiccuped)."""
    if isinstance(exc, StaleState | ConnectionError | TimeoutError | asyncio.TimeoutError):
        return True
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = _sqlstate(exc)
        if state is not None:
            return state.startswith(_TRANSIENT_SQLSTATE_PREFIXES)
        # SQLite "database is locked" and dropped asyncpg connections surface as these.
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    if isinstance(exc, sa_exc.ResourceClosedError | sa_exc.PendingRollbackError):
        return True
    name = type(exc).__name__
    # asyncpg's own connection errors when they escape SQLAlchemy's wrapping.
    return name in {"ConnectionDoesNotExistError", "InterfaceError", "ConnectionResetError"}


def needs_new_connection(exc: BaseException) -> bool:
    """True when the failure may have left the database connection itself unusable."""
    return is_transient(exc) and not isinstance(exc, StaleState)
