"""``troupe train``: local training from a config file, evaluation, the documented config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.training import config, paths
from tests.unit.training.support import small_config
from troupe.cli import main


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own state directory, so no command reads or creates the repository's."""
    monkeypatch.setenv("TROUPE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TROUPE_TRAINING_DIR", raising=False)
    monkeypatch.delenv("TROUPE_DATABASE_URL", raising=False)
    return tmp_path


def _small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(config.render_toml(small_config(total_steps=800, eval_every=0)))
    return path


def test_config_prints_the_documented_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "config"]) == 0
    assert capsys.readouterr().out == config.render_toml()


def test_train_then_evaluate_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            str(_small_file(tmp_path)),
            "--out",
            str(out),
            "--quiet",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Shots to win over 20 seeded games" in printed
    assert "random" in printed
    for name in (paths.MODEL, paths.CURVE, paths.METRICS, paths.EVALUATION, paths.CONFIG):
        assert (out / name).is_file(), name
    assert config.load(out / paths.CONFIG).seed == 3, "the flag overrides the file"
    recorded = json.loads((out / paths.EVALUATION).read_text())

    assert (
        main(
            [
                "train",
                "eval",
                str(out / paths.MODEL),
                "--games",
                "20",
                "--json",
                "--baselines",
                "random",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["agent"] == {**recorded["agent"], "player": "run"}
    assert report["versus"][0]["baseline"]["player"] == "random"

    (checkpoint,) = [
        p for _, p in paths.periodic(out / paths.CHECKPOINTS) if p.name.endswith("800.pt")
    ]
    assert (
        main(["train", "eval", str(checkpoint), "--games", "20", "--json", "--baselines", ""]) == 0
    )
    assert json.loads(capsys.readouterr().out)["agent"]["mean"] == recorded["agent"]["mean"]


def test_training_resumes_from_the_latest_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    small = _small_file(tmp_path)
    assert main(["train", "--config", str(small), "--out", str(out), "--quiet"]) == 0
    code = main(
        [
            "train",
            "--config",
            str(small),
            "--out",
            str(out),
            "--quiet",
            "--total-steps",
            "1200",
            "--resume",
            "latest",
        ]
    )
    assert code == 0
    lines = (out / paths.METRICS).read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 1200


def test_invalid_configurations_are_reported_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("gamma = 3\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "gamma" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "eval", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())
