"""What background work did, for operators: `renshi jobs status`.

Three records in the shared schema, written as the work happens:

- `schedule_runs`: each scheduler job's last fan-out and how many tenants it reached
  (`schedule_slots` keeps every run, one per fire time, for the scheduler itself);
- `job_runs`: per tenant, the last outcome of each scheduled actor (did tenant X's
  reminder scan run this hour, and did it succeed?);
- `failed_messages`: every message that failed for good (retries exhausted or a
  permanent failure), with its tenant and error.

The `JobLedger` middleware writes the last two from the worker. Only scheduled actors get
a `job_runs` row on success: recording every message would cost a write per message.
Queue depths come from the broker itself, and per tenant from the outbox (rows waiting
for the relay) and, on the Postgres broker, from the queue table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.common import dq_name, xq_name
from sqlalchemy import BigInteger, DateTime, Identity, Integer, String, Text, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from tenants.binding import shared_session
from tenants.context import Tenant
from tenants.metadata import SharedBase
from tenants.registry import find_tenant, list_tenants
from tenants.slugs import quote_ident, schema_for
from workers import runtime
from workers.middleware import TENANT_OPTION

log = logging.getLogger(__name__)

# Actors the scheduler sends; their every outcome is recorded per tenant.
SCHEDULED_ACTORS: set[str] = set()
# How far back `jobs status` counts failed messages.
FAILURE_WINDOW = dt.timedelta(days=7)
MAX_ERROR_CHARS = 2_000
# What `renshi jobs status` shows for the failures of messages that named no tenant.
NO_TENANT = "—"


class ScheduleRun(SharedBase):
    __tablename__ = "schedule_runs"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    tenants: Mapped[int] = mapped_column(Integer)
    runs: Mapped[int] = mapped_column(BigInteger, default=1)


class ScheduleSlot(SharedBase):
    """One run of a scheduler job: the job at one fire time, recorded by the instance that
    fanned it out (see `workers.scheduler`)."""

    __tablename__ = "schedule_slots"

    job: Mapped[str] = mapped_column(String(64), primary_key=True)
    fire_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    ran_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    tenants: Mapped[int | None] = mapped_column(Integer)


class JobRun(SharedBase):
    __tablename__ = "job_runs"

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str] = mapped_column(String(8))
    last_error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(BigInteger, default=0)


class FailedMessage(SharedBase):
    __tablename__ = "failed_messages"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None]
    actor: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(100))
    message_id: Mapped[str] = mapped_column(String(64))
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# --- writing ---------------------------------------------------------------------------


async def record_schedule_run(job: str, at: dt.datetime, tenants: int) -> None:
    """Note that the scheduler fanned `job` out to `tenants` tenants at `at`."""
    statement = insert(ScheduleRun).values(job=job, last_run_at=at, tenants=tenants, runs=1)
    statement = statement.on_conflict_do_update(
        index_elements=[ScheduleRun.job],
        set_={
            "last_run_at": statement.excluded.last_run_at,
            "tenants": statement.excluded.tenants,
            "runs": ScheduleRun.runs + 1,
        },
    )
    async with shared_session() as session:
        await session.execute(statement)


async def record_outcome(
    slug: str | None,
    actor: str,
    queue: str,
    message_id: str,
    error: str | None,
    failed_for_good: bool,
) -> None:
    """Record one message's outcome: a scheduled actor's run, a message lost for good."""
    tenant = await find_tenant(slug) if slug else None
    tenant_id = tenant.id if tenant else None
    error = error[:MAX_ERROR_CHARS] if error else None
    async with shared_session() as session:
        if (
            actor in SCHEDULED_ACTORS
            and tenant_id is not None
            and (error is None or failed_for_good)
        ):
            await session.execute(_job_run_upsert(tenant_id, actor, error))
        if failed_for_good:
            session.add(
                FailedMessage(
                    tenant_id=tenant_id,
                    actor=actor,
                    queue=queue,
                    message_id=message_id,
                    error=error or "failed",
                )
            )


def _job_run_upsert(tenant_id: uuid.UUID, actor: str, error: str | None) -> Any:
    failed = error is not None
    statement = insert(JobRun).values(
        tenant_id=tenant_id,
        actor=actor,
        last_finished_at=func.now(),
        last_status="failed" if failed else "ok",
        last_error=error,
        runs=1,
        failures=int(failed),
    )
    return statement.on_conflict_do_update(
        index_elements=[JobRun.tenant_id, JobRun.actor],
        set_={
            "last_finished_at": statement.excluded.last_finished_at,
            "last_status": statement.excluded.last_status,
            "last_error": statement.excluded.last_error,
            "runs": JobRun.runs + 1,
            "failures": JobRun.failures + statement.excluded.failures,
        },
    )


class JobLedger(Middleware):
    """Records scheduled actors' runs and messages that failed for good.

    It must come before `Retries` in the middleware list: Dramatiq calls the `after_`
    hooks in reverse order, and only once `Retries` has run does a message know whether
    it failed for good.
    """

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        failed_for_good = bool(message.failed)
        if exception is None and message.actor_name not in SCHEDULED_ACTORS:
            return
        if exception is not None and not failed_for_good:
            return  # it will be retried; its final outcome is recorded then
        error = None if exception is None else f"{type(exception).__name__}: {exception}"
        try:
            runtime.run(
                record_outcome(
                    message.options.get(TENANT_OPTION),
                    message.actor_name,
                    message.queue_name,
                    message.message_id,
                    error,
                    failed_for_good,
                )
            )
        except Exception:
            # Book-keeping must never turn a processed message into a failed one.
            log.warning("Could not record the outcome of %s.", message.message_id, exc_info=True)


# --- reading -----------------------------------------------------------------------------


@dataclasses.dataclass
class QueueDepth:
    queue: str
    ready: int
    delayed: int
    dead: int


@dataclasses.dataclass
class TenantJobs:
    slug: str
    status: str
    outbox_waiting: int = 0
    outbox_stuck: int = 0
    queued: int | None = None  # messages in the broker (Postgres broker only)
    failed_recently: int = 0
    last_failure: str | None = None
    last_runs: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ScheduleStatus:
    job: str
    trigger: str
    last_run_at: dt.datetime | None
    last_tenants: int | None
    runs: int
    next_run_at: dt.datetime | None


@dataclasses.dataclass
class JobsStatus:
    broker: str
    schedules: list[ScheduleStatus]
    queues: list[QueueDepth]
    tenants: list[TenantJobs]
    # Messages that failed for good naming no tenant (or one unknown): refused ones.
    no_tenant: TenantJobs | None = None

    def as_json(self) -> dict[str, Any]:
        jsonable: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return jsonable


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


async def jobs_status(
    broker_url: str,
    schedules: dict[str, Any],
    queues: list[str],
    now: dt.datetime | None = None,
) -> JobsStatus:
    """Everything `renshi jobs status` shows. `schedules` maps job ids to their triggers,
    `queues` names the actors' queues.

    It only reads: the broker's queues are counted without declaring them (RabbitMQ) and
    without creating the queue tables (Postgres); a queue that does not exist is empty.
    """
    from workers.broker import POSTGRES, kind_of

    now = now or dt.datetime.now(dt.UTC)
    tenants = await list_tenants()
    report = {t.id: TenantJobs(slug=t.slug, status=t.status) for t in tenants}

    await _add_outbox_backlog(tenants, report)
    no_tenant = TenantJobs(slug=NO_TENANT, status=NO_TENANT)
    await _add_failures(report, no_tenant, now - FAILURE_WINDOW)
    await _add_last_runs(report)
    if kind_of(broker_url) == POSTGRES:
        broker = "PostgresBroker"
        depths = await asyncio.to_thread(_postgres_counts, broker_url, queues, report)
    else:
        broker = "RabbitmqBroker"
        depths = await asyncio.to_thread(_rabbitmq_depths, broker_url, queues)

    return JobsStatus(
        broker=broker,
        schedules=await _schedule_statuses(schedules, now),
        queues=depths,
        tenants=sorted(report.values(), key=lambda t: t.slug),
        no_tenant=no_tenant if no_tenant.failed_recently else None,
    )


async def _schedule_statuses(schedules: dict[str, Any], now: dt.datetime) -> list[ScheduleStatus]:
    async with shared_session() as session:
        recorded = {run.job: run for run in await session.scalars(select(ScheduleRun))}
    statuses = []
    for job, trigger in sorted(schedules.items()):
        run = recorded.get(job)
        statuses.append(
            ScheduleStatus(
                job=job,
                trigger=str(trigger),
                last_run_at=run.last_run_at if run else None,
                last_tenants=run.tenants if run else None,
                runs=run.runs if run else 0,
                next_run_at=trigger.get_next_fire_time(None, now),
            )
        )
    return statuses


async def _add_outbox_backlog(tenants: list[Tenant], report: dict[uuid.UUID, TenantJobs]) -> None:
    """Unsent outbox rows of every tenant, in one statement over all their schemas."""
    from workers.relay import MAX_ATTEMPTS

    async with shared_session() as session:
        migrated = set(
            await session.scalars(
                text(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox'"
                )
            )
        )
    # A tenant being created or dropped may have no schema yet, or none any more.
    tenants = [t for t in tenants if schema_for(t.slug) in migrated]
    if not tenants:
        return
    parts = [
        f"SELECT CAST('{t.id}' AS uuid) AS tenant_id,"
        f" count(*) FILTER (WHERE attempts < {MAX_ATTEMPTS}) AS waiting,"
        f" count(*) FILTER (WHERE attempts >= {MAX_ATTEMPTS}) AS stuck"
        f" FROM {quote_ident(schema_for(t.slug))}.outbox WHERE sent_at IS NULL"
        for t in tenants
    ]
    async with shared_session() as session:
        rows = await session.execute(text(" UNION ALL ".join(parts)))
        for tenant_id, waiting, stuck in rows:
            report[tenant_id].outbox_waiting = waiting
            report[tenant_id].outbox_stuck = stuck


async def _add_failures(
    report: dict[uuid.UUID, TenantJobs], no_tenant: TenantJobs, since: dt.datetime
) -> None:
    """Each tenant's recent failures (count and latest), and those of no tenant."""
    latest = (
        select(
            FailedMessage.tenant_id,
            func.count().label("failures"),
            func.max(FailedMessage.id).label("latest"),
        )
        .where(FailedMessage.failed_at >= since)
        .group_by(FailedMessage.tenant_id)
        .subquery()
    )
    query = select(latest.c.tenant_id, latest.c.failures, FailedMessage).join(
        FailedMessage, FailedMessage.id == latest.c.latest
    )
    async with shared_session() as session:
        for tenant_id, failures, message in await session.execute(query):
            entry = report.get(tenant_id) if tenant_id is not None else no_tenant
            if entry is not None:
                entry.failed_recently = failures
                entry.last_failure = f"{message.actor}: {message.error}"


async def _add_last_runs(report: dict[uuid.UUID, TenantJobs]) -> None:
    async with shared_session() as session:
        for run in await session.scalars(select(JobRun)):
            if run.tenant_id in report:
                report[run.tenant_id].last_runs[run.actor] = {
                    "finished_at": run.last_finished_at,
                    "status": run.last_status,
                    "error": run.last_error,
                    "runs": run.runs,
                    "failures": run.failures,
                }


def _rabbitmq_depths(url: str, queues: list[str]) -> list[QueueDepth]:
    """Each queue's messages: ready, delayed (its `.DQ`) and dead (its `.XQ`), read with
    passive declarations, which never create a queue."""
    from pika.exceptions import ChannelClosedByBroker

    from workers.broker import rabbitmq_connection

    connection = rabbitmq_connection(url)
    try:
        channel = connection.channel()

        def count(name: str) -> int:
            nonlocal channel
            try:
                return int(channel.queue_declare(name, passive=True).method.message_count)
            except ChannelClosedByBroker:  # 404: no such queue, so nothing in it
                channel = connection.channel()
                return 0

        return [QueueDepth(q, count(q), count(dq_name(q)), count(xq_name(q))) for q in queues]
    finally:
        connection.close()


def _postgres_counts(
    url: str, queues: list[str], report: dict[uuid.UUID, TenantJobs]
) -> list[QueueDepth]:
    """Each queue's messages, and each tenant's waiting ones (the queue is a table there).
    Without the queue table (no worker ever ran) every queue is empty."""
    from workers.broker import QUEUE_SCHEMA, postgres_connection

    depth = {q: QueueDepth(q, 0, 0, 0) for q in queues}
    table = f"{quote_ident(QUEUE_SCHEMA)}.queue"
    with postgres_connection(url) as conn:
        if conn.execute("SELECT to_regclass(%s)", (f"{QUEUE_SCHEMA}.queue",)).fetchone()[0]:
            rows = conn.execute(
                f"SELECT queue_name, state::text, available_at > now(), count(*)"
                f" FROM {table} GROUP BY 1, 2, 3"
            ).fetchall()
            for queue, state, later, count in rows:
                name = queue.removesuffix(".DQ").removesuffix(".XQ")
                entry = depth.setdefault(name, QueueDepth(name, 0, 0, 0))
                if state == "rejected":
                    entry.dead += count
                elif state == "queued" and (later or queue.endswith(".DQ")):
                    entry.delayed += count
                elif state == "queued":
                    entry.ready += count
            waiting = dict(
                conn.execute(
                    f"SELECT message->'options'->>'{TENANT_OPTION}', count(*)"
                    f" FROM {table} WHERE state = 'queued' GROUP BY 1"
                ).fetchall()
            )
        else:
            waiting = {}
    for tenant in report.values():
        tenant.queued = waiting.get(tenant.slug, 0)
    return sorted(depth.values(), key=lambda d: d.queue)
