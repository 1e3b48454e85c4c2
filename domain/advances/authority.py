"""The authority matrix: what a job level may ask for, and what it may approve."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advances import ledger
from domain.advances.models import (
    OPEN_STATUSES,
    OUTSTANDING_STATUSES,
    Advance,
    AuthorityRule,
    LedgerEntry,
)
from domain.advances.rates import convert
from domain.errors import DomainError
from domain.money import Money
from domain.tenant_settings import get_setting
from i18n import N_


@dataclasses.dataclass(frozen=True)
class Standing:
    """A requester's current advances, as the matrix and approvers look at them."""

    open_count: int
    outstanding: dict[str, Decimal]  # per currency, requests awaiting payment included
    overdue_count: int


async def rule_for(
    session: AsyncSession, *, rank: int | None, kind: str, branch_id: uuid.UUID | None
) -> AuthorityRule | None:
    """The most specific rule for a level and kind: the branch's over the tenant's, a
    kind's over all kinds', the narrowest level range last."""
    if rank is None:
        return None
    rules = list(
        await session.scalars(
            select(AuthorityRule).where(
                AuthorityRule.min_rank <= rank,
                AuthorityRule.max_rank >= rank,
                or_(AuthorityRule.kind.is_(None), AuthorityRule.kind == kind),
                or_(AuthorityRule.branch_id.is_(None), AuthorityRule.branch_id == branch_id),
            )
        )
    )
    if not rules:
        return None
    return max(
        rules,
        key=lambda r: (r.branch_id is not None, r.kind is not None, -(r.max_rank - r.min_rank)),
    )


async def standing(session: AsyncSession, employee_id: uuid.UUID, today: dt.date) -> Standing:
    advances = list(
        await session.scalars(
            select(Advance).where(
                Advance.employee_id == employee_id, Advance.status.in_(OPEN_STATUSES)
            )
        )
    )
    balances = {
        row.advance_id: Decimal(row.total)
        for row in await session.execute(
            select(LedgerEntry.advance_id, func.sum(LedgerEntry.amount).label("total"))
            .where(LedgerEntry.advance_id.in_([a.id for a in advances]))
            .group_by(LedgerEntry.advance_id)
        )
    }
    outstanding: dict[str, Decimal] = {}
    for advance in advances:
        # A request not yet paid out will be owed in full once it is: counting it keeps
        # requests that are each within the limit from passing it together.
        amount = (
            balances.get(advance.id, Decimal(0))
            if advance.status in OUTSTANDING_STATUSES
            else advance.amount
        )
        outstanding[advance.currency] = outstanding.get(advance.currency, Decimal(0)) + amount
    overdue = sum(1 for a in advances if ledger.is_overdue(a, today))
    return Standing(open_count=len(advances), outstanding=outstanding, overdue_count=overdue)


async def check_request(
    session: AsyncSession,
    *,
    employee_id: uuid.UUID,
    rank: int | None,
    branch_id: uuid.UUID,
    kind: str,
    amount: Money,
    today: dt.date,
) -> None:
    """Refuse a request the matrix or the overdue policy does not allow."""
    current = await standing(session, employee_id, today)
    if current.overdue_count and await get_setting(session, "advances.block_when_overdue"):
        raise DomainError(
            N_("A new advance cannot be requested while an earlier one is overdue."),
            field="amount",
        )
    rule = await rule_for(session, rank=rank, kind=kind, branch_id=branch_id)
    if rule is None:
        return
    in_rule = (await convert(session, amount, rule.currency, today)).result
    if rule.max_single_amount is not None and in_rule.amount > rule.max_single_amount:
        raise DomainError(
            N_("Your level may ask for at most {limit} at a time."),
            field="amount",
            limit=f"{rule.max_single_amount.normalize():f} {rule.currency}",
        )
    if rule.max_open_advances is not None and current.open_count >= rule.max_open_advances:
        raise DomainError(
            N_("Your level may have at most {count} open advances."),
            field="amount",
            count=rule.max_open_advances,
        )
    if rule.max_outstanding is not None:
        total = in_rule.amount
        for currency, value in current.outstanding.items():
            total += (
                await convert(session, Money.of(value, currency), rule.currency, today)
            ).result.amount
        if total > rule.max_outstanding:
            raise DomainError(
                N_("This would take your outstanding advances above {limit}."),
                field="amount",
                limit=f"{rule.max_outstanding.normalize():f} {rule.currency}",
            )


async def may_approve(
    session: AsyncSession,
    *,
    rank: int | None,
    branch_id: uuid.UUID | None,
    kind: str,
    amount: Money,
    today: dt.date,
) -> bool:
    """Whether an approver of this level may approve `amount` on their own."""
    rule = await rule_for(session, rank=rank, kind=kind, branch_id=branch_id)
    if rule is None or rule.approval_limit is None:
        return False
    in_rule = (await convert(session, amount, rule.currency, today)).result
    return in_rule.amount <= rule.approval_limit
