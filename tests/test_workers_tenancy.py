"""Every message runs as its own tenant, on RabbitMQ and on the Postgres broker alike."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Broker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tenants.binding import tenant_session
from tenants.context import current_tenant, current_tenant_or_none, use_tenant
from tenants.registry import set_status
from tests.conftest import TenantWithAdmin, make_tenant
from tests.worker_support import (
    bare_broker,
    broker_url,
    dead_letters,
    eventually,
    installed_broker,
    private_queue,
    raw_message,
    running_worker,
)
from workers.actors import actor
from workers.middleware import PermanentFailure, TenantRequired

QUEUE = private_queue("tenancy")
seen: list[dict[str, Any]] = []


@actor("test.tenancy.probe", queue_name=QUEUE)
def probe(label: str) -> None:
    seen.append({"label": label, "tenant": current_tenant().slug, "thread": threading.get_ident()})


@actor("test.tenancy.async_probe", queue_name=QUEUE)
async def async_probe(label: str) -> None:
    async with tenant_session() as session:
        path = await session.scalar(text("SELECT current_setting('search_path')"))
    seen.append({"label": label, "tenant": current_tenant().slug, "search_path": path})


@actor("test.tenancy.unscoped_probe", queue_name=QUEUE, tenant_scoped=False)
def unscoped_probe(label: str) -> None:
    tenant = current_tenant_or_none()
    seen.append({"label": label, "tenant": tenant.slug if tenant else None})


@actor("test.tenancy.failing", queue_name=QUEUE)
def failing(label: str) -> None:
    seen.append({"label": label, "tenant": current_tenant().slug})
    raise PermanentFailure("this actor always fails")


# Two messages meet here, each on its own worker thread, before either goes on.
PAIR = threading.Barrier(2)


@actor("test.tenancy.paired", queue_name=QUEUE)
def paired(label: str) -> None:
    PAIR.wait(timeout=10)
    seen.append({"label": label, "tenant": current_tenant().slug, "thread": threading.get_ident()})


@actor("test.tenancy.unscoped_paired", queue_name=QUEUE, tenant_scoped=False)
def unscoped_paired(label: str) -> None:
    PAIR.wait(timeout=10)
    tenant = current_tenant_or_none()
    seen.append({"label": label, "tenant": tenant.slug if tenant else None})


def labelled(label: str) -> list[dict[str, Any]]:
    return [row for row in seen if row["label"] == label]


@pytest.fixture(params=["postgres", "rabbitmq"])
async def broker(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Broker]:
    url = broker_url(request.param, database_url)
    async with installed_broker(url, [QUEUE]) as broker:
        yield broker


@pytest.fixture
async def two_tenants(engine: AsyncEngine) -> tuple[TenantWithAdmin, TenantWithAdmin]:
    return await make_tenant(engine), await make_tenant(engine)


async def test_a_message_runs_as_its_tenant_after_another_tenants_message_on_the_same_thread(
    broker: Broker, two_tenants: tuple[TenantWithAdmin, TenantWithAdmin]
) -> None:
    a, b = (t.tenant for t in two_tenants)
    seen.clear()

    async with running_worker(broker, [QUEUE], threads=1):
        for label, tenant in (("b1", b), ("a1", a), ("b2", b), ("a2", a)):
            with use_tenant(tenant):
                probe.send(label)
            await eventually(lambda label=label: labelled(label))
        with use_tenant(b):
            async_probe.send("b-async")
        await eventually(lambda: labelled("b-async"))
        async_probe.send_with_options(args=("a-async",), tenant=a.slug)
        await eventually(lambda: labelled("a-async"))

    assert [(row["label"], row["tenant"]) for row in seen[:4]] == [
        ("b1", b.slug),
        ("a1", a.slug),
        ("b2", b.slug),
        ("a2", a.slug),
    ]
    assert len({row["thread"] for row in seen[:4]}) == 1
    assert labelled("b-async")[0]["search_path"] == f"{b.schema}, shared"
    assert labelled("a-async")[0] | {"label": None} == {
        "label": None,
        "tenant": a.slug,
        "search_path": f"{a.schema}, shared",
    }


async def test_the_tenant_is_cleared_after_success_failure_and_skip(
    broker: Broker,
    two_tenants: tuple[TenantWithAdmin, TenantWithAdmin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = (t.tenant for t in two_tenants)
    await set_status(b.slug, "suspended")
    seen.clear()
    caplog.set_level(logging.WARNING)

    async with running_worker(broker, [QUEUE], threads=1):
        probe.send_with_options(args=("ok",), tenant=a.slug)
        unscoped_probe.send("after-success")
        await eventually(lambda: labelled("after-success"))
        failing.send_with_options(args=("boom",), tenant=a.slug)
        unscoped_probe.send("after-failure")
        await eventually(lambda: labelled("after-failure"))
        probe.send_with_options(args=("suspended",), tenant=b.slug)
        unscoped_probe.send("after-skip")
        await eventually(lambda: labelled("after-skip"))

    assert [(row["label"], row["tenant"]) for row in seen] == [
        ("ok", a.slug),
        ("after-success", None),
        ("boom", a.slug),
        ("after-failure", None),
        ("after-skip", None),
    ]
    assert any(
        r.name == "workers.middleware" and f"tenant {b.slug!r} is suspended" in r.getMessage()
        for r in caplog.records
    )
    assert dead_letters(broker, QUEUE) == 1  # the failure, not retried: it was permanent


async def test_a_tenant_scoped_actor_refuses_to_be_sent_without_a_tenant(broker: Broker) -> None:
    with pytest.raises(TenantRequired, match="without a tenant"):
        probe.send("nobody")

    assert current_tenant_or_none() is None
    unscoped_probe.send("fine")  # an actor that is not tenant-scoped may go without one


async def test_a_tenant_scoped_actor_fails_loudly_on_a_message_without_a_tenant(
    broker: Broker,
    database_url: str,
    two_tenants: tuple[TenantWithAdmin, TenantWithAdmin],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen.clear()
    caplog.set_level(logging.ERROR)
    url = broker_url(
        "rabbitmq" if "Rabbitmq" in type(broker).__name__ else "postgres", database_url
    )

    async with running_worker(broker, [QUEUE], threads=1):
        with bare_broker(url) as foreign:
            foreign.enqueue(raw_message("test.tenancy.probe", QUEUE, "orphan"))
        await eventually(lambda: dead_letters(broker, QUEUE) == 1)

    assert seen == []
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in failures] == ["TenantRequired"]  # type: ignore[index]
    assert "names no tenant; it is refused" in str(failures[0].exc_info[1])  # type: ignore[index]


async def test_two_copies_of_one_message_on_two_threads_both_run_as_its_tenant(
    broker: Broker, two_tenants: tuple[TenantWithAdmin, TenantWithAdmin]
) -> None:
    a = two_tenants[0].tenant
    seen.clear()
    PAIR.reset()
    copy = dramatiq.Message(
        queue_name=QUEUE,
        actor_name="test.tenancy.paired",
        args=("copy",),
        kwargs={},
        options={"tenant": a.slug},
    )

    async with running_worker(broker, [QUEUE], threads=2):
        # The same message twice, as a duplicate or a re-published outbox row arrives (the
        # Postgres broker puts the running one back in its queue).
        broker.enqueue(copy)
        await eventually(lambda: PAIR.n_waiting == 1)
        broker.enqueue(copy)
        await eventually(lambda: len(labelled("copy")) == 2)
        # Then one message on each thread, for no tenant: neither thread kept one.
        for label in ("after-1", "after-2"):
            unscoped_paired.send(label)
        await eventually(lambda: labelled("after-1") and labelled("after-2"))

    copies = labelled("copy")
    assert [row["tenant"] for row in copies] == [a.slug, a.slug]
    assert len({row["thread"] for row in copies}) == 2
    assert [row["tenant"] for row in labelled("after-1") + labelled("after-2")] == [None, None]
