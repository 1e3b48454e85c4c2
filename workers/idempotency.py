"""Handling a message at most once per idempotency key, whatever the broker redelivers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tenants.metadata import TenantBase


class HandledMessage(TenantBase):
    """The key of a message whose effects are committed (tenant schema)."""

    __tablename__ = "handled_messages"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    actor_name: Mapped[str] = mapped_column(String(128))
    handled_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


async def first_time(session: AsyncSession, key: str, actor_name: str) -> bool:
    """Record `key` in the caller's transaction; False when it was handled already.

    The effects of the message belong in the same transaction: they commit together with
    the key or not at all. A concurrent duplicate waits for the first to commit, then
    finds the key.
    """
    inserted = await session.execute(
        insert(HandledMessage)
        .values(idempotency_key=key, actor_name=actor_name)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(HandledMessage.idempotency_key)
    )
    return inserted.first() is not None
