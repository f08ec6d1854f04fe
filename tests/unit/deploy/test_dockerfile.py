"""deploy/Dockerfile: multi-stage, CPU torch at the project's pin, non-root, `troupe` entrypoint."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest

from tests.support.compose_schema import REPO_ROOT

from .conftest import DEPLOY

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    result, stage = [], -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(keyword.upper(), args.strip(), stage))
    return result


INSTRUCTIONS = _instructions(DOCKERFILE.read_text())


def _global_args() -> dict[str, str]:
    args = {}
    for instruction in INSTRUCTIONS:
        if instruction.stage >= 0:
            break
        if instruction.keyword == "ARG" and "=" in instruction.args:
            name, _, value = instruction.args.partition("=")
            args[name] = value
    return args


def _expand(text: str) -> str:
    args = _global_args()
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)


def _stage(index: int) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.stage == index]


def _final_stage() -> list[Instruction]:
    return _stage(max(i.stage for i in INSTRUCTIONS))


def test_build_and_runtime_stages_on_python_311_slim() -> None:
    froms = [i for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(froms) >= 2
    for instruction in froms:
        image, _, alias = _expand(instruction.args).partition(" AS ")
        assert image == "python:3.11-slim"
        assert alias
    copies_from_build = [
        i for i in _final_stage() if i.keyword == "COPY" and i.args.startswith("--from=build ")
    ]
    assert copies_from_build, "the runtime stage copies nothing from the build stage"


def _pip_installs() -> list[str]:
    return [_expand(i.args) for i in _stage(0) if i.keyword == "RUN" and "pip install" in i.args]


def test_installs_the_project_with_the_training_extra() -> None:
    installs = _pip_installs()
    assert any('".[training]"' in command for command in installs)
    for command in installs:
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in command.replace('"', "")


def test_torch_pin_matches_the_project() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    pins = [
        spec.replace(" ", "")
        for spec in project["project"]["optional-dependencies"]["training"]
        if spec.startswith("torch")
    ]
    assert pins == ["torch==2.13.0"]
    assert _global_args()["TORCH_VERSION"] == "2.13.0"
    assert any('"torch==2.13.0"' in command for command in _pip_installs())


def test_runs_as_a_non_root_user_with_the_troupe_entrypoint() -> None:
    final = _final_stage()
    users = [i.args for i in final if i.keyword == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    (entrypoint,) = [i.args for i in final if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["troupe"]
    # The uid the runtime stage creates is the one it switches to.
    assert any(i.keyword == "RUN" and f"--uid {user}" in i.args for i in final), (
        "USER does not match the created account"
    )


def test_exposes_the_gateway_and_metrics_ports() -> None:
    (expose,) = [i.args for i in _final_stage() if i.keyword == "EXPOSE"]
    assert set(expose.split()) == {"8000", "9464"}


def _ignored(patterns: list[str], path: str) -> bool:
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body.removeprefix("**/")):
            ignored = not negated
    return ignored


def _dockerignore() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _copied_sources() -> list[str]:
    sources = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword != "COPY" or instruction.args.startswith("--from"):
            continue
        parts = shlex.split(instruction.args)
        sources.extend(parts[:-1])
    return sources


def test_every_copied_path_exists_and_reaches_the_build_context() -> None:
    patterns = _dockerignore()
    sources = _copied_sources()
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), source
        assert not _ignored(patterns, source), f"{source} is excluded by .dockerignore"


def test_every_package_the_project_ships_is_copied() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= set(_copied_sources())
    assert project["project"]["readme"] in _copied_sources()


@pytest.mark.parametrize("path", [".venv", ".git", ".troupe", "tests", "x/__pycache__"])
def test_dockerignore_keeps_local_state_out_of_the_context(path: str) -> None:
    assert _ignored(_dockerignore(), path)
