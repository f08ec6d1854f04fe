"""docs/subjects.md is generated from the actors; it must match what they declare today."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import registry
from actors.kernel.catalog import render
from schemas.base import tag_of

ROOT = Path(__file__).resolve().parents[3]


def test_the_catalogue_in_docs_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TROUPE_EXTRA_ACTORS", raising=False)
    expected = render(registry.load_all())
    current = (ROOT / "docs" / "subjects.md").read_text()
    assert current == expected, "docs/subjects.md is stale: run `troupe catalog`"


def test_every_message_of_every_actor_is_in_the_catalogue() -> None:
    text = (ROOT / "docs" / "subjects.md").read_text()
    for actor in registry.load_all():
        for message in [*actor.commands, *actor.emits, *actor.reactions]:
            assert f"`{tag_of(message)}`" in text
