"""Keeping `renshi worker`'s group whole: a dead fork process stops the whole group.

Dramatiq's command line watches its worker processes only: when one dies it stops the
others and exits non-zero, so that a supervisor (systemd, Kubernetes) restarts the
group. Its fork processes (the outbox relay and the scheduler here) may die unnoticed,
and the group would go on without them. `ForkWatch`, a thread of the main process, gives
them the same treatment: a fork that exits with a non-zero code (a crash, `kill -9`)
is logged and the main process is sent SIGTERM, which stops the group the usual,
graceful way; `renshi worker` then exits non-zero.

A fork that exits with code 0 was stopped on purpose (by the group's own shutdown).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import threading
from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)

# multiprocessing names children `Process-<n>`, n counting up in order of creation.
_NUMBER = re.compile(r"-(\d+)$")


class ForkWatch(threading.Thread):
    """Watches the fork processes that Dramatiq starts, and stops the group if one dies.

    `forks` names the fork processes in the order they are passed to Dramatiq, which
    starts them in that order after its `workers` worker processes.
    """

    def __init__(self, forks: list[str], workers: int, *, every: float = 0.5) -> None:
        super().__init__(name="fork-watch", daemon=True)
        self.forks = forks
        self.workers = workers
        self.every = every
        self.died: tuple[str, int] | None = None  # (name, exit code) of the fork that died
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        watched: dict[int, BaseProcess] = {}
        while not self._stop_event.wait(self.every):
            # Fork processes are the main process's daemonic children (workers are not).
            for child in multiprocessing.active_children():
                if child.daemon and child.pid is not None:
                    watched.setdefault(child.pid, child)
            for pid, child in watched.items():
                code = child.exitcode
                if code is None or code == 0:
                    continue
                self.died = (self.name_of(child), code)
                log.critical(
                    "%s (PID %d) exited unexpectedly (code %d): stopping the worker group.",
                    self.died[0],
                    pid,
                    code,
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def name_of(self, child: BaseProcess) -> str:
        found = _NUMBER.search(child.name)
        index = int(found.group(1)) - self.workers - 1 if found else -1
        if 0 <= index < len(self.forks):
            return self.forks[index]
        return "A fork process"
