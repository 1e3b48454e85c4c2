"""Nothing is lost between a commit and the queue, and nothing is done twice.

Domain actions record their events in the tenant's outbox in their own transaction; the
relay moves rows to the broker (the Postgres broker on this session's database) and marks
them sent. The crash windows are reproduced by running the relay's steps by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from dramatiq import Broker
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import outbox
from domain.outbox import OutboxMessage
from tenants.binding import tenant_session
from tenants.context import Tenant
from tenants.registry import set_status
from tests.advance_fixtures import (
    Company,
    approve_all,
    approved_and_paid,
    build_company,
    call,
    own_client,
    submitted,
)
from tests.conftest import GraphQLClient
from tests.worker_support import eventually, installed_broker, running_worker
from workers import relay
from workers.events import EVENTS_QUEUE
from workers.idempotency import HandledMessage


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        return await build_company(engine, gql)


@pytest.fixture
async def broker(database_url: str) -> AsyncIterator[Broker]:
    async with installed_broker(database_url, [EVENTS_QUEUE]) as broker:
        yield broker


async def outbox_rows(tenant: Tenant) -> list[OutboxMessage]:
    async with tenant_session(tenant) as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def unsent(tenant: Tenant) -> list[OutboxMessage]:
    return [row for row in await outbox_rows(tenant) if row.sent_at is None]


async def handled_keys(tenant: Tenant) -> list[str]:
    async with tenant_session(tenant) as session:
        return list(await session.scalars(select(HandledMessage.idempotency_key)))


def in_flight(broker: Broker) -> int:
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s AND state <> 'rejected'",
            (EVENTS_QUEUE,),
        ).fetchone()
    return int(row[0])


async def settle_all_sent(broker: Broker, tenant: Tenant) -> None:
    """Relay and handle what is pending, and what handling it queued (e-mail, which no
    worker here sends), so a test starts from an empty outbox."""
    async with running_worker(broker, [EVENTS_QUEUE]):
        for _ in range(2):
            await relay.drain(broker, tenant)
            await eventually(lambda: in_flight(broker) == 0)
    await relay.drain(broker, tenant)


async def approved(gql: GraphQLClient, company: Company, broker: Broker, who: str) -> str:
    """An approved advance, its approval events handled: paying it out records one event."""
    advance_id = await submitted(gql, company, who, "1000", "Samples")
    await approve_all(gql, company, advance_id)
    await settle_all_sent(broker, company.tenant.tenant)
    return advance_id


async def disburse(gql: GraphQLClient, company: Company, advance_id: str) -> None:
    paid = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": f"pay-{advance_id}"},
    )
    assert paid["advance"]["status"] == "disbursed", paid


async def test_actions_record_their_events_with_the_change_and_only_then(
    company: Company, gql: GraphQLClient, broker: Broker
) -> None:
    tenant = company.tenant.tenant
    await settle_all_sent(broker, tenant)
    before = len(await outbox_rows(tenant))

    advance_id = await approved_and_paid(gql, company, "rep0", "3000", "Trade fair")
    refused = await call(
        gql,
        company.token("accountant"),
        "disburseAdvance",
        {"advanceId": advance_id, "idempotencyKey": "another-key"},
    )
    returned = await call(
        gql,
        company.token("accountant"),
        "recordReturn",
        {"advanceId": advance_id, "amount": {"amount": "3000"}, "occurredOn": "2026-12-01"},
    )

    assert refused["userErrors"][0]["field"] == "id"
    assert returned["advance"]["status"] == "settled"
    rows = (await outbox_rows(tenant))[before:]
    approvals = [r for r in rows if r.actor_name == "approval.requested"]
    changes = [(r.payload["change"], r.payload["status"]) for r in rows if r.payload.get("change")]
    assert len(approvals) >= 1
    assert all(r.idempotency_key == f"approval.requested:{r.payload['step_id']}" for r in approvals)
    assert changes == [("disbursed", "disbursed"), ("return", "settled")]
    assert [r.actor_name for r in rows] == ["approval.requested"] * len(approvals) + [
        "advance.changed",
        "advance.changed",
    ]
    assert all(r.sent_at is None for r in rows)


async def test_an_exit_records_its_event(
    company: Company, gql: GraphQLClient, broker: Broker
) -> None:
    tenant = company.tenant.tenant
    before = len(await outbox_rows(tenant))

    opened = await call(
        gql,
        company.token("hr"),
        "submitResignation",
        {"employeeId": company.ids["op3"], "lastWorkingDay": "2099-01-31"},
        select="case { id status }",
    )

    assert opened["userErrors"] == []
    rows = (await outbox_rows(tenant))[before:]
    assert [(r.actor_name, r.payload["status"], r.payload["kind"]) for r in rows] == [
        ("employee.offboarding", "open", "resignation")
    ]
    assert rows[0].idempotency_key == f"employee.offboarding:{rows[0].payload['case_id']}:open"


async def test_a_crash_after_commit_and_before_relaying_loses_nothing(
    company: Company, gql: GraphQLClient, broker: Broker
) -> None:
    tenant = company.tenant.tenant
    advance_id = await approved(gql, company, broker, "rep1")

    # The action commits; the relay "dies" before it runs: nothing is on the broker yet.
    await disburse(gql, company, advance_id)
    waiting = await unsent(tenant)
    assert [row.actor_name for row in waiting] == ["advance.changed"]
    assert in_flight(broker) == 0

    # The relay restarts: every committed row goes out once and is handled once.
    sent = await relay.drain(broker, tenant)
    async with running_worker(broker, [EVENTS_QUEUE], threads=2):
        await eventually(lambda: in_flight(broker) == 0)
        keys = {row.idempotency_key for row in waiting}
        await eventually(lambda: _handled_all(tenant, keys))

    assert sent == len(waiting)
    assert await unsent(tenant) == []


async def _handled_all(tenant: Tenant, keys: set[str]) -> bool:
    return keys <= set(await handled_keys(tenant))


async def test_a_crash_after_publishing_and_before_marking_sends_a_duplicate_that_is_absorbed(
    company: Company,
    gql: GraphQLClient,
    broker: Broker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = company.tenant.tenant
    advance_id = await approved(gql, company, broker, "rep2")
    await disburse(gql, company, advance_id)
    waiting = await unsent(tenant)
    keys = {row.idempotency_key for row in waiting}
    caplog.set_level(logging.DEBUG, logger="workers.events")

    # The relay publishes the batch, then dies before its transaction marks it sent.
    with pytest.raises(Crash):
        async with tenant_session(tenant) as session:
            claimed = await relay.claim(session)
            await asyncio.to_thread(relay.publish, broker, tenant, claimed)
            raise Crash
    async with running_worker(broker, [EVENTS_QUEUE]):
        await eventually(lambda: _handled_all(tenant, keys))
        still_unsent = await unsent(tenant)
        # The restarted relay sends the same rows again; the consumers see the keys.
        resent = await relay.drain(broker, tenant)
        await eventually(lambda: in_flight(broker) == 0)
        await eventually(lambda: len(_skips(caplog)) == len(keys))

    assert [row.idempotency_key for row in still_unsent] == [r.idempotency_key for r in waiting]
    assert resent == len(waiting)
    assert sorted(_skips(caplog)) == sorted(keys)
    assert sorted(k for k in await handled_keys(tenant) if k in keys) == sorted(keys)
    assert await unsent(tenant) == []
    assert advance_id


def _skips(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.args[0]  # type: ignore[index]
        for r in caplog.records
        if r.name == "workers.events" and r.getMessage().startswith("Skipping")
    ]


async def test_two_relays_never_claim_the_same_rows(
    company: Company, gql: GraphQLClient, broker: Broker
) -> None:
    tenant = company.tenant.tenant
    await settle_all_sent(broker, tenant)
    await approved_and_paid(gql, company, "rep3", "500", "Taxi")
    waiting = await unsent(tenant)

    async with tenant_session(tenant) as first:
        held = await relay.claim(first)
        skipped_by_second = await relay.relay_tenant(broker, tenant)
        relay.mark_sent(await asyncio.to_thread(relay.publish, broker, tenant, held))

    assert len(held) == len(waiting)
    assert skipped_by_second == 0
    assert in_flight(broker) == len(waiting)
    assert await unsent(tenant) == []


async def test_the_relay_wakes_on_commit_and_leaves_inactive_tenants_for_later(
    company: Company, gql: GraphQLClient, broker: Broker
) -> None:
    tenant = company.tenant.tenant
    await settle_all_sent(broker, tenant)
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run_relay(broker, stop, sweep_every=3600))
    try:
        await asyncio.sleep(0.3)  # the first sweep ran and the listener is up
        await approved_and_paid(gql, company, "rep4", "800", "Hotel")
        await eventually(lambda: _nothing_unsent(tenant), timeout=10)

        await set_status(tenant.slug, "suspended")
        async with tenant_session(tenant) as session:
            await outbox.enqueue(session, "advance.changed", PAYLOAD, "while-suspended")
        await asyncio.sleep(0.5)  # notified, yet the relay must leave it alone
        left = [row.idempotency_key for row in await unsent(tenant)]
    finally:
        await set_status(tenant.slug, "active")
        stop.set()
        await running
    await relay.sweep(broker)  # once active again, the next sweep takes it

    assert left == ["while-suspended"]
    assert await unsent(tenant) == []
    assert await relay.pending_tenants([tenant]) == []


PAYLOAD = {"advance_id": "a", "employee_id": "e", "status": "disbursed", "change": "test"}


async def _nothing_unsent(tenant: Tenant) -> bool:
    return await unsent(tenant) == []


async def test_a_relay_whose_listening_connection_drops_listens_again(
    company: Company,
    gql: GraphQLClient,
    broker: Broker,
    engine: AsyncEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = company.tenant.tenant
    await settle_all_sent(broker, tenant)
    caplog.set_level(logging.WARNING, logger="workers.relay")
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run_relay(broker, stop, sweep_every=3600))
    try:
        first = await eventually(lambda: _listening(engine))
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first[0]})
        second = await eventually(lambda: _listening_other_than(engine, first))
        await asyncio.sleep(0.5)  # the sweep that follows a new connection is over
        # Its next sweep is an hour away: only a notification can wake the relay now.
        async with tenant_session(tenant) as session:
            await outbox.enqueue(session, "advance.changed", PAYLOAD, f"relisten-{second[0]}")
        await eventually(lambda: _nothing_unsent(tenant), timeout=10)
    finally:
        stop.set()
        await running

    assert [r.getMessage() for r in caplog.records if r.name == "workers.relay"] == [
        "The outbox relay's listening connection was lost; it listens again."
    ]
    assert await _listening(engine) == []  # a stopped relay leaves no listener in the pool


async def _listening(engine: AsyncEngine) -> list[int]:
    """The backends of this database listening for the outbox (their last query)."""
    async with engine.connect() as conn:
        rows = await conn.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND query ILIKE 'LISTEN%renshi_outbox%'"
            )
        )
        return list(rows)


async def _listening_other_than(engine: AsyncEngine, before: list[int]) -> list[int]:
    return [pid for pid in await _listening(engine) if pid not in before]
