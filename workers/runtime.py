"""The event loop that runs the workers' coroutines.

Dramatiq calls actors on plain worker threads, while Renshi's database code is asyncio.
Each worker process runs one event loop on a thread of its own (the `EventLoop`
middleware starts it at worker boot); actors and middleware hand their coroutines to it
with `run` and wait for the result. The process-wide engine's connections belong to that
loop. Tests lend their own running loop instead (`lend_loop`), so the session's engine
keeps serving them.

A coroutine handed over here does not inherit the calling thread's context variables: an
asyncio task copies the context of the loop's thread. `workers.actors` therefore carries
the tenant across explicitly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, Protocol, TypeVar

from dramatiq import Broker, Middleware, Worker
from dramatiq.asyncio import EventLoopThread
from dramatiq.middleware import Interrupt

log = logging.getLogger(__name__)

T = TypeVar("T")


class CoroutineRunner(Protocol):
    def run_coroutine(self, coro: Coroutine[Any, Any, T]) -> T: ...


class LentLoop:
    """Runs coroutines on a loop that someone else runs (a test's)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run_coroutine(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            while True:
                # A short wait keeps the thread responsive to Dramatiq's asynchronous
                # interrupts (time limits, shutdown).
                try:
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    if future.done():
                        return future.result(timeout=0)
        except Interrupt:
            future.cancel()
            raise


_runner: CoroutineRunner | None = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the worker's event loop and wait for its result (from a worker thread)."""
    if _runner is None:
        coro.close()
        raise RuntimeError("No event loop runs the workers' coroutines; is the worker started?")
    return _runner.run_coroutine(coro)


@contextlib.contextmanager
def lend_loop(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Let in-process workers run their coroutines on `loop`, which the caller keeps running.

    The caller must not block `loop` while a worker waits on it: stop workers with
    `await asyncio.to_thread(worker.stop)`.
    """
    global _runner
    previous, _runner = _runner, LentLoop(loop)
    try:
        yield
    finally:
        _runner = previous


class EventLoop(Middleware):
    """Starts the worker process's event loop thread at boot and stops it at shutdown,
    unless a loop was lent (tests)."""

    def __init__(self) -> None:
        self._thread: EventLoopThread | None = None

    def before_worker_boot(self, broker: Broker, worker: Worker) -> None:
        global _runner
        if _runner is not None:
            return
        self._thread = EventLoopThread(log)
        # A daemon, so that a worker told to die at once (a second SIGTERM) really exits.
        self._thread.daemon = True
        self._thread.start(timeout=5.0)
        _runner = self._thread

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        global _runner
        if self._thread is None:
            return
        from tenants.database import dispose_engine

        # The pool's connections belong to this loop: close them before it stops.
        with contextlib.suppress(Exception):
            self._thread.run_coroutine(dispose_engine())
        self._thread.stop()
        self._thread = None
        _runner = None
