"""A child process hosting the training actor, for tests that SIGKILL it: ``python -m ...``."""

from __future__ import annotations

import argparse
import asyncio
import signal

from actors.kernel.config import Settings
from actors.kernel.host import Host
from actors.training.actor import ACTOR


async def main(nats_url: str, database_url: str, home: str) -> None:
    settings = Settings(
        nats_url=nats_url, database_url=database_url, home=home, lease_poll_seconds=0.1
    )
    host = Host(settings, [ACTOR], nats_url=nats_url)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, host.stop_event.set)
    await host.start()
    await host.wait_ready(within=60)
    print("ready", flush=True)
    try:
        await host.serve()
    finally:
        await host.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    asyncio.run(main(args.nats, args.db, args.home))
