"""Only transient failures are retried: a message that cannot succeed fails at once.

Messages whose arguments do not fit their actor (an instant that is not one, or has no UTC
offset, an argument the actor does not take, an empty id) and bugs go to the dead letters
on their first attempt and into the failed-messages ledger; a lost connection is retried.
"""

from __future__ import annotations

import collections
import json
from collections.abc import AsyncIterator

import pytest
from dramatiq import Broker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import make_tenant
from tests.worker_support import (
    dead_letters,
    eventually,
    installed_broker,
    private_queue,
    running_worker,
)
from workers.actors import actor
from workers.notifications import QUEUE as NOTIFICATIONS_QUEUE
from workers.notifications import send_email
from workers.reminders import QUEUE as REMINDERS_QUEUE
from workers.reminders import scan

QUEUE = private_queue("malformed")
attempts: collections.Counter[str] = collections.Counter()


@actor("test.malformed.flaky", queue_name=QUEUE)
def flaky(label: str) -> None:
    attempts[label] += 1
    if attempts[label] == 1:
        raise ConnectionRefusedError("the database is restarting")


@actor("test.malformed.buggy", queue_name=QUEUE)
def buggy(label: str) -> None:
    attempts[label] += 1
    raise KeyError(label)


@pytest.fixture
async def broker(database_url: str) -> AsyncIterator[Broker]:
    # The Postgres broker on this session's database: nobody else consumes its queues.
    async with installed_broker(database_url, [QUEUE, REMINDERS_QUEUE, NOTIFICATIONS_QUEUE]) as b:
        yield b


async def test_messages_whose_arguments_do_not_fit_fail_on_their_first_attempt(
    broker: Broker, engine: AsyncEngine
) -> None:
    tenant = (await make_tenant(engine)).tenant
    bad = [
        (scan, {"at": "garbage"}),
        (scan, {"at": "2027-05-01T09:00:00"}),
        (scan, {"at": "2027-05-01T09:00:00+08:00", "extra": 1}),
        (send_email, {"notification_id": "", "idempotency_key": "k"}),
    ]
    sent = [ref.send_with_options(kwargs=kwargs, tenant=tenant.slug) for ref, kwargs in bad]

    async with running_worker(broker, [REMINDERS_QUEUE, NOTIFICATIONS_QUEUE], threads=2):
        await eventually(lambda: _dead(broker) == 4, timeout=30)
        await eventually(lambda: _recorded(engine, tenant.id, 4))

    errors = await _errors(engine, tenant.id)
    assert [errors[m.message_id] for m in sent] == [
        "MalformedMessage: at is not an ISO 8601 instant: 'garbage'",
        "MalformedMessage: at has no UTC offset: '2027-05-01T09:00:00'",
        "MalformedMessage: Arguments that 'reminders.scan' does not take:"
        " got an unexpected keyword argument 'extra'",
        "MalformedMessage: notification_id is not a UUID: ''",
    ]
    assert _attempts_made(broker, [m.message_id for m in sent]) == [1, 1, 1, 1]


async def test_a_lost_connection_is_retried_and_a_bug_is_not(
    broker: Broker, engine: AsyncEngine
) -> None:
    tenant = (await make_tenant(engine)).tenant
    attempts.clear()

    flaky.send_with_options(args=("flaky",), tenant=tenant.slug)
    failed = buggy.send_with_options(args=("buggy",), tenant=tenant.slug)
    async with running_worker(broker, [QUEUE]):
        await eventually(lambda: attempts["flaky"] == 2, timeout=30)
        await eventually(lambda: dead_letters(broker, QUEUE) == 1)

    assert attempts == {"flaky": 2, "buggy": 1}
    assert _attempts_made(broker, [failed.message_id]) == [1]
    assert (await _errors(engine, tenant.id))[failed.message_id] == "KeyError: 'buggy'"


def _dead(broker: Broker) -> int:
    return dead_letters(broker, REMINDERS_QUEUE) + dead_letters(broker, NOTIFICATIONS_QUEUE)


def _attempts_made(broker: Broker, message_ids: list[str]) -> list[int]:
    """How many times each dead-lettered message ran (Dramatiq counts them in `retries`)."""
    with broker.pool.connection() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(
            "SELECT message_id::text, message FROM dramatiq.queue WHERE state = 'rejected'"
            " AND message_id::text = ANY(%s)",
            (message_ids,),
        ).fetchall()
    made = {mid: _as_dict(message)["options"]["retries"] for mid, message in rows}
    return [made.get(mid, 0) for mid in message_ids]


def _as_dict(message: object) -> dict:  # type: ignore[type-arg]
    return message if isinstance(message, dict) else json.loads(message)  # type: ignore[arg-type]


async def _errors(engine: AsyncEngine, tenant_id: object) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT message_id, error FROM shared.failed_messages WHERE tenant_id = :id"),
            {"id": tenant_id},
        )
        return {message_id: error for message_id, error in rows}


async def _recorded(engine: AsyncEngine, tenant_id: object, count: int) -> bool:
    return len(await _errors(engine, tenant_id)) == count
