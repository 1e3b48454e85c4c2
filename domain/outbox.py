"""The transactional outbox: work to queue, recorded in the transaction that causes it.

A domain action calls `enqueue` inside its own transaction. The row commits or rolls back
with the change, so background work is never queued for a change that did not happen, and
never lost for one that did: the relay (`workers.relay`) moves committed rows to the
broker and marks them sent. The relay may send a row twice (a crash between sending and
marking), so every row carries an idempotency key that its consumer checks.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tenants.binding import TENANT_INFO_KEY
from tenants.metadata import TenantBase

# The relay listens here; the payload is the tenant's slug. NOTIFY is delivered on commit.
CHANNEL = "renshi_outbox"
NOTIFIED_KEY = "renshi_outbox_notified"


class OutboxMessage(TenantBase):
    """A message for an actor, recorded with the change that calls for it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    actor_name: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


async def enqueue(
    session: AsyncSession, actor_name: str, payload: dict[str, Any], idempotency_key: str
) -> None:
    """Queue `payload` for `actor_name` once the caller's transaction commits.

    A second call with the same key records nothing: the work is already queued.
    """
    await enqueue_many(session, [(actor_name, payload, idempotency_key)])


async def enqueue_many(
    session: AsyncSession, messages: list[tuple[str, dict[str, Any], str]]
) -> None:
    """`enqueue` for several (actor name, payload, idempotency key) at once: one statement."""
    if not messages:
        return
    await session.execute(
        insert(OutboxMessage)
        .values(
            [
                {"actor_name": name, "payload": jsonable(payload), "idempotency_key": key}
                for name, payload, key in messages
            ]
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    await wake_relay(session)


async def wake_relay(session: AsyncSession) -> None:
    """Tell the relay that this transaction adds outbox rows (delivered on commit).

    One NOTIFY per transaction is enough: the relay then drains the whole tenant.
    """
    if session.info.get(NOTIFIED_KEY):
        return
    tenant = session.info[TENANT_INFO_KEY]
    await session.execute(
        text("SELECT pg_notify(:channel, :slug)"), {"channel": CHANNEL, "slug": tenant.slug}
    )
    session.info[NOTIFIED_KEY] = True


def jsonable(value: Any) -> Any:
    """`value` with UUIDs, dates and Decimals as their exact text (JSON has no such types)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"Cannot queue a {type(value).__name__} in an outbox payload.")


def event_key(kind: str, entity_id: uuid.UUID | str) -> str:
    """A fresh key for one occurrence of an event about an entity."""
    return f"{kind}:{entity_id}:{uuid.uuid4()}"
