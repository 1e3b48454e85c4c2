"""Approvers are told, in their language and formats, in the app and by e-mail, once.

The whole path runs for real: the domain action's outbox row, the relay, the Postgres
broker on this session's database, the workers, and SMTP to a local aiosmtpd sink.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from dramatiq import Broker
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import notifications
from domain.identity.models import User
from renshi.settings import get_settings
from tenants.binding import tenant_session
from tenants.context import Tenant, use_tenant
from tenants.registry import set_status
from tests.advance_fixtures import (
    APPROVERS,
    Company,
    add_user,
    build_company,
    call,
    own_client,
    raw_session,
    submitted,
)
from tests.conftest import GraphQLClient
from tests.smtp_sink import Sink, smtp_sink
from tests.worker_support import eventually, installed_broker, running_worker
from workers import relay
from workers.events import EVENTS_QUEUE
from workers.notifications import QUEUE as NOTIFICATIONS_QUEUE
from workers.reminders import QUEUE as REMINDERS_QUEUE
from workers.reminders import scan

QUEUES = [EVENTS_QUEUE, NOTIFICATIONS_QUEUE]
LIST = """query($first: Int!, $after: String, $unread: Boolean!) {
  notifications(first: $first, after: $after, unread: $unread) {
    nodes { id kind subject body locale readAt emailStatus }
    hasNextPage endCursor unreadCount
  }
}"""
MARK = """mutation($ids: [ID!]!) {
  markNotificationsRead(input: {ids: $ids}) {
    notifications { id readAt }
    userErrors { field code message }
  }
}"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def company(engine: AsyncEngine, app: Any) -> Company:
    async with own_client(app) as gql:
        company = await build_company(engine, gql)
        # A finance user who reads English and has no employee record: tenant time zone.
        await add_user(gql, company, "controller", ["finance"], locale="en")
        return company


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    with smtp_sink() as (sink, port):
        monkeypatch.setenv("RENSHI_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("RENSHI_SMTP_PORT", str(port))
        monkeypatch.setenv("RENSHI_SMTP_RETRY_SECONDS", "0.2")
        monkeypatch.setenv("RENSHI_SMTP_MAX_ATTEMPTS", "3")
        get_settings.cache_clear()
        yield sink
    get_settings.cache_clear()


@pytest.fixture
async def pipeline(database_url: str, sink: Sink) -> AsyncIterator[Broker]:
    """The relay and a worker, running until the test ends."""
    async with installed_broker(database_url, QUEUES) as broker:
        stop = asyncio.Event()
        relaying = asyncio.create_task(relay.run_relay(broker, stop, sweep_every=0.3, idle=0.1))
        try:
            async with running_worker(broker, QUEUES, threads=2):
                yield broker
        finally:
            stop.set()
            await relaying


async def listing(
    gql: GraphQLClient,
    token: str,
    *,
    first: int = 20,
    after: str | None = None,
    unread: bool = False,
) -> dict[str, Any]:
    body = await gql.execute(LIST, {"first": first, "after": after, "unread": unread}, token=token)
    assert "errors" not in body, body
    return body["data"]["notifications"]


async def test_approvers_are_told_in_their_language_in_the_app_and_by_email_once(
    company: Company, gql: GraphQLClient, pipeline: Broker, sink: Sink
) -> None:
    advance_id = await submitted(gql, company, "rep0", "3000", "Trade fair")
    await approve_until_finance(gql, company, advance_id)

    # The finance step goes to every finance user: the English controller, the accountant.
    await eventually(lambda: _mailed(gql, company, ["controller", "accountant"]))
    english = (await listing(gql, company.token("controller")))["nodes"]
    chinese = (await listing(gql, company.token("accountant")))["nodes"]

    assert [(n["kind"], n["locale"], n["emailStatus"]) for n in english] == [
        ("approval.requested", "en", "sent")
    ]
    assert english[0]["subject"] == "Approval needed: an advance of CN¥3,000.00 for Rep0 Sun"
    assert english[0]["body"].startswith(
        "Rep0 Sun asks for an advance of CN¥3,000.00 for “Trade fair”, to be settled by "
        "December 31, 2099. It was submitted on "
    )
    assert chinese[0]["subject"] == "待审批：Rep0 Sun 申请预支 ¥3,000.00"
    assert "需于 2099年12月31日 前结清" in chinese[0]["body"]
    mail = [m for m in sink.to("controller@sunrise.test") if m["Message-ID"] in await _ids(company)]
    assert [(m["Subject"], m.get_content().strip()) for m in mail] == [
        (english[0]["subject"], english[0]["body"])
    ]


async def test_a_replayed_request_notifies_and_mails_nobody_twice(
    company: Company, gql: GraphQLClient, pipeline: Broker, sink: Sink
) -> None:
    advance_id = await submitted(gql, company, "rep1", "1200", "Booth")
    tenant = company.tenant.tenant
    rows = await _approval_rows(tenant)
    first_step = rows[-1]
    await eventually(lambda: _emails_settled(tenant, first_step.payload["step_id"]))
    before = (len(await _all_notifications(tenant)), await _mails_of(company, sink))

    # The same message, delivered again (a redelivery or a replay of the outbox row).
    replayed = pipeline.get_actor("approval.requested").send_with_options(
        kwargs=first_step.payload | {"idempotency_key": first_step.idempotency_key},
        tenant=tenant.slug,
    )
    await eventually(lambda: _gone(pipeline, replayed.message_id))
    await asyncio.sleep(0.3)  # anything it queued would have been relayed by now

    assert (len(await _all_notifications(tenant)), await _mails_of(company, sink)) == before
    assert advance_id


async def test_the_viewer_pages_filters_and_marks_notifications_read(
    company: Company, gql: GraphQLClient, pipeline: Broker, sink: Sink
) -> None:
    for purpose in ("Fair A", "Fair B"):
        advance_id = await submitted(gql, company, "rep2", "500", purpose)
        await approve_until_finance(gql, company, advance_id)
    token = company.token("controller")
    await eventually(lambda: _at_least(gql, token, 3))

    page = await listing(gql, token, first=2)
    rest = await listing(gql, token, first=2, after=page["endCursor"])
    marked = await gql.execute(MARK, {"ids": [page["nodes"][0]["id"]]}, token=token)
    foreign_id = (await listing(gql, company.token("accountant")))["nodes"][0]["id"]
    refused = await gql.execute(MARK, {"ids": [foreign_id]}, token=token)
    unread = await listing(gql, token, first=100, unread=True)

    assert page["hasNextPage"] is True and len(page["nodes"]) == 2
    assert {n["id"] for n in rest["nodes"]}.isdisjoint({n["id"] for n in page["nodes"]})
    assert marked["data"]["markNotificationsRead"]["userErrors"] == []
    assert marked["data"]["markNotificationsRead"]["notifications"][0]["readAt"] is not None
    assert refused["data"]["markNotificationsRead"] == {
        "notifications": [],
        "userErrors": [
            {"field": "ids", "code": "NOT_FOUND", "message": "The notification does not exist."}
        ],
    }
    assert page["nodes"][0]["id"] not in {n["id"] for n in unread["nodes"]}
    assert unread["unreadCount"] == page["unreadCount"] - 1 == len(unread["nodes"])
    foreign = await listing(gql, company.token("accountant"), first=100)
    assert all(n["readAt"] is None for n in foreign["nodes"] if n["id"] == foreign_id)


async def test_someone_elses_cursor_reads_as_one_that_does_not_exist(
    company: Company, gql: GraphQLClient, pipeline: Broker, sink: Sink
) -> None:
    tenant = company.tenant.tenant
    for address in ("controller@sunrise.test", "accountant@sunrise.test"):
        await _notify(tenant, address, key=f"cursor:{address}")
    theirs = (await listing(gql, company.token("accountant")))["nodes"][0]["id"]
    mine = (await listing(gql, company.token("controller")))["nodes"][0]["id"]

    def after(cursor: str) -> Any:
        variables = {"first": 5, "after": cursor, "unread": False}
        return gql.execute(LIST, variables, token=company.token("controller"))

    foreign, garbled, own = await after(theirs), await after("garbled"), await after(mine)

    assert foreign == garbled
    assert [(e["message"], e["path"]) for e in foreign["errors"]] == [
        ("Nothing with this ID exists.", ["notifications"])
    ]
    assert "errors" not in own


async def test_a_transient_smtp_failure_is_retried_and_a_permanent_one_is_recorded(
    company: Company, gql: GraphQLClient, pipeline: Broker, sink: Sink
) -> None:
    await add_user(gql, company, "busy", ["employee"], locale="en")
    await add_user(gql, company, "gone", ["employee"], locale="en")
    sink.deferred["busy@sunrise.test"] = 1
    sink.refused.add("gone@sunrise.test")
    tenant = company.tenant.tenant

    busy = await _notify(tenant, "busy@sunrise.test")
    gone = await _notify(tenant, "gone@sunrise.test")
    await eventually(lambda: _has_status(tenant, busy, "sent"))
    await eventually(lambda: _has_status(tenant, gone, "failed"))
    await eventually(lambda: _notifications_queue_empty(pipeline))

    busy_row, gone_row = await _row(tenant, busy), await _row(tenant, gone)
    assert (busy_row.email_attempts, busy_row.email_last_error) == (2, None)
    assert sink.attempts["busy@sunrise.test"] == 2
    assert len(sink.to("busy@sunrise.test")) == 1
    assert gone_row.email_attempts == 1
    assert "550" in (gone_row.email_last_error or "")
    assert sink.attempts["gone@sunrise.test"] == 1  # refused for good: never tried again


async def test_two_copies_of_one_email_message_running_at_once_send_one_email(
    company: Company,
    gql: GraphQLClient,
    pipeline: Broker,
    sink: Sink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_user(gql, company, "twice", ["employee"], locale="en")
    tenant = company.tenant.tenant
    sink.slow = 2.0  # the first copy is still talking to the server when the others run
    caplog.set_level(logging.INFO, logger="workers.notifications")

    notification_id = await _notify(tenant, "twice@sunrise.test")
    # Besides the relayed message, two more copies: a duplicate, a replay.
    for _ in range(2):
        pipeline.get_actor(notifications.SEND_EMAIL).send_with_options(
            kwargs={"notification_id": str(notification_id), "idempotency_key": "copy"},
            tenant=tenant.slug,
        )
    await eventually(lambda: _has_status(tenant, notification_id, "sent"))
    await asyncio.sleep(0.5)  # a second e-mail would have been accepted by now

    row = await _row(tenant, notification_id)
    assert (row.email_attempts, row.email_claimed_until) == (1, None)
    assert sink.attempts["twice@sunrise.test"] == 1
    assert len(sink.to("twice@sunrise.test")) == 1
    deferred = [
        r for r in caplog.records if "is being sent elsewhere; looking again" in r.getMessage()
    ]
    assert len(deferred) >= 1  # the copies did run while the first was sending


async def test_an_email_dropped_while_its_tenant_was_suspended_goes_out_after_the_next_scan(
    company: Company, gql: GraphQLClient, database_url: str, sink: Sink
) -> None:
    await add_user(gql, company, "dropped", ["employee"], locale="en")
    tenant = company.tenant.tenant
    async with installed_broker(database_url, [*QUEUES, REMINDERS_QUEUE]) as broker:
        # The e-mail is queued; then the tenant is suspended and a worker drops the message.
        notification_id = await _notify(tenant, "dropped@sunrise.test")
        await relay.drain(broker, tenant)
        await set_status(tenant.slug, "suspended")
        try:
            async with running_worker(broker, [NOTIFICATIONS_QUEUE]):
                await eventually(lambda: _notifications_queue_empty(broker))
        finally:
            await set_status(tenant.slug, "active")
        dropped = await _row(tenant, notification_id)
        # A quarter of an hour later (and more), the hourly scan runs.
        async with raw_session(company) as session:
            await session.execute(
                text(
                    "UPDATE notifications SET created_at = now() - interval '20 minutes'"
                    " WHERE id = :id"
                ),
                {"id": notification_id},
            )
        async with running_worker(broker, [*QUEUES, REMINDERS_QUEUE], threads=2):
            for _ in range(2):  # the second scan finds nothing left to queue
                scan.send_with_options(
                    kwargs={"at": dt.datetime.now(dt.UTC).isoformat()}, tenant=tenant.slug
                )
                await eventually(lambda: _queue_empty(broker, REMINDERS_QUEUE))
                await relay.drain(broker, tenant)
                await eventually(lambda: _notifications_queue_empty(broker))

    sent = await _row(tenant, notification_id)
    assert (dropped.email_status, dropped.email_attempts) == ("pending", 0)
    assert (sent.email_status, sent.email_attempts) == ("sent", 1)
    assert len(sink.to("dropped@sunrise.test")) == 1
    assert await _email_messages(tenant, notification_id) == 2  # the first, and one again


# --- helpers -----------------------------------------------------------------------------------


async def _mailed(gql: GraphQLClient, company: Company, who: list[str]) -> bool:
    """Each of `who` has a notification whose e-mail went out."""
    for key in who:
        nodes = (await listing(gql, company.token(key)))["nodes"]
        if not any(n["emailStatus"] == "sent" for n in nodes):
            return False
    return True


async def _ids(company: Company) -> set[str]:
    """The Message-IDs of this company's notifications (other tenants mail the sink too)."""
    return {f"<{n.id}@renshi>" for n in await _all_notifications(company.tenant.tenant)}


async def _mails_of(company: Company, sink: Sink) -> int:
    ids = await _ids(company)
    return sum(1 for m in sink.received if m["Message-ID"] in ids)


async def approve_until_finance(gql: GraphQLClient, company: Company, advance_id: str) -> None:
    """Approve every step before the finance step, which stays waiting: an approver is
    told only while their step waits."""
    body = await gql.execute(
        "query($id: ID!) { advance(id: $id) { approvalChain { id role approver { id } } } }",
        {"id": advance_id},
        token=company.token("admin"),
    )
    by_employee = {company.ids[k]: k for k in company.tokens if k in company.ids}
    chain = body["data"]["advance"]["approvalChain"]
    assert chain[-1]["role"] == "finance", chain
    for step in chain[:-1]:
        who = APPROVERS.get(step["role"]) or by_employee[step["approver"]["id"]]
        decided = await call(
            gql,
            company.token(who),
            "decideApproval",
            {"stepId": step["id"], "approve": True},
            select="step { status }",
        )
        assert decided["userErrors"] == [], (step, decided)


async def _approval_rows(tenant: Tenant) -> list[Any]:
    from domain.outbox import OutboxMessage

    async with tenant_session(tenant) as session:
        return list(
            await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.actor_name == "approval.requested")
                .order_by(OutboxMessage.id)
            )
        )


async def _all_notifications(tenant: Tenant) -> list[notifications.Notification]:
    async with tenant_session(tenant) as session:
        return list(await session.scalars(select(notifications.Notification)))


async def _emails_settled(tenant: Tenant, step_id: str) -> bool:
    rows = [r for r in await _all_notifications(tenant) if r.data.get("step_id") == step_id]
    return bool(rows) and all(r.email_status in ("sent", "failed", "skipped") for r in rows)


def _gone(broker: Broker, message_id: str) -> bool:
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE message_id = %s", (message_id,)
        ).fetchone()
    return int(row[0]) == 0


def _notifications_queue_empty(broker: Broker) -> bool:
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name LIKE %s AND state <> 'rejected'",
            (f"{NOTIFICATIONS_QUEUE}%",),
        ).fetchone()
    return int(row[0]) == 0


async def _at_least(gql: GraphQLClient, token: str, count: int) -> bool:
    return len((await listing(gql, token, first=100))["nodes"]) >= count


async def _notify(tenant: Tenant, address: str, *, key: str | None = None) -> Any:
    with use_tenant(tenant):
        async with tenant_session() as session:
            user = await session.scalar(select(User).where(User.email == address))
            assert user is not None
            reader = await notifications.reader_of(session, user)
            created = await notifications.notify(
                session,
                reader,
                "approval.requested",
                key or f"test:{address}",
                {"requester": "A", "amount": "1", "purpose": "p", "due": "d", "submitted": "s"},
            )
            assert created is not None
            return created.id


async def _row(tenant: Tenant, notification_id: Any) -> notifications.Notification:
    async with tenant_session(tenant) as session:
        row = await session.get(notifications.Notification, notification_id)
        assert row is not None
        return row


async def _has_status(tenant: Tenant, notification_id: Any, status: str) -> bool:
    return (await _row(tenant, notification_id)).email_status == status


def _queue_empty(broker: Broker, queue: str) -> bool:
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        row = conn.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name LIKE %s AND state <> 'rejected'",
            (f"{queue}%",),
        ).fetchone()
    return int(row[0]) == 0


async def _email_messages(tenant: Tenant, notification_id: Any) -> int:
    """How many messages the outbox recorded to send the notification's e-mail."""
    from domain.outbox import OutboxMessage

    async with tenant_session(tenant) as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.actor_name == notifications.SEND_EMAIL)
        )
        return sum(1 for row in rows if row.payload["notification_id"] == str(notification_id))
