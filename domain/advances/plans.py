"""Repayment schedules: N monthly instalments that add up exactly to the amount.

Each instalment is the amount divided by N, rounded half-up to the currency's minor
unit; the last one absorbs the remainder. A plan starting on a date has its instalments
fall due one, two, ... N months later, on the start's day of the month clamped to the
month's end (from 31 January: 28 or 29 February, 31 March, 30 April).

A plan's progress is derived from the ledger, never stored: every settling entry recorded
after the plan was made (payroll deductions, and returns and expense claims, which lower
what is owed just the same), less those reversed since, pays the instalments in due-date
order. An instalment is paid, partly paid, due, or overdue when it is not fully paid
after its due date on the branch's local calendar. The plan is completed when every
instalment is paid or the advance is settled, and written off when the advance's
remainder was written off or waived; the instalments it will never collect are closed.
A reversal takes its money back out, so the instalment it paid is open again.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import clock
from domain.advances.ledger import SETTLING_KINDS
from domain.advances.models import (
    Advance,
    LedgerEntry,
    RepaymentInstalment,
    RepaymentPlan,
)
from domain.errors import DomainError
from domain.money import Money, quantize
from domain.organisation.models import Branch
from i18n import N_

MAX_INSTALMENTS = 120


def monthly_due_dates(start: dt.date, count: int) -> list[dt.date]:
    """`count` dates, 1 to `count` months after `start`, clamped to each month's end."""
    dates = []
    for offset in range(1, count + 1):
        month_index = start.month - 1 + offset
        year, month = start.year + month_index // 12, month_index % 12 + 1
        last_day = calendar.monthrange(year, month)[1]
        dates.append(dt.date(year, month, min(start.day, last_day)))
    return dates


def instalments(total: Money, count: int, start: dt.date) -> list[tuple[dt.date, Money]]:
    """The schedule of a plan; raises `DomainError` when the split is impossible."""
    if not 1 <= count <= MAX_INSTALMENTS:
        raise DomainError(
            N_("A plan has 1 to {count} instalments."), field="instalments", count=MAX_INSTALMENTS
        )
    if total.amount <= 0:
        raise DomainError(N_("There is nothing to repay."), field="amount")
    regular = quantize(total.amount / Decimal(count), total.currency)
    last = total.amount - regular * (count - 1)
    if regular <= 0 or last <= 0:
        raise DomainError(
            N_("The amount is too small for that many instalments."), field="instalments"
        )
    amounts = [regular] * (count - 1) + [last]
    return [
        (due, Money(amount, total.currency))
        for due, amount in zip(monthly_due_dates(start, count), amounts, strict=True)
    ]


@dataclasses.dataclass(frozen=True)
class InstalmentProgress:
    seq: int
    due_on: dt.date
    amount: Money
    recovered: Money
    status: str  # paid, partly_paid, due, overdue or closed


@dataclasses.dataclass(frozen=True)
class PlanProgress:
    plan: RepaymentPlan
    status: str  # active, completed or written_off
    amount: Money
    recovered: Money
    remaining: Money
    instalments: list[InstalmentProgress]

    @property
    def next_due(self) -> InstalmentProgress | None:
        """The earliest instalment still to be paid, while the plan is active."""
        if self.status != "active":
            return None
        return next((i for i in self.instalments if i.status != "paid"), None)


def progress(
    plan: RepaymentPlan,
    schedule: Sequence[tuple[int, dt.date, Decimal]],
    paid: Decimal,
    *,
    advance_status: str,
    today: dt.date,
) -> PlanProgress:
    """Apply `paid` (settled since the plan was made) to the instalments in due order.

    `today` is the local date of the advance's branch; `advance_status` closes the plan
    when the advance is settled, written off or waived.
    """
    currency = plan.currency
    left = max(paid, Decimal(0))
    states = []
    for seq, due_on, amount in sorted(schedule, key=lambda s: (s[1], s[0])):
        share = min(amount, left)
        left -= share
        states.append((seq, due_on, amount, share))
    recovered = sum((share for *_, share in states), Decimal(0))
    if recovered >= plan.amount or advance_status == "settled":
        status = "completed"
    elif advance_status == "written_off":
        status = "written_off"
    else:
        status = "active"
    instalments = [
        InstalmentProgress(
            seq=seq,
            due_on=due_on,
            amount=Money.of(amount, currency),
            recovered=Money.of(share, currency),
            status=_instalment_status(amount, share, due_on, today, closed=status != "active"),
        )
        for seq, due_on, amount, share in states
    ]
    remaining = plan.amount - recovered if status == "active" else Decimal(0)
    return PlanProgress(
        plan=plan,
        status=status,
        amount=Money.of(plan.amount, currency),
        recovered=Money.of(recovered, currency),
        remaining=Money.of(remaining, currency),
        instalments=instalments,
    )


def _instalment_status(
    amount: Decimal, recovered: Decimal, due_on: dt.date, today: dt.date, *, closed: bool
) -> str:
    if recovered >= amount:
        return "paid"
    if closed:
        return "closed"
    if due_on < today:
        return "overdue"
    return "partly_paid" if recovered > 0 else "due"


async def plan_progress(
    session: AsyncSession, advance_ids: Sequence[uuid.UUID], *, at: dt.datetime | None = None
) -> dict[uuid.UUID, list[PlanProgress]]:
    """The plans of these advances with their progress at the instant `at` (default now),
    oldest plan first, in four queries whatever the number of advances."""
    found: dict[uuid.UUID, list[PlanProgress]] = {a: [] for a in advance_ids}
    if not advance_ids:
        return found
    ids = list(found)
    plans = list(
        await session.scalars(
            select(RepaymentPlan)
            .where(RepaymentPlan.advance_id.in_(ids))
            .order_by(RepaymentPlan.created_at, RepaymentPlan.id)
        )
    )
    if not plans:
        return found
    schedules: dict[uuid.UUID, list[tuple[int, dt.date, Decimal]]] = defaultdict(list)
    for row in await session.execute(
        select(
            RepaymentInstalment.plan_id,
            RepaymentInstalment.seq,
            RepaymentInstalment.due_on,
            RepaymentInstalment.amount,
        ).where(RepaymentInstalment.plan_id.in_([p.id for p in plans]))
    ):
        schedules[row.plan_id].append((row.seq, row.due_on, row.amount))
    entries: dict[uuid.UUID, list[tuple[int, uuid.UUID, str, Decimal, uuid.UUID | None]]]
    entries = defaultdict(list)
    for entry in await session.execute(
        select(
            LedgerEntry.advance_id,
            LedgerEntry.seq,
            LedgerEntry.id,
            LedgerEntry.kind,
            LedgerEntry.amount,
            LedgerEntry.reverses_id,
        ).where(LedgerEntry.advance_id.in_(ids))
    ):
        entries[entry.advance_id].append(
            (entry.seq, entry.id, entry.kind, entry.amount, entry.reverses_id)
        )
    advances = {
        row.id: row
        for row in await session.execute(
            select(Advance.id, Advance.status, Branch.time_zone)
            .join(Branch, Branch.id == Advance.branch_id)
            .where(Advance.id.in_([p.advance_id for p in plans]))
        )
    }
    for plan in plans:
        advance = advances[plan.advance_id]
        found[plan.advance_id].append(
            progress(
                plan,
                schedules[plan.id],
                _settled_since(entries[plan.advance_id], plan.ledger_seq),
                advance_status=advance.status,
                today=clock.local_today(advance.time_zone, at),
            )
        )
    return found


def _settled_since(
    entries: Sequence[tuple[int, uuid.UUID, str, Decimal, uuid.UUID | None]], after_seq: int
) -> Decimal:
    """Money settled by entries recorded after `after_seq`, less the reversals of any of
    them: a reversed deduction no longer pays anything."""
    counted = {
        entry_id: -amount
        for seq, entry_id, kind, amount, _ in entries
        if seq > after_seq and kind in SETTLING_KINDS
    }
    reversed_ids = {reverses for *_, kind, _, reverses in entries if kind == "reversal"}
    return sum(
        (amount for entry_id, amount in counted.items() if entry_id not in reversed_ids),
        Decimal(0),
    )
