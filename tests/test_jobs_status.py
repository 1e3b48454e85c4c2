"""`renshi jobs status`: schedules, queue depths, failures and last runs, per tenant."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dramatiq import Broker
from sqlalchemy import text
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
    assert run.code == 0, run.err
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
