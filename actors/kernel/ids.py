"""Deterministic ids: the same causing message always yields the same event ids.

That is what lets JetStream's duplicate window and every consumer's ledger
recognise a republished event after a crash.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("7c5d3f2e-42b8-4c55-9a3b-b7c1d0a4f1e9")


def event_id(actor: str, message_id: str, index: int) -> str:
    """The id of the ``index``-th message ``actor`` emitted while handling ``message_id``."""
    return str(uuid.uuid5(NAMESPACE, f"{actor}\n{message_id}\n{index}"))


def outcome_id(actor: str, message_id: str) -> str:
    """The id of the outcome ``actor`` published for command ``message_id``."""
    return str(uuid.uuid5(NAMESPACE, f"{actor}\n{message_id}\noutcome"))


def dead_letter_id(consumer: str, stream: str, seq: int) -> str:
    """The id of the dead letter for one stored message: re-dead-lettering it is a duplicate."""
    return str(uuid.uuid5(NAMESPACE, f"{consumer}\n{stream}\n{seq}\ndlq"))
