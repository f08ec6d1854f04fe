"""A child process hosting the accounts actor, for tests that SIGKILL it: `python -m ...`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from actors.kernel.config import Settings
from actors.kernel.host import Host
from tests.support.accounts import ACCOUNTS, TALLY


def _dump_tasks() -> None:
    """SIGUSR1: every task's stack on stderr, to see where a stuck test's actor waits."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main(nats_url: str, database_url: str, batch: int, command_timeout: float) -> None:
    settings = Settings(
        nats_url=nats_url,
        database_url=database_url,
        batch_size=batch,
        command_timeout_seconds=command_timeout,
        retry_backoff_max_seconds=0.5,
        lease_poll_seconds=0.1,
        publish_timeout_seconds=2.0,
    )
    host = Host(settings, [ACCOUNTS, TALLY], nats_url=nats_url, serve_requests=False)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.stop_event.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    await host.start()
    await host.wait_ready(within=60)
    print("ready", flush=True)
    try:
        await host.serve()
    finally:
        await host.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--nats", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--command-timeout", type=float, default=5.0)
    a = p.parse_args()
    asyncio.run(main(a.nats, a.db, a.batch, a.command_timeout))
    sys.exit(0)
