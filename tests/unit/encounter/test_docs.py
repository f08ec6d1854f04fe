"""docs/encounters.md stays true: its Python examples run and it covers every event."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.effects import EFFECTS_EVENTS
from schemas.encounter import ENCOUNTER_EVENTS
from schemas.mastery import MASTERY_EVENTS

DOC = Path(__file__).resolve().parents[3] / "docs" / "encounters.md"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```python\n(.*?)```", TEXT, flags=re.DOTALL)


def test_the_document_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("source", EXAMPLES, ids=lambda s: s.splitlines()[0][:40])
def test_examples_run(source: str) -> None:
    exec(compile(source, str(DOC), "exec"), {})


@pytest.mark.parametrize(
    "event", [*ENCOUNTER_EVENTS, *EFFECTS_EVENTS, *MASTERY_EVENTS], ids=lambda c: c.__name__
)
def test_every_event_is_in_the_ledger(event: type) -> None:
    assert event.__name__ in TEXT
