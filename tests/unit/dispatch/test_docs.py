"""The Python examples in docs/dispatch.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "dispatch.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_document_has_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("source", BLOCKS)
def test_example_runs(source: str) -> None:
    exec(compile(source, str(DOC), "exec"), {})
