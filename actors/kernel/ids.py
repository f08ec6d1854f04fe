"""Deterministic ids: the same causing message always yields the same event ids.

That is what lets JetStream's duplicate window and every consumer's ledger
recognise a republished event after a crash.
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("7c5d3f2e-42b8-4c55-9a3b-b7c1d0a4f1e9")
_NAMESPACE_BYTES = NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without building a UUID object.

    Every emitted event and outcome needs one, so the hot path skips ``uuid.UUID``'s
    validation; the result is the same string (a test holds it to that).
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id(actor: str, message_id: str, index: int) -> str:
    """The id of the ``index``-th message ``actor`` emitted while handling ``message_id``."""
    return uuid5_text(f"{actor}\n{message_id}\n{index}")


def outcome_id(actor: str, message_id: str) -> str:
    """The id of the outcome ``actor`` published for command ``message_id``."""
    return uuid5_text(f"{actor}\n{message_id}\noutcome")


def dead_letter_id(consumer: str, stream: str, seq: int) -> str:
    """The id of the dead letter for one stored message: re-dead-lettering it is a duplicate."""
    return uuid5_text(f"{consumer}\n{stream}\n{seq}\ndlq")
