"""Every actor Troupe runs, found by convention and imported lazily.

An actor is a package ``actors/<name>/`` whose ``actor.py`` defines ``ACTOR``
(an ``Actor`` value); its tables, if any, live in ``actors/<name>/tables.py``.
Adding an actor therefore needs no edit here. ``TROUPE_EXTRA_ACTORS``
(``module:attribute`` entries, comma separated) adds actors from elsewhere,
which is how tests run ``troupe up`` with actors of their own.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import actors
from actors.kernel.actor import Actor

_ROOT = Path(actors.__file__).parent


class UnknownActor(KeyError):
    """Raised when a name is not a known actor; lists the known names."""

    def __init__(self, name: str) -> None:
        known = ", ".join(names()) or "none"
        super().__init__(f"no actor named {name!r} (known: {known})")
        self.name = name


def _packages() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(_ROOT)]) if m.ispkg)


@cache
def names() -> tuple[str, ...]:
    """Names of every actor package (those with an ``actor.py``), sorted."""
    return tuple(p for p in _packages() if p != "kernel" and (_ROOT / p / "actor.py").is_file())


def _extra() -> dict[str, Actor[Any]]:
    out: dict[str, Actor[Any]] = {}
    for entry in filter(
        None, (e.strip() for e in os.environ.get("TROUPE_EXTRA_ACTORS", "").split(","))
    ):
        module, _, attribute = entry.partition(":")
        actor: Actor[Any] = getattr(importlib.import_module(module), attribute or "ACTOR")
        out[actor.name] = actor
    return out


def load(name: str) -> Actor[Any]:
    """Import and return the actor called ``name``."""
    if name in names():
        actor: Actor[Any] = importlib.import_module(f"actors.{name}.actor").ACTOR
        return actor
    extra = _extra()
    if name in extra:
        return extra[name]
    raise UnknownActor(name)


def load_all(selected: Iterable[str] | None = None) -> list[Actor[Any]]:
    """Every actor (or the named ones): the packages' sorted by name, then any extra ones."""
    if selected is not None:
        return [load(n) for n in selected]
    return [load(n) for n in names()] + list(_extra().values())


def by_domain(domain: str) -> Actor[Any]:
    """The actor that owns a command domain."""
    for actor in load_all():
        if actor.domain == domain:
            return actor
    raise UnknownActor(domain)


def table_modules() -> list[str]:
    """The kernel's tables, every ``actors/<name>/tables.py``, and the gateway's."""
    found = [f"actors.{p}.tables" for p in _packages() if (_ROOT / p / "tables.py").is_file()]
    gateway = Path(_ROOT.parent / "gateway" / "tables.py")
    extra = ["gateway.tables"] if gateway.is_file() else []
    return ["actors.kernel.tables", *[m for m in found if m != "actors.kernel.tables"], *extra]


def import_table_modules() -> None:
    """Import every module that declares tables, so ``metadata`` is complete."""
    for module in table_modules():
        importlib.import_module(module)
