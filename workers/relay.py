"""The outbox relay: committed outbox rows go to the broker, then are marked sent.

One relay pass over a tenant is one transaction: claim a batch of unsent rows with
`FOR UPDATE SKIP LOCKED` (so relays in several processes share the work without sending
a row twice at the same time), publish each as a message, mark the batch sent, commit.

- A crash after the domain transaction commits and before the relay runs loses nothing:
  the row waits in the outbox for the next pass.
- A crash after publishing and before the commit leaves the rows unsent: the next pass
  publishes them again. The message id is derived from the tenant and the row, and the
  message carries the row's idempotency key, so the consumer absorbs the duplicate.

The relay learns of new rows from the NOTIFY each `domain.outbox.enqueue` sends on
commit, and sweeps every active tenant now and then in case a notification was missed
(the relay was down, its listening connection dropped). A listening connection that
drops is opened again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from dramatiq import Broker, Message
from dramatiq.errors import ActorNotFound
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import clock
from domain.outbox import CHANNEL, OutboxMessage
from tenants.binding import tenant_session
from tenants.context import Tenant
from tenants.database import get_engine
from tenants.registry import find_tenant, list_tenants
from tenants.slugs import quote_ident
from workers.middleware import TENANT_OPTION

log = logging.getLogger(__name__)

BATCH = 200
MAX_ATTEMPTS = 10
KEY_OPTION = "idempotency_key"
# Stable ids: a row published twice goes out under the same message id. That does not
# make the second a no-op: the Postgres broker keeps one row per id but puts it back in
# the queue (even while a worker runs it), and RabbitMQ holds both. Consumers absorb the
# duplicate by the idempotency key (and e-mail by its lease).
MESSAGE_NAMESPACE = uuid.UUID("1f0c6a52-6f7e-4d7e-9a43-2b8f0e5d9c11")


async def claim(session: Any, limit: int = BATCH) -> list[OutboxMessage]:
    """Lock up to `limit` unsent rows of the session's tenant, oldest first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS)
        .order_by(OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows)


def message_for(broker: Broker, tenant: Tenant, row: OutboxMessage) -> Message[Any]:
    actor = broker.get_actor(row.actor_name)
    return Message(
        queue_name=actor.queue_name,
        actor_name=row.actor_name,
        args=(),
        kwargs=row.payload | {KEY_OPTION: row.idempotency_key},
        options={TENANT_OPTION: tenant.slug, KEY_OPTION: row.idempotency_key},
        message_id=str(uuid.uuid5(MESSAGE_NAMESPACE, f"{tenant.id}:{row.id}")),
    )


def publish(broker: Broker, tenant: Tenant, rows: Sequence[OutboxMessage]) -> list[OutboxMessage]:
    """Send each row's message (blocking I/O); returns the rows that went out.

    A row naming an actor nobody declared is a programming error: it is kept, with the
    error, and given up after MAX_ATTEMPTS passes. A broker failure stops the batch.
    """
    sent = []
    for row in rows:
        try:
            message = message_for(broker, tenant, row)
        except ActorNotFound as exc:
            row.attempts += 1
            row.last_error = f"No actor named {row.actor_name!r}: {exc}"
            log.error("Outbox row %s of %s names no known actor.", row.id, tenant.slug)
            continue
        broker.enqueue(message)
        sent.append(row)
    return sent


def mark_sent(rows: Sequence[OutboxMessage]) -> None:
    at = clock.now()
    for row in rows:
        row.sent_at = at
        row.attempts += 1


async def relay_tenant(broker: Broker, tenant: Tenant, *, limit: int = BATCH) -> int:
    """One pass over one tenant; returns how many rows were sent."""
    async with tenant_session(tenant) as session:
        rows = await claim(session, limit)
        if not rows:
            return 0
        sent = await asyncio.to_thread(publish, broker, tenant, rows)
        mark_sent(sent)
    log.debug("Relayed %d outbox messages of %s.", len(sent), tenant.slug)
    return len(sent)


async def drain(broker: Broker, tenant: Tenant) -> int:
    """Relay until the tenant's outbox has nothing claimable left."""
    total = 0
    while (count := await relay_tenant(broker, tenant)) > 0:
        total += count
        if count < BATCH:
            break
    return total


async def pending_tenants(tenants: Sequence[Tenant]) -> list[Tenant]:
    """The tenants with unsent rows, found in one query over all their schemas."""
    if not tenants:
        return []
    # Schema names come from validated slugs (`Tenant.schema`), quoted once more here.
    probes = " UNION ALL ".join(
        f"SELECT {index} AS i WHERE EXISTS (SELECT 1 FROM {quote_ident(t.schema)}.outbox "
        f"WHERE sent_at IS NULL AND attempts < {MAX_ATTEMPTS})"
        for index, t in enumerate(tenants)
    )
    async with get_engine().connect() as conn:
        indexes = (await conn.execute(text(probes))).scalars().all()
    return [tenants[i] for i in indexes]


async def sweep(broker: Broker) -> int:
    """Relay every active tenant's pending rows; returns how many were sent."""
    active = [t for t in await list_tenants() if t.is_active]
    total = 0
    for tenant in await pending_tenants(active):
        total += await drain(broker, tenant)
    return total


async def run_relay(
    broker: Broker, stop: asyncio.Event, *, sweep_every: float = 10.0, idle: float = 1.0
) -> None:
    """Relay until `stop` is set: tenants named by notifications at once, all tenants
    every `sweep_every` seconds. A lost listening connection is opened again (and a sweep
    catches up what was notified meanwhile)."""
    woken: set[str] = set()
    wake = asyncio.Event()

    def notified(_conn: Any, _pid: int, _channel: str, slug: str) -> None:
        woken.add(slug)
        wake.set()

    listener = Listener(notified, wake)
    next_sweep = next_listen = 0.0
    try:
        while not stop.is_set():
            if not listener.alive and time.monotonic() >= next_listen:
                if await listener.listen():
                    next_sweep = 0.0  # notifications may have been missed until now
                else:
                    next_listen = time.monotonic() + sweep_every
            try:
                if time.monotonic() >= next_sweep:
                    woken.clear()
                    sent = await sweep(broker)
                    next_sweep = time.monotonic() + sweep_every
                else:
                    slugs = set(woken)
                    woken.clear()
                    sent = 0
                    for slug in slugs:
                        tenant = await find_tenant(slug)
                        if tenant is not None and tenant.is_active:
                            sent += await drain(broker, tenant)
                if sent:
                    log.info("Relayed %d outbox messages.", sent)
            except Exception:
                log.exception("An outbox relay pass failed; retrying shortly.")
                next_sweep = time.monotonic() + idle
            wake.clear()
            if not woken:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(wake, stop), timeout=idle)
    finally:
        await listener.close()


class Listener:
    """The connection on which the relay listens for the outbox's notifications.

    The server may close it (a restart, an administrator, a network cut); it then says so
    through `wake`, and `listen` opens a new one.
    """

    def __init__(self, notified: Any, wake: asyncio.Event) -> None:
        self.notified = notified
        self.wake = wake
        self.conn: AsyncConnection | None = None
        self.lost = False
        self.terms = 0  # how many connections listened (for tests)

    @property
    def alive(self) -> bool:
        return self.conn is not None and not self.lost

    async def listen(self) -> bool:
        """Open a connection and listen on it; False (and a warning) when that fails."""
        await self.close()
        try:
            conn = await get_engine().connect()
        except Exception as exc:
            log.warning(
                "The outbox relay cannot listen for new rows (%s); sweeping meanwhile.", exc
            )
            return False
        try:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.add_listener(CHANNEL, self.notified)  # type: ignore[union-attr]
            raw.add_termination_listener(self._terminated)  # type: ignore[union-attr]
        except Exception as exc:
            await _discard(conn)
            log.warning(
                "The outbox relay cannot listen for new rows (%s); sweeping meanwhile.", exc
            )
            return False
        self.conn, self.lost = conn, False
        self.terms += 1
        if self.terms > 1:
            log.warning("The outbox relay's listening connection was lost; it listens again.")
        return True

    def _terminated(self, _conn: Any) -> None:
        self.lost = True
        self.wake.set()

    async def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            # Never back to the pool: it would go on listening for its next user.
            await _discard(conn)


async def _discard(conn: AsyncConnection) -> None:
    """Close a connection for good (it may be dead already), not returning it to the pool."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def run() -> int:
    """Entry point of the relay process that `renshi worker` forks beside its workers."""
    from renshi.cli import load_models
    from renshi.database import setup_engine
    from workers import actors
    from workers import broker as brokers

    load_models()
    actors.import_all()

    async def main() -> None:
        setup_engine()
        broker = brokers.install(brokers.make_broker(brokers.configured_url()))
        log.info("The outbox relay is running (PID %d).", os.getpid())
        try:
            await run_relay(broker, asyncio.Event())
        finally:
            broker.close()

    asyncio.run(main())
    return 0
