"""The scheduler: periodic work, fanned out per tenant, from one active instance.

APScheduler keeps the clock; a PostgreSQL advisory lock, held on a connection of its own,
makes one instance the active one. The others wait and poll for the lock; when the active
instance dies its connection closes, the lock is released, and the next poll of another
instance takes over. An instance that loses its connection stops scheduling at once.
PostgreSQL scopes advisory locks to the database, so each database (each deployment) on
a server has its own active scheduler.

Each run of a job (a slot: the job at one fire time) is recorded in `schedule_slots`
before it is fanned out, on the connection that holds the lock, in a transaction that
commits once the fan-out is done. So a slot is fanned out by one instance only, never by
an instance that lost the lock and has not noticed yet; and an instance that becomes the
active one catches up each job's latest slot that nobody ran (within the job's period):
the 08:00 run that a leader killed at 07:59:57 never made is run by the one taking over
at 08:00:02.

Every hour on the hour, each active tenant gets a `reminders.scan` message with the
instant of the run: the scan judges each branch on its own local calendar
(`domain.reminders.run_date`), so "09:00 local" needs no job per time zone, and the
reminders of a local day that no scan reached go out at the next scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from dramatiq import Broker
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tenants.database import get_engine
from tenants.registry import list_tenants
from workers.jobs import ScheduleSlot, record_schedule_run
from workers.reminders import scan
from workers.risk import rescore_all

log = logging.getLogger(__name__)

# Arbitrary but fixed: the advisory lock whose holder is the active scheduler.
LEADER_LOCK_KEY = 7_362_821_005
HOURLY = CronTrigger(minute=0, timezone=dt.UTC)
# 02:30 in China (UTC+8), where most tenants are: each tenant scores as of its own today.
NIGHTLY = CronTrigger(hour=18, minute=30, timezone=dt.UTC)


async def fan_out_reminders(at: dt.datetime | None = None) -> int:
    """Ask every active tenant to scan for reminders at `at` (the fire time; default now)."""
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


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A job: when it fires, what it fans out (given the fire time), and how late a missed
    run is still caught up (its period)."""

    trigger: CronTrigger
    fan_out: Callable[[dt.datetime], Awaitable[int]]
    period: dt.timedelta

    def latest_fire_time(self, now: dt.datetime) -> dt.datetime | None:
        """The trigger's latest fire time at or before `now`, if it is within one period."""
        latest = None
        fire = self.trigger.get_next_fire_time(None, now - self.period)
        while fire is not None and fire <= now:
            latest = fire
            fire = self.trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
        return latest


# Each job fans one actor out to every active tenant; `renshi jobs status` lists them.
SCHEDULES: dict[str, Schedule] = {
    "reminders": Schedule(HOURLY, fan_out_reminders, dt.timedelta(hours=1)),
    "risk": Schedule(NIGHTLY, fan_out_risk_scoring, dt.timedelta(days=1)),
}


class Leadership:
    """Whether this instance holds the scheduler lock (for tests and status)."""

    def __init__(self) -> None:
        self.leading = asyncio.Event()
        self.terms = 0


class Leader:
    """The active instance's hold on the lock: the connection that holds it.

    Slots are claimed on that very connection, so an instance that lost it (and with it
    the lock) claims nothing, even before its next check notices. The connection serves
    one statement at a time, hence the lock around it.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.busy = asyncio.Lock()

    async def check(self) -> None:
        """Raise if the connection, and with it the lock, is gone."""
        async with self.busy:
            await self.conn.execute(text("SELECT 1"))
            await self.conn.commit()

    async def run_slot(self, job: str, fire: dt.datetime, schedule: Schedule) -> bool:
        """Fan `job` out for `fire` unless some instance did already; True if this one did.

        The slot's row is inserted, the job fanned out, then the row committed: a second
        instance waits on the row and finds it taken, and a slot whose fan-out failed (the
        broker is down) is left free, for the next check to catch up. A death between the
        fan-out and the commit fans the slot out again (at least once): scans and
        re-scores are idempotent per tenant and day. Database errors propagate: the
        connection, and with it the lock, may be gone.
        """
        async with self.busy:
            try:
                if await self._taken(job, fire):
                    return False
                claimed = await self.conn.scalar(
                    insert(ScheduleSlot)
                    .values(job=job, fire_time=fire)
                    .on_conflict_do_nothing()
                    .returning(ScheduleSlot.job)
                )
                if claimed is None:
                    await self.conn.rollback()
                    return False
                try:
                    tenants = await schedule.fan_out(fire)
                except Exception:
                    log.warning(
                        "The %s run of %s failed; it will be tried again.",
                        job,
                        fire.isoformat(),
                        exc_info=True,
                    )
                    await self.conn.rollback()
                    return False
                await self.conn.execute(
                    update(ScheduleSlot)
                    .where(ScheduleSlot.job == job, ScheduleSlot.fire_time == fire)
                    .values(tenants=tenants)
                )
                await self.conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.conn.rollback()
                raise
        return True

    async def _taken(self, job: str, fire: dt.datetime) -> bool:
        """Whether the slot is recorded (a read, so that checking costs no write)."""
        found = await self.conn.scalar(
            select(ScheduleSlot.job).where(ScheduleSlot.job == job, ScheduleSlot.fire_time == fire)
        )
        if found is not None:
            await self.conn.rollback()
        return found is not None

    async def catch_up(
        self, schedules: dict[str, Schedule], now: dt.datetime
    ) -> list[tuple[str, dt.datetime]]:
        """Run each job's latest slot (within its period) that no instance ran: the one a
        dead leader missed, one missed while no instance was active, one that failed."""
        ran = []
        for job, schedule in schedules.items():
            fire = schedule.latest_fire_time(now)
            if fire is not None and await self.run_slot(job, fire, schedule):
                ran.append((job, fire))
        return ran


def build_scheduler(leader: Leader, schedules: dict[str, Schedule]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=dt.UTC)
    for job, schedule in schedules.items():
        scheduler.add_job(
            _fire,
            schedule.trigger,
            args=(leader, job, schedule),
            id=job,
            coalesce=True,  # after a pause, one catch-up run rather than one per missed one
            misfire_grace_time=int(schedule.period.total_seconds()),
            max_instances=1,
        )
    return scheduler


async def _fire(leader: Leader, job: str, schedule: Schedule) -> None:
    """What APScheduler runs at a fire time: that slot (the latest one, when late)."""
    fire = schedule.latest_fire_time(dt.datetime.now(dt.UTC))
    if fire is None:
        return
    try:
        await leader.run_slot(job, fire, schedule)
    except Exception as exc:
        # The connection is gone: the next check ends this instance's term.
        log.warning("Could not run the %s run of %s: %s", job, fire.isoformat(), exc)


async def run_scheduler(
    stop: asyncio.Event,
    leadership: Leadership | None = None,
    *,
    poll: float = 5.0,
    schedules: dict[str, Schedule] | None = None,
) -> None:
    """Wait for the lock, schedule while holding it, and give it up when `stop` is set."""
    leadership = leadership or Leadership()
    schedules = SCHEDULES if schedules is None else schedules
    failures = 0
    while not stop.is_set():
        try:
            async with get_engine().connect() as conn:
                held = await conn.scalar(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LEADER_LOCK_KEY}
                )
                await conn.commit()
                failures = 0
                if not held:
                    await _wait(stop, poll)
                    continue
                await _lead(Leader(conn), stop, leadership, poll, schedules)
        except Exception as exc:
            # One line per attempt, waiting longer each time while the database is away.
            failures += 1
            wait = min(poll * 2 ** (failures - 1), MAX_RETRY_WAIT)
            log.warning(
                "The scheduler cannot use the database (%s); trying again in %.0f s.",
                _reason(exc),
                wait,
            )
            await _wait(stop, wait)


MAX_RETRY_WAIT = 60.0


def _reason(exc: BaseException) -> str:
    """An error in one line: the driver's message rather than SQLAlchemy's wrapping."""
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


async def _lead(
    leader: Leader,
    stop: asyncio.Event,
    leadership: Leadership,
    poll: float,
    schedules: dict[str, Schedule],
) -> None:
    leadership.terms += 1
    leadership.leading.set()
    log.info("This scheduler is the active one.")
    scheduler = build_scheduler(leader, schedules)
    try:
        scheduler.start()
        while not stop.is_set():
            # Also what APScheduler missed (a stalled loop), or a fan-out that failed.
            for job, fire in await leader.catch_up(schedules, dt.datetime.now(dt.UTC)):
                log.info("Caught up the %s run of %s.", job, fire.isoformat())
            await _wait(stop, poll)
            await leader.check()
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
