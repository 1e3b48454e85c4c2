"""`renshi worker` as a process, started and stopped the way `make run` does it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from renshi.cli import _start_worker_process, _stop_worker_process
from renshi.settings import get_settings
from tests.conftest import make_tenant
from tests.worker_support import eventually, installed_broker
from workers.system import noop

RENSHI = Path(sys.executable).with_name("renshi")


@pytest.fixture
def worker_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The database of this session, and no BROKER_URL: the Postgres broker on it."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BROKER_URL", raising=False)
    monkeypatch.delenv("RENSHI_BROKER_URL", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "renshi-pycache"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def pending(broker: object, queue: str) -> int:
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s AND state <> 'rejected'",
            (queue,),
        ).fetchone()
    return int(row[0])


async def test_the_worker_process_runs_messages_and_stops_cleanly_when_asked(
    worker_env: None, database_url: str, engine: AsyncEngine
) -> None:
    tenant = (await make_tenant(engine)).tenant
    async with installed_broker(database_url, []) as broker:
        process = _start_worker_process()
        try:
            for _ in range(3):
                noop.send_with_options(tenant=tenant.slug)

            await eventually(lambda: pending(broker, noop.queue_name) == 0, timeout=60)
        finally:
            await asyncio.to_thread(_stop_worker_process, process)

    assert process.returncode == 0
    assert os.environ.get("BROKER_URL") is None


async def test_a_killed_relay_stops_the_whole_worker_group_with_a_clear_line(
    worker_env: None,
) -> None:
    command = [str(RENSHI), "worker", "--threads", "1", "--shutdown-timeout", "5"]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    lines: list[str] = []
    reading = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
    reading.start()
    try:
        relay_pid = await eventually(
            lambda: _pid_of("The outbox relay is running", lines), timeout=60
        )
        os.kill(relay_pid, signal.SIGKILL)
        code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reading.join(5)

    assert code == 1
    said = "\n".join(lines)
    assert (
        f"The outbox relay (PID {relay_pid}) exited unexpectedly (code -9):"
        " stopping the worker group." in said
    )
    assert "The outbox relay died (code -9); the worker group stopped." in said


def _read_lines(process: subprocess.Popen[bytes], lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line.decode(errors="replace").rstrip())


def _pid_of(announcement: str, lines: list[str]) -> int | None:
    for line in list(lines):
        found = re.search(re.escape(announcement) + r" \(PID (\d+)\)", line)
        if found:
            return int(found.group(1))
    return None
