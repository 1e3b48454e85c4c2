"""The advance sub-ledger: balances and the status they imply.

Every movement is an entry whose `amount` is its effect on what the employee owes, in the
advance's currency: a disbursement adds, settlements, returns, payroll deductions,
write-offs and waivers subtract, a reimbursement for overspending adds back. A reversal
cancels one earlier entry with the opposite amount. The outstanding balance is the sum.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advances.models import Advance, LedgerEntry
from domain.money import Money

SETTLING_KINDS = ("expense_settlement", "return", "payroll_deduction")
CLOSING_KINDS = ("write_off", "waiver")


async def outstanding(session: AsyncSession, advance_id: uuid.UUID) -> Decimal:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.advance_id == advance_id
        )
    )
    return Decimal(total)


async def balance(session: AsyncSession, advance: Advance) -> Money:
    """What is owed on `advance`, at its currency's minor unit (the table keeps four
    decimals for every currency)."""
    return Money.of(await outstanding(session, advance.id), advance.currency)


async def entries(session: AsyncSession, advance_id: uuid.UUID) -> list[LedgerEntry]:
    return list(
        await session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.advance_id == advance_id)
            .order_by(LedgerEntry.seq)
        )
    )


def status_from(entries: Sequence[LedgerEntry]) -> str | None:
    """The status the ledger implies, or None while it is empty. With every payment
    reversed the advance is approved again: to be paid anew or cancelled."""
    if not entries:
        return None
    reversed_ids = {e.reverses_id for e in entries if e.kind == "reversal"}
    live = [e for e in entries if e.kind != "reversal" and e.id not in reversed_ids]
    if not any(e.kind == "disbursement" for e in live):
        return "approved"
    balance = sum((e.amount for e in entries), Decimal(0))
    if balance > 0:
        settled_some = any(e.kind in SETTLING_KINDS for e in live)
        return "partially_settled" if settled_some else "disbursed"
    if any(e.kind in CLOSING_KINDS for e in live):
        return "written_off"
    return "settled"


def is_overdue(advance: Advance, today: dt.date) -> bool:
    """Overdue: money still out after the expected settlement date, on the local calendar."""
    return advance.status in ("disbursed", "partially_settled") and (
        today > advance.expected_settlement_date
    )
