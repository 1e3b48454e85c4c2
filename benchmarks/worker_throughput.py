"""Throughput of a no-op tenant-scoped actor on each broker.

For each broker (the Postgres broker on a throwaway database; RabbitMQ at `BROKER_URL`,
else the local default, skipped when nothing listens): send `--messages` messages for one
tenant, then run one in-process worker with `--threads` threads until all are processed.
Prints the send rate and the processing rate (messages per second). The tenant middleware
runs for every message (registry lookup, cached; context set and cleared).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import threading
import time
from typing import Any

from dramatiq import Middleware, Worker

from benchmarks.support import bench_engine, clone_tenants, machine, throwaway_database
from tenants.registry import find_tenant
from workers import broker as brokers
from workers.actors import actor
from workers.runtime import lend_loop

QUEUE = f"bench_noop_{secrets.token_hex(3)}"


@actor("bench.noop", queue_name=QUEUE)
def noop() -> None:
    """Nothing: the cost measured is the broker's and the middleware's."""


class Counter(Middleware):
    def __init__(self) -> None:
        self.done = 0
        self.lock = threading.Lock()

    def after_process_message(self, broker: Any, message: Any, **_: Any) -> None:
        with self.lock:
            self.done += 1


async def measure(name: str, url: str, slug: str, messages: int, threads: int) -> None:
    broker = await asyncio.to_thread(brokers.make_broker, url)
    counter = Counter()
    broker.add_middleware(counter)
    brokers.install(broker)
    try:
        started = time.perf_counter()

        def send() -> None:
            for _ in range(messages):
                noop.send_with_options(tenant=slug)

        await asyncio.to_thread(send)
        sent = time.perf_counter() - started
        with lend_loop(asyncio.get_running_loop()):
            worker = Worker(broker, queues={QUEUE}, worker_threads=threads, worker_timeout=100)
            started = time.perf_counter()
            await asyncio.to_thread(worker.start)
            while counter.done < messages:
                await asyncio.sleep(0.01)
            took = time.perf_counter() - started
            await asyncio.to_thread(worker.stop, 10_000)
        print(
            f"{name:9} {messages} messages: sent at {messages / sent:,.0f}/s, "
            f"processed at {messages / took:,.0f}/s ({took:.2f} s, {threads} threads)"
        )
    finally:
        if name == "rabbitmq":
            for suffix in ("", ".DQ", ".XQ"):
                broker.channel.queue_delete(QUEUE + suffix)  # type: ignore[attr-defined]
        brokers.uninstall(broker)


async def main(args: argparse.Namespace) -> None:
    print(machine())
    async with throwaway_database("workers") as url, bench_engine(url) as engine:
        slug = "bench_noop"
        await clone_tenants(url, engine, [slug])
        assert await find_tenant(slug) is not None
        await measure("postgres", url, slug, args.messages, args.threads)
        rabbit = os.environ.get("BROKER_URL", "")
        rabbit = rabbit if rabbit.startswith("amqp") else "amqp://guest:guest@127.0.0.1:5672/"
        try:
            await measure("rabbitmq", rabbit, slug, args.messages, args.threads)
        except Exception as exc:  # no RabbitMQ here: say so and go on
            print(f"rabbitmq  skipped: {exc}")
    print(machine())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
