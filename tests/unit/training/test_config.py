"""The training configuration: documented defaults, TOML files, flags, validation."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import pytest

from actors.training import config
from actors.training.errors import InvalidConfig
from schemas.training import StartJob, TrainConfig

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FILE = ROOT / "configs" / "training" / "default.toml"
DOCS = ROOT / "docs" / "training.md"


def test_every_field_is_documented() -> None:
    for f in config.fields():
        assert f.description.endswith("."), f.name
        assert f.section, f.name


def test_the_committed_default_file_is_the_documented_defaults() -> None:
    assert config.load(DEFAULT_FILE) == config.DEFAULT
    assert DEFAULT_FILE.read_text() == config.render_toml(config.DEFAULT)


def test_the_docs_reference_every_field_with_its_default() -> None:
    text = DOCS.read_text()
    for name, kind, default, description in config.iter_docs():
        assert f"| `{name}` | {kind} | `{default}` | {description} |" in text, name


def test_a_file_sets_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text("height = 6\nwidth = 6\nships = [3, 2]\nlearning_rate = 1e-3\n")
    loaded = config.load(path)
    assert (loaded.height, loaded.width, loaded.ships) == (6, 6, (3, 2))
    assert loaded.learning_rate == 1e-3
    assert loaded.gamma == config.DEFAULT.gamma


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gamma = 1.5\n", "gamma"),
        ("batch_size = 0\n", "batch_size"),
        ("no_such_field = 1\n", "no_such_field"),
        ("loss = 'l1'\n", "loss"),
        ("height = 3\nwidth = 3\n", "fleet covers"),
        ("epsilon_start = 0.1\nepsilon_end = 0.5\n", "epsilon_end"),
        ("gamma = \n", "not valid TOML"),
    ],
)
def test_invalid_files_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidConfig, match=problem) as info:
        config.load(path)
    assert str(path) in str(info.value)


def test_a_missing_file_is_reported() -> None:
    with pytest.raises(InvalidConfig, match="does not exist"):
        config.load("/nonexistent/training.toml")


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "base.toml"
    path.write_text("gamma = 0.5\nbatch_size = 64\n")
    parser = argparse.ArgumentParser()
    config.add_flags(parser)
    args = parser.parse_args(
        ["--batch-size", "32", "--no-double-dqn", "--ships", "3,2", "--baselines", "random"]
    )
    resolved = config.resolve(path, config.overrides_from(args))
    assert resolved.gamma == 0.5
    assert resolved.batch_size == 32
    assert resolved.double_dqn is False
    assert resolved.ships == (3, 2)
    assert resolved.baselines == ("random",)


def test_flags_are_validated_like_the_file() -> None:
    parser = argparse.ArgumentParser()
    config.add_flags(parser)
    args = parser.parse_args(["--epsilon-end", "2"])
    with pytest.raises(InvalidConfig, match="command-line flags"):
        config.resolve(None, config.overrides_from(args))


def test_resume_refuses_changes_to_what_was_learned() -> None:
    changed = config.replace(config.DEFAULT, channels=16, total_steps=5, learning_rate=0.1)
    assert config.changed_learning_fields(config.DEFAULT, changed) == ["channels"]


def test_the_config_travels_in_start_commands() -> None:
    small = config.replace(config.DEFAULT, height=6, width=6, ships=(3, 2))
    wire = msgspec.json.encode(StartJob(config=small))
    assert msgspec.json.decode(wire, type=StartJob).config == small
    with pytest.raises(msgspec.ValidationError, match="gamma"):
        msgspec.json.decode(b'{"type":"training.start.v1","config":{"gamma":2}}', type=StartJob)
    assert isinstance(config.DEFAULT, TrainConfig)
