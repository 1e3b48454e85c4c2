"""The scheduler: periodic work, fanned out per tenant, from one active instance.

APScheduler keeps the clock; a PostgreSQL advisory lock, held on a connection of its own,
makes one instance the active one. The others wait and poll for the lock; when the active
instance dies its connection closes, the lock is released, and the next poll of another
instance takes over. An instance that loses its connection stops scheduling at once.
PostgreSQL scopes advisory locks to the database, so each database (each deployment) on
a server has its own active scheduler.

Every hour on the hour, each active tenant gets a `reminders.scan` message with the
instant of the run: the scan judges each branch on its own local calendar
(`domain.reminders.run_date`), so "09:00 local" needs no job per time zone and a
missed hour is caught up by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from dramatiq import Broker
from sqlalchemy import text

from tenants.database import get_engine
from tenants.registry import list_tenants
from workers.jobs import record_schedule_run
from workers.reminders import scan
from workers.risk import rescore_all

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock whose holder is the active scheduler.
LEADER_LOCK_KEY = 7_362_821_005
HOURLY = CronTrigger(minute=0, timezone=dt.UTC)
# 02:30 in China (UTC+8), where most tenants are: each tenant scores as of its own today.
NIGHTLY = CronTrigger(hour=18, minute=30, timezone=dt.UTC)


async def fan_out_reminders(at: dt.datetime | None = None) -> int:
    """Ask every active tenant to scan for reminders at `at` (default: now)."""
    instant = (at or dt.datetime.now(dt.UTC)).isoformat()
    tenants = [t for t in await list_tenants() if t.is_active]

    def send() -> None:
        for tenant in tenants:
            scan.send_with_options(kwargs={"at": instant}, tenant=tenant.slug)

    await asyncio.to_thread(send)
    log.info("Asked %d tenant(s) to scan for reminders at %s.", len(tenants), instant)
    await record_schedule_run("reminders", dt.datetime.fromisoformat(instant), len(tenants))
    return len(tenants)


async def fan_out_risk_scoring(at: dt.datetime | None = None) -> int:
    """Ask every active tenant to re-score every employee's advance risk."""
    instant = at or dt.datetime.now(dt.UTC)
    tenants = [t for t in await list_tenants() if t.is_active]

    def send() -> None:
        for tenant in tenants:
            rescore_all.send_with_options(tenant=tenant.slug)

    await asyncio.to_thread(send)
    log.info("Asked %d tenant(s) to re-score advance risk.", len(tenants))
    await record_schedule_run("risk", instant, len(tenants))
    return len(tenants)


# Each job fans one actor out to every active tenant; `renshi jobs status` lists them.
SCHEDULES: dict[str, tuple[CronTrigger, Callable[[], Awaitable[int]]]] = {
    "reminders": (HOURLY, fan_out_reminders),
    "risk": (NIGHTLY, fan_out_risk_scoring),
}


def build_scheduler() -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    for job, (trigger, fan_out) in SCHEDULES.items():
        scheduler.add_job(
            fan_out,
            trigger,
            id=job,
            coalesce=True,  # after a pause, one catch-up run rather than one per missed one
            misfire_grace_time=3600,
            max_instances=1,
        )
    return scheduler


class Leadership:
    """Whether this instance holds the scheduler lock (for tests and status)."""

    def __init__(self) -> None:
        self.leading = asyncio.Event()
        self.terms = 0


async def run_scheduler(
    stop: asyncio.Event, leadership: Leadership | None = None, *, poll: float = 5.0
) -> None:
    """Wait for the lock, schedule while holding it, and give it up when `stop` is set."""
    leadership = leadership or Leadership()
    while not stop.is_set():
        try:
            async with get_engine().connect() as conn:
                held = await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
                )
                await conn.commit()
                if not held:
                    await _wait(stop, poll)
                    continue
                await _lead(conn, stop, leadership, poll)
        except Exception:
            log.warning("The scheduler lost its database connection; will retry.", exc_info=True)
            await _wait(stop, poll)


async def _lead(conn: object, stop: asyncio.Event, leadership: Leadership, poll: float) -> None:
    scheduler = build_scheduler()
    scheduler.start()
    leadership.terms += 1
    leadership.leading.set()
    log.info("This scheduler is the active one.")
    try:
        while not stop.is_set():
            await _wait(stop, poll)
            # Raises when the connection, and with it the lock, is gone.
            await conn.execute(text("SELECT 1"))  # type: ignore[attr-defined]
            await conn.commit()  # type: ignore[attr-defined]
    finally:
        leadership.leading.clear()
        scheduler.shutdown(wait=False)
        log.info("This scheduler stopped scheduling.")


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def run() -> int:
    """Entry point of `renshi scheduler` (and of the process `renshi worker` forks)."""
    from renshi.cli import load_models
    from renshi.database import setup_engine
    from workers import actors
    from workers import broker as brokers

    load_models()
    actors.import_all()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it narrates every job

    async def main() -> None:
        setup_engine()
        broker: Broker = brokers.install(brokers.make_broker(brokers.configured_url()))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("The scheduler is running (PID %d).", os.getpid())
        try:
            await run_scheduler(stop)
        finally:
            broker.close()

    asyncio.run(main())
    return 0
