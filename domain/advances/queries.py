"""Reads of advances, filtered by what the viewer may see where they are loaded.

Employees see their own advances, managers their reporting line's, and admin, hr,
finance and auditors everyone's. "Missing" and "not yours" read the same.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain import clock
from domain.advances.models import (
    OPEN_STATUSES,
    OUTSTANDING_STATUSES,
    Advance,
    ApprovalStep,
    Delegation,
    LedgerEntry,
)
from domain.advances.rates import convert
from domain.errors import DomainError
from domain.identity.actions import Viewer
from domain.money import Money
from domain.organisation.models import Branch
from domain.organisation.queries import in_force, reporting_line, subtree_unit_ids
from domain.people.models import EmployeePeriod
from i18n import N_

ALL_SEEING = ("admin", "hr", "finance", "auditor")
AGING_BUCKETS = ((0, 30, "0-30"), (31, 60, "31-60"), (61, 90, "61-90"), (91, None, "90+"))


async def visible_employees(
    session: AsyncSession, viewer: Viewer, day: dt.date
) -> set[uuid.UUID] | None:
    """The employees whose advances the viewer may see; None means everyone."""
    if viewer.has_any_role(*ALL_SEEING):
        return None
    mine: set[uuid.UUID] = {viewer.employee_id} if viewer.employee_id else set()
    if viewer.has_any_role("manager") and viewer.employee_id:
        mine |= await reporting_line(session, viewer.employee_id, day)
    return mine


@dataclasses.dataclass(frozen=True)
class AdvanceFilter:
    employee_id: uuid.UUID | None = None
    statuses: tuple[str, ...] = ()
    overdue: bool | None = None
    overdue_at: dt.datetime | None = None  # the instant overdue is judged at; default now
    org_unit_id: uuid.UUID | None = None
    branch_id: uuid.UUID | None = None


async def list_advances(
    session: AsyncSession,
    viewer: Viewer,
    filters: AdvanceFilter,
    *,
    first: int,
    after: uuid.UUID | None,
    day: dt.date,
) -> tuple[list[Advance], bool]:
    """A page of advances, newest first, keyset-paginated on (created_at, id)."""
    if not 1 <= first <= 100:
        raise DomainError(N_("Ask for 1 to {count} rows at a time."), field="first", count=100)
    query = await _scoped(session, viewer, select(Advance), day)
    if filters.employee_id is not None:
        query = query.where(Advance.employee_id == filters.employee_id)
    if filters.statuses:
        query = query.where(Advance.status.in_(filters.statuses))
    if filters.branch_id is not None:
        query = query.where(Advance.branch_id == filters.branch_id)
    if filters.org_unit_id is not None:
        units = await subtree_unit_ids(session, [filters.org_unit_id], day)
        query = query.where(
            Advance.employee_id.in_(
                select(EmployeePeriod.employee_id).where(
                    EmployeePeriod.org_unit_id.in_(units or [uuid.uuid4()]),
                    in_force(EmployeePeriod, day),
                )
            )
        )
    if filters.overdue is not None:
        overdue = await _overdue_condition(session, filters.overdue_at)
        query = query.where(overdue if filters.overdue else ~overdue)
    if after is not None:
        anchor = await session.get(Advance, after)
        if anchor is not None:
            query = query.where(
                or_(
                    Advance.created_at < anchor.created_at,
                    and_(Advance.created_at == anchor.created_at, Advance.id < anchor.id),
                )
            )
    rows = list(
        await session.scalars(
            query.order_by(Advance.created_at.desc(), Advance.id.desc()).limit(first + 1)
        )
    )
    return rows[:first], len(rows) > first


async def _overdue_condition(session: AsyncSession, at: dt.datetime | None) -> Any:
    """Overdue at the instant `at` (default now), on each branch's own local calendar."""
    per_branch = [
        and_(Advance.branch_id == branch_id, Advance.expected_settlement_date < day)
        for branch_id, day in (await branch_days(session, at=at)).items()
    ]
    return and_(Advance.status.in_(("disbursed", "partially_settled")), or_(False, *per_branch))


async def _scoped(session: AsyncSession, viewer: Viewer, query: Select[Any], day: dt.date) -> Any:
    visible = await visible_employees(session, viewer, day)
    if visible is not None:
        query = query.where(Advance.employee_id.in_(visible or [uuid.uuid4()]))
    return query


async def get_advance(
    session: AsyncSession, viewer: Viewer, advance_id: uuid.UUID, day: dt.date
) -> Advance | None:
    advance = await session.get(Advance, advance_id)
    if advance is None or not await may_see(session, viewer, advance.id, advance.employee_id, day):
        return None
    return advance


async def may_see(
    session: AsyncSession,
    viewer: Viewer,
    advance_id: uuid.UUID,
    employee_id: uuid.UUID,
    day: dt.date,
) -> bool:
    """Whether the viewer may see one advance: as the list shows it, or as someone in its
    approval chain (an approver, a delegate of one today, or whoever decided a step), who
    must see what they decide on."""
    visible = await visible_employees(session, viewer, day)
    if visible is None or employee_id in visible:
        return True
    if viewer.employee_id is None:
        return False
    delegators = select(Delegation.delegator_id).where(
        Delegation.delegate_id == viewer.employee_id,
        Delegation.starts_on <= day,
        Delegation.ends_on >= day,
    )
    in_chain = await session.scalar(
        select(ApprovalStep.id)
        .where(
            ApprovalStep.advance_id == advance_id,
            or_(
                ApprovalStep.approver_id == viewer.employee_id,
                ApprovalStep.approver_id.in_(delegators),
                ApprovalStep.decided_by == viewer.id,
            ),
        )
        .limit(1)
    )
    return in_chain is not None


async def balances(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decimal]:
    if not ids:
        return {}
    rows = await session.execute(
        select(LedgerEntry.advance_id, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.advance_id.in_(list(ids)))
        .group_by(LedgerEntry.advance_id)
    )
    return {advance_id: Decimal(total) for advance_id, total in rows}


async def branch_days(
    session: AsyncSession, *, at: dt.datetime | None = None
) -> dict[uuid.UUID, dt.date]:
    """The date in every branch's own time zone at the instant `at` (default: now)."""
    return {
        row.id: clock.local_today(row.time_zone, at)
        for row in await session.execute(select(Branch.id, Branch.time_zone))
    }


async def inbox(
    session: AsyncSession, viewer: Viewer, *, first: int, after: uuid.UUID | None
) -> tuple[list[tuple[ApprovalStep, Advance]], bool]:
    """Steps whose turn it is and that the viewer may decide, oldest first."""
    if not 1 <= first <= 100:
        raise DomainError(N_("Ask for 1 to {count} rows at a time."), field="first", count=100)
    today = clock.local_today(_zone())
    mine = []
    if viewer.employee_id is not None:
        delegators = await session.scalars(
            select(Delegation.delegator_id).where(
                Delegation.delegate_id == viewer.employee_id,
                Delegation.starts_on <= today,
                Delegation.ends_on >= today,
            )
        )
        mine.append(ApprovalStep.approver_id.in_([viewer.employee_id, *delegators]))
    roles = [r for r in viewer.roles if r in ("finance",)]
    if roles:
        mine.append(ApprovalStep.approver_role.in_(roles))
    if not mine:
        return [], False
    # A step's turn has come when no earlier step of its advance is pending. Asked per
    # candidate step (an index probe on advance and seq), the cost follows the viewer's own
    # pending steps, not every pending step of the tenant.
    earlier = aliased(ApprovalStep)
    turn_has_come = ~exists().where(
        earlier.advance_id == ApprovalStep.advance_id,
        earlier.status == "pending",
        earlier.seq < ApprovalStep.seq,
    )
    query = (
        select(ApprovalStep, Advance)
        .join(Advance, Advance.id == ApprovalStep.advance_id)
        .where(ApprovalStep.status == "pending", or_(*mine), turn_has_come)
    )
    if viewer.employee_id is not None:
        query = query.where(Advance.employee_id != viewer.employee_id)
    if after is not None:
        anchor = await session.get(ApprovalStep, after)
        if anchor is not None:
            query = query.where(
                or_(
                    ApprovalStep.created_at > anchor.created_at,
                    and_(ApprovalStep.created_at == anchor.created_at, ApprovalStep.id > anchor.id),
                )
            )
    rows = list(
        await session.execute(
            query.order_by(ApprovalStep.created_at, ApprovalStep.id).limit(first + 1)
        )
    )
    pairs = [(step, advance) for step, advance in rows]
    return pairs[:first], len(pairs) > first


def _zone() -> str:
    from tenants.context import current_tenant

    return current_tenant().time_zone


@dataclasses.dataclass(frozen=True)
class CreditProfile:
    """An employee's advance history, as an approver sees it when deciding."""

    outstanding: list[Money]
    open_advances: int
    overdue_count: int
    overdue_amount: list[Money]
    average_days_to_settle: Decimal | None
    rejections_12_months: int
    write_offs_12_months: int
    written_off_12_months: list[Money]


async def credit_profile(
    session: AsyncSession, employee_id: uuid.UUID, *, at: dt.datetime | None = None
) -> CreditProfile:
    return (await credit_profiles(session, [employee_id], at=at))[employee_id]


async def credit_profiles(
    session: AsyncSession, employee_ids: Sequence[uuid.UUID], *, at: dt.datetime | None = None
) -> dict[uuid.UUID, CreditProfile]:
    """The credit profiles of several employees in two queries, whatever their number
    (their advances with each one's balance, and every branch's local date)."""
    now = at or clock.now()
    wanted = list(dict.fromkeys(employee_ids))
    by_employee: dict[uuid.UUID, list[Any]] = {e: [] for e in wanted}
    if wanted:
        # Plain rows, not ORM objects: a page of requesters may hold a thousand advances.
        rows = await session.execute(
            select(
                Advance.employee_id,
                Advance.branch_id,
                Advance.currency,
                Advance.amount,
                Advance.status,
                Advance.expected_settlement_date,
                Advance.disbursed_at,
                Advance.decided_at,
                Advance.closed_at,
                func.coalesce(func.sum(LedgerEntry.amount), 0).label("owed"),
            )
            .outerjoin(LedgerEntry, LedgerEntry.advance_id == Advance.id)
            .where(Advance.employee_id.in_(wanted))
            .group_by(Advance.id)
        )
        for row in rows:
            by_employee[row.employee_id].append(row)
    days = await branch_days(session, at=now) if any(by_employee.values()) else {}
    return {
        employee_id: _profile(advances, days, now) for employee_id, advances in by_employee.items()
    }


def _profile(
    advances: list[Any], days: dict[uuid.UUID, dt.date], now: dt.datetime
) -> CreditProfile:
    year_ago = now - dt.timedelta(days=365)
    outstanding: dict[str, Decimal] = defaultdict(Decimal)
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    overdue_count = 0
    for advance in advances:
        if advance.status in OUTSTANDING_STATUSES:
            outstanding[advance.currency] += advance.owed
            # As ledger.is_overdue judges it: past the date on the branch's own calendar.
            if days[advance.branch_id] > advance.expected_settlement_date:
                overdue_count += 1
                overdue[advance.currency] += advance.owed
    settled = [a for a in advances if a.status == "settled" and a.disbursed_at and a.closed_at]
    average = None
    if settled:
        total_days = sum((a.closed_at - a.disbursed_at).days for a in settled)
        average = (Decimal(total_days) / len(settled)).quantize(Decimal("0.1"))
    written: dict[str, Decimal] = defaultdict(Decimal)
    write_offs = 0
    for advance in advances:
        if advance.status == "written_off" and advance.closed_at and advance.closed_at >= year_ago:
            write_offs += 1
            written[advance.currency] += advance.amount - max(advance.owed, 0)
    rejections = sum(
        1 for a in advances if a.status == "rejected" and a.decided_at and a.decided_at >= year_ago
    )
    return CreditProfile(
        outstanding=[Money.of(v, c) for c, v in sorted(outstanding.items())],
        open_advances=sum(1 for a in advances if a.status in OPEN_STATUSES),
        overdue_count=overdue_count,
        overdue_amount=[Money.of(v, c) for c, v in sorted(overdue.items())],
        average_days_to_settle=average,
        rejections_12_months=rejections,
        write_offs_12_months=write_offs,
        written_off_12_months=[Money.of(v, c) for c, v in sorted(written.items())],
    )


@dataclasses.dataclass(frozen=True)
class AgingRow:
    group: str  # "org_unit" or "branch"
    group_id: uuid.UUID | None
    bucket: str
    currency: str
    amount: Decimal
    converted: Decimal  # in the tenant's currency
    count: int


async def aging(
    session: AsyncSession, viewer: Viewer, *, tenant_currency: str, as_of: dt.date | None = None
) -> list[AgingRow]:
    """Outstanding overdue money by days overdue, per org unit and per branch, in each
    currency and converted to the tenant's currency at the rate of the day.

    As of a date, every branch is judged on that local date; by default each branch on
    its own today. One grouped query does the work in the database, whatever the number
    of advances.
    """
    day = as_of or clock.local_today(_zone())
    visible = await visible_employees(session, viewer, day)
    days = await branch_days(session)
    if as_of is not None:
        days = dict.fromkeys(days, as_of)
    local_today = _branch_today_case(days, day)
    # Only the entries of open, overdue advances are summed: closed advances, most of any
    # ledger, are never read. Advance.id is the key, so its other columns group with it.
    owed = func.sum(LedgerEntry.amount)
    per_advance = (
        select(
            Advance.branch_id,
            EmployeePeriod.org_unit_id,
            Advance.currency,
            (local_today - Advance.expected_settlement_date).label("days"),
            owed.label("owed"),
        )
        .join(LedgerEntry, LedgerEntry.advance_id == Advance.id)
        .outerjoin(
            EmployeePeriod,
            and_(EmployeePeriod.employee_id == Advance.employee_id, in_force(EmployeePeriod, day)),
        )
        .where(
            Advance.status.in_(("disbursed", "partially_settled")),
            Advance.expected_settlement_date < local_today,
        )
        .group_by(Advance.id, EmployeePeriod.org_unit_id)
        .having(owed > 0)
    )
    if visible is not None:
        per_advance = per_advance.where(Advance.employee_id.in_(visible or [uuid.uuid4()]))
    inner = per_advance.subquery()
    bucket = _bucket_case(inner.c.days).label("bucket")
    # Both groupings in one pass over the advances.
    rows = await session.execute(
        select(
            func.grouping(inner.c.org_unit_id).label("by_branch"),
            inner.c.org_unit_id,
            inner.c.branch_id,
            bucket,
            inner.c.currency,
            func.sum(inner.c.owed),
            func.count(),
        ).group_by(
            func.grouping_sets(
                tuple_(inner.c.org_unit_id, bucket, inner.c.currency),
                tuple_(inner.c.branch_id, bucket, inner.c.currency),
            )
        )
    )
    grouped: dict[str, list[tuple[Any, ...]]] = {"org_unit": [], "branch": []}
    for by_branch, unit_id, branch_id, label, currency, amount, count in rows:
        if by_branch:
            grouped["branch"].append((branch_id, label, currency, amount, count))
        else:
            grouped["org_unit"].append((unit_id, label, currency, amount, count))
    rates: dict[str, Decimal] = {}
    result = []
    for group, found in grouped.items():
        for group_id, label, currency, amount, count in found:
            if currency not in rates:
                one = await convert(session, Money.of(1, currency), tenant_currency, day)
                rates[currency] = one.rate if one.rate is not None else Decimal(1)
            converted = Money.of(Decimal(amount) * rates[currency], tenant_currency).amount
            result.append(
                AgingRow(group, group_id, label, currency, Decimal(amount), converted, int(count))
            )
    order = {label: i for i, (_, _, label) in enumerate(AGING_BUCKETS)}
    return sorted(result, key=lambda r: (r.group, str(r.group_id), order[r.bucket], r.currency))


def _branch_today_case(days: dict[uuid.UUID, dt.date], default: dt.date) -> Any:
    from sqlalchemy import case, literal

    if not days:
        return literal(default)
    return case(
        *((Advance.branch_id == branch_id, literal(day)) for branch_id, day in days.items()),
        else_=literal(default),
    )


def _bucket_case(days: Any) -> Any:
    from sqlalchemy import case

    return case((days <= 30, "0-30"), (days <= 60, "31-60"), (days <= 90, "61-90"), else_="90+")
