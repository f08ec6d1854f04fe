"""Policy bundles: the loader, the registry rules, and the starter bundles shipped beside them."""

from __future__ import annotations

from pathlib import Path

from actors.dispatch.bundles.loader import (
    Bundle,
    bundle_sha256,
    canonical_bytes,
    load_bundle,
    read_directory,
    seal,
)
from actors.dispatch.bundles.registry import activate, apply_activation, resolve

SHIPPED = Path(__file__).parent
"""Directory of the shipped bundles: ``starter/`` and ``strict/``."""


def shipped_files(name: str) -> dict[str, bytes]:
    """The files of a shipped bundle (``starter`` or ``strict``)."""
    return read_directory(SHIPPED / name)


def shipped(name: str) -> Bundle:
    """A shipped bundle, verified."""
    return load_bundle(shipped_files(name))


__all__ = [
    "SHIPPED",
    "Bundle",
    "activate",
    "apply_activation",
    "bundle_sha256",
    "canonical_bytes",
    "load_bundle",
    "read_directory",
    "resolve",
    "seal",
    "shipped",
    "shipped_files",
]
