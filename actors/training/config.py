"""The training configuration: every field documented where declared, loaded from TOML or flags."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from actors.training.errors import InvalidConfig
from schemas.training import BASELINE_NAMES, Loss, Schedule, TrainConfig

__all__ = [
    "BASELINE_NAMES",
    "DEFAULT",
    "LEARNING_FIELDS",
    "FieldDoc",
    "Loss",
    "Schedule",
    "TrainConfig",
    "add_flags",
    "changed_learning_fields",
    "fields",
    "from_mapping",
    "load",
    "overrides_from",
    "render_toml",
    "replace",
    "resolve",
    "to_mapping",
]

_SECTIONS: Mapping[str, str] = {
    "height": "Environment: the board the agent learns on",
    "seed": "Run",
    "gamma": "Deep Q-learning",
    "epsilon_start": "Exploration (epsilon-greedy)",
    "channels": "Q-network",
    "log_every": "Logging, checkpoints and evaluation",
}
"""The first field of each group, and the heading it gets in the TOML file and the docs."""


DEFAULT = TrainConfig()

LEARNING_FIELDS = frozenset(
    {
        "height",
        "width",
        "ships",
        "no_touch",
        "num_envs",
        "channels",
        "layers",
        "dueling",
        "buffer_capacity",
        "n_step",
    }
)
"""Fields a resumed run may not change: they shape the network, the buffer or the env state."""


class FieldDoc(msgspec.Struct, frozen=True):
    """One configuration field as the docs, the TOML file and the command line present it."""

    name: str
    section: str
    description: str
    default: Any
    kind: str


def _kind(t: msgspec.inspect.Type) -> str:
    if isinstance(t, msgspec.inspect.Metadata):
        return _kind(t.type)
    if isinstance(t, msgspec.inspect.BoolType):
        return "bool"
    if isinstance(t, msgspec.inspect.IntType):
        return "int"
    if isinstance(t, msgspec.inspect.FloatType):
        return "float"
    if isinstance(t, msgspec.inspect.LiteralType):
        return "/".join(str(v) for v in t.values)
    if isinstance(t, msgspec.inspect.VarTupleType):
        return f"list of {_kind(t.item_type)}"
    return type(t).__name__


def fields() -> list[FieldDoc]:
    """Every field in declaration order, with its section, description and default."""
    info = msgspec.inspect.type_info(TrainConfig)
    assert isinstance(info, msgspec.inspect.StructType)
    out: list[FieldDoc] = []
    section = ""
    for f in info.fields:
        section = _SECTIONS.get(f.name, section)
        meta = f.type
        description = ""
        if isinstance(meta, msgspec.inspect.Metadata):
            description = str((meta.extra_json_schema or {}).get("description", ""))
        out.append(FieldDoc(f.name, section, description, getattr(DEFAULT, f.name), _kind(f.type)))
    return out


def replace(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A copy of ``config`` with ``changes`` applied and validated."""
    return from_mapping({**to_mapping(config), **changes}, "overrides")


def to_mapping(config: TrainConfig) -> dict[str, Any]:
    """The config as plain data (lists for tuples), as TOML and JSON hold it."""
    data: dict[str, Any] = msgspec.to_builtins(config)
    return data


def from_mapping(data: Mapping[str, Any], source: str) -> TrainConfig:
    """Validate plain data into a config; missing fields take their defaults."""
    try:
        return msgspec.convert(dict(data), TrainConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise InvalidConfig(source, str(exc)) from exc


def load(path: str | Path) -> TrainConfig:
    """Read a TOML file (flat ``key = value`` pairs); fields it omits keep their defaults."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise InvalidConfig(str(p), "the file does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(str(p), f"not valid TOML: {exc}") from exc
    return from_mapping(data, str(p))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:_}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_toml(config: TrainConfig = DEFAULT) -> str:
    """A documented TOML file of ``config``: every field with its description and type."""
    lines = [
        "# Training configuration of the Battleship DQN agent (`troupe train --config FILE`).",
        "# Every field is optional: an omitted field keeps the default shown here, and",
        "# command-line flags (--learning-rate 3e-4, --no-double-dqn) override the file.",
        "# Steps count shots: one vector-env step over num_envs boards is num_envs steps.",
    ]
    section = ""
    for f in fields():
        if f.section != section:
            section = f.section
            lines += ["", f"# --- {section}"]
        lines.append(f"# {f.description} ({f.kind})")
        lines.append(f"{f.name} = {_toml_value(getattr(config, f.name))}")
    return "\n".join(lines) + "\n"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field (``--learning-rate``, ``--double-dqn/--no-double-dqn``), default None."""
    group = parser.add_argument_group("configuration overrides (default: the config file)")
    for f in fields():
        help_text = f"{f.description} [default {_toml_value(f.default)}]"
        if f.kind == "bool":
            group.add_argument(
                _flag(f.name),
                dest=f"cfg_{f.name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif f.kind.startswith("list of"):
            group.add_argument(
                _flag(f.name),
                dest=f"cfg_{f.name}",
                default=None,
                metavar="A,B,...",
                help=help_text,
            )
        elif "/" in f.kind:
            group.add_argument(
                _flag(f.name),
                dest=f"cfg_{f.name}",
                choices=f.kind.split("/"),
                default=None,
                help=help_text,
            )
        else:
            caster: Any = {"int": int, "float": float}.get(f.kind, str)
            group.add_argument(
                _flag(f.name),
                dest=f"cfg_{f.name}",
                type=caster,
                default=None,
                metavar=f.kind.upper(),
                help=help_text,
            )


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """The fields set on the command line by ``add_flags``' flags."""
    out: dict[str, Any] = {}
    for f in fields():
        value = getattr(args, f"cfg_{f.name}", None)
        if value is None:
            continue
        if f.kind.startswith("list of"):
            items = [v.strip() for v in str(value).split(",") if v.strip()]
            value = [int(v) for v in items] if f.kind == "list of int" else items
        out[f.name] = value
    return out


def resolve(path: str | Path | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """The config file (or the defaults) with ``overrides`` applied."""
    base = load(path) if path is not None else DEFAULT
    if not overrides:
        return base
    return from_mapping({**to_mapping(base), **overrides}, "command-line flags")


def changed_learning_fields(a: TrainConfig, b: TrainConfig) -> list[str]:
    """Fields in ``LEARNING_FIELDS`` whose values differ between ``a`` and ``b``."""
    return sorted(n for n in LEARNING_FIELDS if getattr(a, n) != getattr(b, n))


def iter_docs() -> Iterator[tuple[str, str, str, str]]:
    """(name, type, default, description) rows for the configuration reference."""
    for f in fields():
        yield f.name, f.kind, _toml_value(f.default), f.description


def describe(config: TrainConfig, keys: Sequence[str] | None = None) -> str:
    """``key=value`` pairs of the fields that differ from the defaults (or of ``keys``)."""
    names = keys or [
        f.name for f in fields() if getattr(config, f.name) != getattr(DEFAULT, f.name)
    ]
    return " ".join(f"{n}={_toml_value(getattr(config, n))}" for n in names) or "defaults"
