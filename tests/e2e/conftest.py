"""``troupe up`` as a subprocess on a free port: the fixture every end-to-end test drives."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from actors.kernel.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]

TEST_ACTORS = "tests.support.accounts:ACCOUNTS,tests.support.accounts:TALLY"
"""The small actors the gateway tests drive (added to whatever actors the tree defines)."""

# Variables a developer's shell may carry that would point the subprocess elsewhere.
_INHERITED_PREFIXES = ("TROUPE_", "OTEL_")


class TroupeFailed(RuntimeError):
    """Raised when ``troupe up`` does not become ready, or does not stop cleanly."""


@dataclass
class TroupeUp:
    """A running ``troupe up``: where its gateway and its NATS listen, and its home."""

    base_url: str
    nats_url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGINT, as Ctrl-C would; returns the exit code (SIGKILL after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise TroupeFailed(
                    f"troupe up did not stop within {timeout}s of SIGINT:\n{self.log_tail()}"
                ) from None
        return int(self.process.returncode)


def troupe_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The subprocess environment: this one without TROUPE_*/OTEL_* settings, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    base.setdefault("TROUPE_LOG_FORMAT", "json")
    base.update(env or {})
    return base


def wait_ready(process: subprocess.Popen[bytes], base_url: str, log: Path, deadline: float) -> None:
    """Poll ``/status`` until it answers 200, the process exits, or ``deadline`` passes."""
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise TroupeFailed(
                    f"troupe up exited with {process.returncode} before it was ready:\n"
                    + log.read_text(errors="replace")[-4000:]
                )
            try:
                response = client.get(f"{base_url}/status")
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:500]}"
            time.sleep(0.1)
    raise TroupeFailed(f"troupe up was not ready in time (last /status: {last})")


@contextlib.contextmanager
def launch_troupe(
    home: Path,
    env: Mapping[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    args: Sequence[str] = (),
    ready_within: float = 90.0,
) -> Iterator[TroupeUp]:
    """Start ``troupe up --http <host>:<free> --nats-port 0 --home <home>``; stop it with SIGINT.

    Yields once ``/status`` answers 200. On leaving, the process must exit 0.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "troupe-up.log"
    command = [
        sys.executable,
        "-m",
        "troupe.cli",
        "up",
        "--http",
        f"{host}:{port}",
        "--nats-port",
        "0",
        "--home",
        str(home),
        *args,
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=troupe_environment(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://{host}:{port}"
    running = TroupeUp(base_url=base_url, nats_url="", home=home, log=log, process=process)
    try:
        wait_ready(process, base_url, log, time.monotonic() + ready_within)
        running.nats_url = (home / "nats.url").read_text().strip()
    except BaseException:
        with contextlib.suppress(Exception):
            running.stop(timeout=20)
        raise
    try:
        yield running
    finally:
        code = running.stop()
        if code != 0:
            raise TroupeFailed(f"troupe up exited with {code} after SIGINT:\n{running.log_tail()}")


def run_schemathesis(
    troupe_up: TroupeUp,
    report_dir: Path,
    *,
    tags: Sequence[str],
    max_examples: int,
    exclude_operation_ids: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Schemathesis (seeded, one worker) against the gateway's OpenAPI document, on ``tags``.

    Every check runs but one: msgspec decodes integers strictly, so `1.0` (an "integer" to JSON
    Schema) is refused with a 422 naming the field; that refusal is intended, not a defect.
    """
    pytest.importorskip("schemathesis", reason="schemathesis is installed from PyPI")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{troupe_up.base_url}/schema/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        *[arg for op in exclude_operation_ids for arg in ("--exclude-operation-id", op)],
        "--max-examples",
        str(max_examples),
        "--seed",
        "20261122",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
        *[arg for tag in tags for arg in ("--include-tag", tag)],
    ]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def troupe_env() -> dict[str, str]:
    """The environment of the module's ``troupe up``; override it in a module to change it."""
    return {"TROUPE_EXTRA_ACTORS": TEST_ACTORS}


@pytest.fixture(scope="module")
def troupe_up(
    troupe_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TroupeUp]:
    """One ``troupe up`` per test module (its ``.base_url`` and ``.nats_url``), stopped cleanly."""
    with launch_troupe(tmp_path_factory.mktemp("troupe-home"), troupe_env) as running:
        yield running
