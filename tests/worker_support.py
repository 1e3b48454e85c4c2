"""Real brokers and in-process Dramatiq workers for the worker tests.

The Postgres broker runs on the session's own database; RabbitMQ is the machine's
(`BROKER_URL` when it names one, else the local default), skipped visibly when nothing
listens on its port. Test actors use queues named for this session, deleted afterwards,
so parallel runs on the same RabbitMQ never take each other's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import dramatiq
import pytest
from dramatiq import Broker, Worker
from dramatiq.common import dq_name, xq_name

from workers import broker as brokers
from workers.runtime import lend_loop

DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"
SESSION_TAG = f"{os.getpid()}_{secrets.token_hex(3)}"


def private_queue(name: str) -> str:
    """A queue name private to this test session."""
    return f"test_{name}_{SESSION_TAG}"


def rabbitmq_url() -> str:
    url = os.environ.get("BROKER_URL", "")
    return url if url.startswith("amqp") else DEFAULT_RABBITMQ


def rabbitmq_listening(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5672), 2):
            return True
    except OSError:
        return False


def broker_url(kind: str, database_url: str) -> str:
    if kind == "postgres":
        return database_url
    url = rabbitmq_url()
    if not rabbitmq_listening(url):
        pytest.skip(f"RabbitMQ is not listening at {urlparse(url).netloc}; start it to run this")
    return url


@contextlib.asynccontextmanager
async def installed_broker(url: str, queues: list[str]) -> AsyncIterator[Broker]:
    """A fresh broker for `url`, installed for the test, with the test's queues emptied."""
    broker = await asyncio.to_thread(brokers.make_broker, url)
    brokers.install(broker)
    try:
        yield broker
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_delete_queues, broker, queues)
        brokers.uninstall(broker)


def _delete_queues(broker: Broker, queues: list[str]) -> None:
    names = [n for q in queues for n in (q, dq_name(q), xq_name(q))]
    if type(broker).__name__ == "RabbitmqBroker":
        for name in names:
            broker.channel.queue_delete(name)
    else:
        with broker.pool.connection() as conn:  # type: ignore[attr-defined]
            conn.execute("DELETE FROM dramatiq.queue WHERE queue_name = ANY(%s)", (names,))


@contextlib.asynccontextmanager
async def running_worker(
    broker: Broker, queues: list[str], *, threads: int = 1
) -> AsyncIterator[Worker]:
    """An in-process worker on `queues`, whose coroutines run on the test's event loop."""
    with lend_loop(asyncio.get_running_loop()):
        worker = Worker(broker, queues=set(queues), worker_threads=threads, worker_timeout=100)
        await asyncio.to_thread(worker.start)
        try:
            yield worker
        finally:
            # Never block the loop: a worker thread may be waiting on it.
            await asyncio.to_thread(worker.stop, 10_000)


async def eventually(
    check: Callable[[], Any], *, timeout: float = 15.0, every: float = 0.02
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Still false after {timeout} s: {check}")
        await asyncio.sleep(every)


def dead_letters(broker: Broker, queue: str) -> int:
    """How many messages of `queue` were rejected for good (failed, not retried)."""
    if type(broker).__name__ == "RabbitmqBroker":
        declared = broker.channel.queue_declare(xq_name(queue), passive=True)
        return int(declared.method.message_count)
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s AND state = 'rejected'",
            (queue,),
        ).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def bare_broker(url: str) -> Iterator[Broker]:
    """A broker of the same kind without Renshi's middleware: a producer that forgets the
    tenant, as a foreign or buggy sender would."""
    if url.startswith("amqp"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker: Broker = RabbitmqBroker(url=url)
    else:
        from dramatiq_postgres import PostgresBroker

        broker = PostgresBroker(url=url, schema=brokers.QUEUE_SCHEMA, results=False)
    try:
        yield broker
    finally:
        broker.close()


def raw_message(actor_name: str, queue: str, *args: Any, **options: Any) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name=queue, actor_name=actor_name, args=args, kwargs={}, options=options
    )
