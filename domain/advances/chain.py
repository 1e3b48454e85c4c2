"""Computing an approval chain from the organisation, as it stands on a day.

The chain is: the requester's manager (through the position line; a vacant position passes
up), the head of the requester's org unit, then, when the amount is beyond what those
approvers' levels may approve, the first holder further up the line whose level may, or
else the tenant's named approvers above the matrix (e.g. finance director, CEO); finally
finance. Nobody approves their own request, and nobody appears twice. A request that
nobody available may approve (no level covers it and no named approver is left) is
refused rather than left to finance alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from domain.advances.authority import may_approve
from domain.advances.models import AuthorityRule
from domain.errors import DomainError
from domain.money import Money
from domain.organisation.models import JobLevel, OrgUnitVersion
from domain.organisation.queries import in_force, incumbents
from domain.people.models import EmployeePeriod
from domain.tenant_settings import get_setting
from i18n import N_


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    role: str  # manager, unit_head, escalation, named:<role>, finance
    approver_id: uuid.UUID | None  # an employee, or None for a role step
    approver_role: str | None  # a user role (finance) for role steps
    reason: str


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where someone stands on a day: position, unit, branch and level rank."""

    employee_id: uuid.UUID
    position_id: uuid.UUID | None
    org_unit_id: uuid.UUID | None
    branch_id: uuid.UUID | None
    rank: int | None
    status: str


async def placements(
    session: AsyncSession, employee_ids: set[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, Placement]:
    if not employee_ids:
        return {}
    rows = await session.execute(
        select(
            EmployeePeriod.employee_id,
            EmployeePeriod.position_id,
            EmployeePeriod.org_unit_id,
            EmployeePeriod.branch_id,
            JobLevel.rank,
            EmployeePeriod.status,
        )
        .outerjoin(JobLevel, JobLevel.id == EmployeePeriod.job_level_id)
        .where(EmployeePeriod.employee_id.in_(list(employee_ids)), in_force(EmployeePeriod, day))
    )
    return {
        row.employee_id: Placement(
            row.employee_id, row.position_id, row.org_unit_id, row.branch_id, row.rank, row.status
        )
        for row in rows
    }


async def _line_above(session: AsyncSession, position_id: uuid.UUID) -> list[uuid.UUID]:
    """The positions above `position_id`, nearest first."""
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE up(id, depth) AS (
              SELECT reports_to_id, 1 FROM positions WHERE id = :start
              UNION ALL
              SELECT p.reports_to_id, u.depth + 1 FROM positions p JOIN up u ON p.id = u.id
               WHERE u.depth < 64
            )
            SELECT id FROM up WHERE id IS NOT NULL ORDER BY depth
            """
        ),
        {"start": position_id},
    )
    return [row[0] for row in rows]


async def _holder(
    session: AsyncSession, position_id: uuid.UUID, day: dt.date, exclude: set[uuid.UUID]
) -> uuid.UUID | None:
    holders = (await incumbents(session, [position_id], day)).get(position_id, [])
    for _, employee_id in holders:
        if employee_id not in exclude:
            return employee_id
    return None


async def _unit_head(
    session: AsyncSession, unit_id: uuid.UUID | None, day: dt.date, exclude: set[uuid.UUID]
) -> uuid.UUID | None:
    """The holder of the unit's head position; a vacant head passes to the parent unit's."""
    seen: set[uuid.UUID] = set()
    while unit_id is not None and unit_id not in seen:
        seen.add(unit_id)
        version = await session.scalar(
            select(OrgUnitVersion).where(
                OrgUnitVersion.org_unit_id == unit_id, in_force(OrgUnitVersion, day)
            )
        )
        if version is None:
            return None
        if version.head_position_id is not None:
            holder = await _holder(session, version.head_position_id, day, exclude)
            if holder is not None:
                return holder
        unit_id = version.parent_id
    return None


async def plan_chain(
    session: AsyncSession, *, requester_id: uuid.UUID, kind: str, amount: Money, day: dt.date
) -> list[PlannedStep]:
    """The approval chain for a request, as the organisation stands on `day`."""
    me = (await placements(session, {requester_id}, day)).get(requester_id)
    if me is None:
        raise DomainError(N_("The employee has no position on that date."), field="employeeId")
    taken: set[uuid.UUID] = {requester_id}
    steps: list[PlannedStep] = []
    line = await _line_above(session, me.position_id) if me.position_id else []

    for position_id in line:
        manager = await _holder(session, position_id, day, taken)
        if manager is not None:
            steps.append(PlannedStep("manager", manager, None, "reporting line"))
            taken.add(manager)
            break

    head = await _unit_head(session, me.org_unit_id, day, taken)
    if head is not None:
        steps.append(PlannedStep("unit_head", head, None, "head of the org unit"))
        taken.add(head)

    # With no authority matrix at all there is no limit to escalate past.
    has_matrix = await session.scalar(select(AuthorityRule.id).limit(1)) is not None
    if has_matrix and not await _covered(session, steps, kind, amount, day):
        escalated = await _escalate(session, line, kind, amount, day, taken)
        if escalated is not None:
            steps.append(PlannedStep("escalation", escalated, None, "approval limit"))
            taken.add(escalated)
        else:
            named_steps = 0
            for named in await get_setting(session, "advances.named_approvers"):
                holder = await _holder(session, uuid.UUID(named["position_id"]), day, taken)
                if holder is not None:
                    steps.append(
                        PlannedStep(
                            f"named:{named['role']}", holder, None, "above the authority matrix"
                        )
                    )
                    taken.add(holder)
                    named_steps += 1
            if not named_steps:
                # Finance alone would then decide an amount nobody's authority covers (the
                # CEO asking, with only the CEO named above the matrix).
                raise DomainError(
                    N_(
                        "Nobody available may approve this amount: an administrator can name "
                        "an approver above the authority matrix."
                    ),
                    field="amount",
                )

    steps.append(PlannedStep("finance", None, "finance", "finance review"))
    return steps


async def _covered(
    session: AsyncSession, steps: list[PlannedStep], kind: str, amount: Money, day: dt.date
) -> bool:
    approvers = {s.approver_id for s in steps if s.approver_id is not None}
    where = await placements(session, approvers, day)
    for placement in where.values():
        if await may_approve(
            session,
            rank=placement.rank,
            branch_id=placement.branch_id,
            kind=kind,
            amount=amount,
            today=day,
        ):
            return True
    return False


async def _escalate(
    session: AsyncSession,
    line: list[uuid.UUID],
    kind: str,
    amount: Money,
    day: dt.date,
    taken: set[uuid.UUID],
) -> uuid.UUID | None:
    """The first holder up the line, not already in the chain, whose level may approve."""
    for position_id in line:
        holder = await _holder(session, position_id, day, taken)
        if holder is None:
            continue
        placement = (await placements(session, {holder}, day)).get(holder)
        if placement and await may_approve(
            session,
            rank=placement.rank,
            branch_id=placement.branch_id,
            kind=kind,
            amount=amount,
            today=day,
        ):
            return holder
    return None
