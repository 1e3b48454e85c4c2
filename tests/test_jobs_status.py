"""`renshi jobs status`: schedules, queue depths, failures and last runs, per tenant."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from dramatiq import Broker
from pika.exceptions import ChannelClosedByBroker
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenants.context import use_tenant
from tenants.registry import list_tenants
from tests.conftest import TenantWithAdmin, make_tenant
from tests.test_cli import Cli
from tests.worker_support import (
    bare_broker,
    broker_url,
    dead_letters,
    eventually,
    installed_broker,
    private_queue,
    rabbitmq_url,
    raw_message,
    running_worker,
)
from workers import scheduler as schedulers
from workers.actors import actor
from workers.broker import rabbitmq_connection
from workers.jobs import QueueDepth, _rabbitmq_depths
from workers.middleware import PermanentFailure
from workers.reminders import QUEUE as REMINDERS_QUEUE

QUEUE = private_queue("jobs")
UTC = dt.UTC


@actor("test.jobs.broken", queue_name=QUEUE)
def broken(reason: str) -> None:
    raise PermanentFailure(reason)


@pytest.fixture(params=["postgres", "rabbitmq"])
async def broker(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Broker]:
    url = broker_url(request.param, database_url)
    async with installed_broker(url, [QUEUE, REMINDERS_QUEUE]) as broker:
        yield broker


async def status_of(cli: Cli, broker: Broker, database_url: str) -> dict[str, Any]:
    url = database_url if type(broker).__name__ == "PostgresBroker" else rabbitmq_url()
    run = await cli("jobs", "status", "--json", BROKER_URL=url)
    assert (run.code, run.err) == (0, "")  # pika narrates nothing
    report: dict[str, Any] = json.loads(run.out)
    return report


def tenant_row(report: dict[str, Any], slug: str) -> dict[str, Any]:
    [row] = [t for t in report["tenants"] if t["slug"] == slug]
    return row


async def test_a_failed_message_is_counted_against_its_tenant_only(
    engine: AsyncEngine, broker: Broker, database_url: str
) -> None:
    healthy, failing = await make_tenant(engine), await make_tenant(engine)
    reason = f"the bank refused account {uuid.uuid4().hex[:8]}"

    with use_tenant(failing.tenant):
        broken.send(reason)
    async with running_worker(broker, [QUEUE]):
        await eventually(lambda: dead_letters(broker, QUEUE) == 1)
        await eventually(lambda: _failures_recorded(engine, failing))

    report = await status_of(Cli(database_url), broker, database_url)

    row = tenant_row(report, failing.tenant.slug)
    assert row == {
        "slug": failing.tenant.slug,
        "status": "active",
        "outbox_waiting": 0,
        "outbox_stuck": 0,
        # Only the Postgres broker can count a tenant's messages waiting in the broker.
        "queued": 0 if type(broker).__name__ == "PostgresBroker" else None,
        "failed_recently": 1,
        "last_failure": f"test.jobs.broken: PermanentFailure: {reason}",
        "last_runs": {},
    }
    assert tenant_row(report, healthy.tenant.slug)["failed_recently"] == 0
    assert tenant_row(report, healthy.tenant.slug)["last_failure"] is None
    assert report["broker"] == type(broker).__name__
    queues = {q["queue"] for q in report["queues"]}
    assert {"default", "events", "notifications", "reminders"} <= queues


async def _failures_recorded(engine: AsyncEngine, tenant: TenantWithAdmin) -> bool:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM shared.failed_messages WHERE tenant_id = :id"),
            {"id": tenant.tenant.id},
        )
    return count == 1


async def test_the_schedule_and_each_tenants_last_scan_are_shown(
    engine: AsyncEngine, database_url: str
) -> None:
    tenant = await make_tenant(engine)
    at = dt.datetime(2027, 6, 1, 1, tzinfo=UTC)

    async with installed_broker(database_url, [REMINDERS_QUEUE]) as broker:
        sent = await schedulers.fan_out_reminders(at)
        async with running_worker(broker, [REMINDERS_QUEUE], threads=2):
            await eventually(lambda: _scanned(engine, tenant), timeout=60)
        report = await status_of(Cli(database_url), broker, database_url)

    jobs = {schedule["job"]: schedule for schedule in report["schedules"]}
    assert list(jobs) == ["reminders", "risk"]
    schedule = jobs["reminders"]
    assert schedule["last_run_at"] == at.isoformat()
    assert schedule["last_tenants"] == sent == len([t for t in await list_tenants() if t.is_active])
    next_run = dt.datetime.fromisoformat(schedule["next_run_at"])
    assert next_run.minute == 0 and next_run.second == 0
    assert dt.timedelta(0) < next_run - dt.datetime.now(UTC) <= dt.timedelta(hours=1)

    scan = tenant_row(report, tenant.tenant.slug)["last_runs"]["reminders.scan"]
    assert scan["status"] == "ok"
    assert scan["error"] is None
    assert scan["runs"] == 1
    finished = dt.datetime.fromisoformat(scan["finished_at"])
    assert dt.datetime.now(UTC) - finished < dt.timedelta(minutes=5)


async def _scanned(engine: AsyncEngine, tenant: TenantWithAdmin) -> bool:
    async with engine.connect() as conn:
        status = await conn.scalar(
            text(
                "SELECT last_status FROM shared.job_runs"
                " WHERE tenant_id = :id AND actor = 'reminders.scan'"
            ),
            {"id": tenant.tenant.id},
        )
    return status == "ok"


async def test_the_table_names_every_tenant_and_exits_cleanly(
    engine: AsyncEngine, database_url: str
) -> None:
    tenant = await make_tenant(engine)

    run = await Cli(database_url)("jobs", "status", BROKER_URL=database_url)

    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "Schedules"
    assert lines[1].split() == ["job", "last", "run", "tenants", "runs", "next", "run"]
    assert any(line.split()[:2] == [tenant.tenant.slug, "active"] for line in lines)
    assert "Queues (PostgresBroker)" in lines


async def test_a_message_refused_for_naming_no_tenant_is_shown_under_a_dash(
    engine: AsyncEngine, broker: Broker, database_url: str
) -> None:
    url = database_url if type(broker).__name__ == "PostgresBroker" else rabbitmq_url()
    orphan = raw_message("test.jobs.broken", QUEUE, "no tenant")

    async with running_worker(broker, [QUEUE]):
        with bare_broker(url) as foreign:
            foreign.enqueue(orphan)
        await eventually(lambda: dead_letters(broker, QUEUE) == 1)
        await eventually(lambda: _recorded_without_tenant(engine, orphan.message_id))

    report = await status_of(Cli(database_url), broker, database_url)
    table = await Cli(database_url)("jobs", "status", BROKER_URL=url)

    refusal = (
        f"test.jobs.broken: TenantRequired: Message {orphan.message_id} for the tenant-scoped"
        " actor 'test.jobs.broken' names no tenant; it is refused."
    )
    assert report["no_tenant"]["slug"] == "—"
    assert report["no_tenant"]["failed_recently"] >= 1
    assert report["no_tenant"]["last_failure"] == refusal
    assert all(row["slug"] != "—" for row in report["tenants"])
    lines = table.out.splitlines()
    assert any(line.split()[:2] == ["—", "—"] for line in lines)
    assert f"  —: last failure: {refusal}" in lines


async def _recorded_without_tenant(engine: AsyncEngine, message_id: str) -> bool:
    async with engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM shared.failed_messages"
                " WHERE tenant_id IS NULL AND message_id = :id"
            ),
            {"id": message_id},
        )
    return count == 1


async def test_jobs_status_only_reads_it_declares_no_queue_and_creates_no_table(
    database_url: str,
) -> None:
    # A database just migrated, on which no worker ever ran: no queue tables yet.
    fresh = make_url(database_url).set(database=f"renshi_jobs_{uuid.uuid4().hex[:8]}")
    fresh_url = fresh.render_as_string(hide_password=False)
    admin = await asyncpg.connect(_dsn(database_url))
    await admin.execute(f'CREATE DATABASE "{fresh.database}"')
    try:
        migrated = await Cli(fresh_url)("tenants", "migrate")
        assert migrated.code == 0, migrated.err
        run = await Cli(fresh_url)("jobs", "status", "--json", BROKER_URL=fresh_url)
        conn = await asyncpg.connect(_dsn(fresh_url))
        try:
            queue_table = await conn.fetchval("SELECT to_regclass('dramatiq.queue')")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{fresh.database}" WITH (FORCE)')
        await admin.close()

    assert (run.code, run.err) == (0, "")
    assert {
        q["queue"]: (q["ready"], q["delayed"], q["dead"]) for q in json.loads(run.out)["queues"]
    } == {q: (0, 0, 0) for q in ("default", "events", "notifications", "reminders", "risk")}
    assert queue_table is None


def test_rabbitmq_queues_are_counted_without_declaring_them() -> None:
    url = broker_url("rabbitmq", "")
    missing = private_queue("never_declared")

    depths = _rabbitmq_depths(url, [missing])

    assert depths == [QueueDepth(missing, 0, 0, 0)]
    connection = rabbitmq_connection(url)
    try:
        with pytest.raises(ChannelClosedByBroker, match="NOT_FOUND"):
            connection.channel().queue_declare(missing, passive=True)
    finally:
        connection.close()


async def test_jobs_status_says_in_one_line_that_rabbitmq_refused_the_login(
    database_url: str, engine: AsyncEngine
) -> None:
    url = urlsplit(broker_url("rabbitmq", database_url))
    where = f"{url.hostname}:{url.port or 5672}{url.path}"

    run = await Cli(database_url)("jobs", "status", BROKER_URL=f"amqp://nobody:wrong@{where}")

    assert (run.code, run.out) == (1, "")
    assert run.err == (
        f"Error: RabbitMQ at amqp://nobody:***@{where} refused the user name or password.\n"
    )


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
