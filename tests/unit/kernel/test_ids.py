"""Deterministic ids: the fast uuid5 is uuid5, and ids depend on every part of their cause."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from actors.kernel import ids


@given(st.text())
def test_the_fast_uuid5_is_the_standard_one(name: str) -> None:
    assert ids.uuid5_text(name) == str(uuid.uuid5(ids.NAMESPACE, name))


@given(st.text(min_size=1), st.text(min_size=1), st.integers(min_value=0, max_value=10_000))
def test_event_ids_are_stable_and_tell_causes_apart(actor: str, message: str, index: int) -> None:
    first = ids.event_id(actor, message, index)
    assert first == ids.event_id(actor, message, index)
    assert uuid.UUID(first).version == 5
    assert first != ids.event_id(actor, message, index + 1)
    assert first != ids.event_id(actor + "x", message, index)
    assert first != ids.outcome_id(actor, message)
