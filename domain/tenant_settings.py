"""Per-tenant policy settings, stored as JSON values under dotted keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from tenants.metadata import TenantBase

# Every setting with its default; a key missing from the table reads as its default.
DEFAULTS: dict[str, Any] = {
    # Refuse a new advance while the requester has an overdue one.
    "advances.block_when_overdue": True,
    # Approvers above the matrix, in order: [{"role": "finance_director", "position_id": ...}]
    "advances.named_approvers": [],
    # When reminders and escalations go out (see domain.reminders.ReminderPolicy).
    "reminders.policy": {
        "due_soon_days": 3,
        "escalate_manager_days": 3,
        "escalate_finance_days": 7,
        "approval_wait_hours": 16,
    },
    # Risk score bands and alerts (see domain.analytics.alerts): scores from `medium` up
    # are medium, from `high` up high; rising into a band raises an alert.
    "analytics.risk_thresholds": {"medium": "40", "high": "70"},
}


class TenantSetting(TenantBase):
    __tablename__ = "tenant_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)


async def get_setting(session: AsyncSession, key: str) -> Any:
    value = await session.scalar(select(TenantSetting.value).where(TenantSetting.key == key))
    return DEFAULTS[key] if value is None else value


async def set_setting(session: AsyncSession, key: str, value: Any) -> None:
    if key not in DEFAULTS:
        raise KeyError(key)
    statement = insert(TenantSetting).values(key=key, value=value)
    await session.execute(
        statement.on_conflict_do_update(index_elements=["key"], set_={"value": value})
    )
