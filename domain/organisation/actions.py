"""The only writers of branches, job levels, org units and positions.

Each action checks the actor's roles, validates its input before writing, runs in one
tenant transaction and records an audit entry in that same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit
from domain.errors import DomainError, NotFound
from domain.identity.actions import Viewer
from domain.money import Money, currency_code
from domain.organisation.models import (
    ORG_UNIT_KINDS,
    Branch,
    JobLevel,
    OrgUnit,
    OrgUnitVersion,
    Position,
)
from domain.people.models import EmployeePeriod
from domain.permissions import HR_WRITERS, require_any_role
from domain.validation import country_code, locale_tag, optional_text, required_text, time_zone
from i18n import N_
from tenants.binding import tenant_session


async def create_branch(
    actor: Viewer,
    *,
    code: str,
    name: str,
    country: str,
    currency: str,
    time_zone_name: str,
    locale: str,
    address: str | None = None,
    parent_id: uuid.UUID | None = None,
) -> Branch:
    require_any_role(actor, *HR_WRITERS)
    branch = Branch(
        id=uuid.uuid4(),
        code=required_text(code, "code", max_length=32),
        name=required_text(name, "name"),
        country=country_code(country),
        currency=currency_code(currency),
        time_zone=time_zone(time_zone_name),
        locale=locale_tag(locale),
        address=optional_text(address, "address", max_length=2000),
        parent_id=parent_id,
    )
    async with tenant_session() as session:
        if parent_id is not None and await session.get(Branch, parent_id) is None:
            raise NotFound(N_("The parent branch does not exist."), field="parentId")
        await _unique(session, Branch.code, branch.code, "code")
        session.add(branch)
        audit.record(
            session,
            actor_id=actor.id,
            action="branch.create",
            entity_type="branch",
            entity_id=branch.id,
            after=_branch_dict(branch),
        )
    return branch


async def create_job_level(
    actor: Viewer,
    *,
    code: str,
    rank: int,
    title: str,
    pay_min: Decimal | None = None,
    pay_max: Decimal | None = None,
    pay_currency: str | None = None,
) -> JobLevel:
    require_any_role(actor, *HR_WRITERS)
    if (pay_min is not None or pay_max is not None) and not pay_currency:
        raise DomainError(N_("A pay band needs a currency."), field="payCurrency")
    low = Money.of(pay_min, pay_currency, field="payMin") if pay_min is not None else None
    high = Money.of(pay_max, pay_currency, field="payMax") if pay_max is not None else None
    if low and high and low.amount > high.amount:
        raise DomainError(N_("The pay band's minimum is above its maximum."), field="payMin")
    if low and low.amount < 0:
        raise DomainError(N_("Amounts cannot be negative."), field="payMin")
    level = JobLevel(
        id=uuid.uuid4(),
        code=required_text(code, "code", max_length=32),
        rank=rank,
        title=required_text(title, "title"),
        pay_min=low.amount if low else None,
        pay_max=high.amount if high else None,
        pay_currency=currency_code(pay_currency) if pay_currency else None,
    )
    async with tenant_session() as session:
        await _unique(session, JobLevel.code, level.code, "code")
        session.add(level)
        audit.record(
            session,
            actor_id=actor.id,
            action="job_level.create",
            entity_type="job_level",
            entity_id=level.id,
            after={"code": level.code, "rank": rank, "title": level.title},
        )
    return level


async def create_org_unit(
    actor: Viewer,
    *,
    name: str,
    kind: str,
    branch_id: uuid.UUID,
    effective_date: dt.date,
    parent_id: uuid.UUID | None = None,
    cost_centre: str | None = None,
    code: str | None = None,
) -> OrgUnit:
    require_any_role(actor, *HR_WRITERS)
    if kind not in ORG_UNIT_KINDS:
        raise DomainError(N_("Unknown kind of org unit."), field="kind")
    unit = OrgUnit(id=uuid.uuid4(), code=optional_text(code, "code", max_length=64), kind=kind)
    version = OrgUnitVersion(
        id=uuid.uuid4(),
        org_unit_id=unit.id,
        valid_from=effective_date,
        valid_to=None,
        name=required_text(name, "name"),
        parent_id=parent_id,
        branch_id=branch_id,
        cost_centre=optional_text(cost_centre, "costCentre", max_length=64),
    )
    async with tenant_session() as session:
        if await session.get(Branch, branch_id) is None:
            raise NotFound(N_("The branch does not exist."), field="branchId")
        if parent_id is not None and await version_at(session, parent_id, effective_date) is None:
            raise NotFound(N_("The parent unit does not exist on that date."), field="parentId")
        if unit.code:
            await _unique(session, OrgUnit.code, unit.code, "code")
        session.add(unit)
        await session.flush()
        session.add(version)
        audit.record(
            session,
            actor_id=actor.id,
            action="org_unit.create",
            entity_type="org_unit",
            entity_id=unit.id,
            after=_version_dict(version) | {"kind": kind},
        )
    return unit


async def update_org_unit(
    actor: Viewer,
    unit_id: uuid.UUID,
    *,
    effective_date: dt.date,
    name: str | None = None,
    cost_centre: str | None = None,
    head_position_id: uuid.UUID | None = None,
) -> OrgUnitVersion:
    """Rename a unit, change its cost centre or head, from `effective_date` on."""
    require_any_role(actor, *HR_WRITERS)
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = required_text(name, "name")
    if cost_centre is not None:
        changes["cost_centre"] = optional_text(cost_centre, "costCentre", max_length=64)
    if head_position_id is not None:
        changes["head_position_id"] = head_position_id
    if not changes:
        raise DomainError(N_("Nothing to change."))
    async with tenant_session() as session:
        if head_position_id is not None:
            position = await session.get(Position, head_position_id)
            if position is None or position.org_unit_id != unit_id:
                raise DomainError(
                    N_("The head position must be a position of this unit."),
                    field="headPositionId",
                )
        version = await _apply_from(session, actor, unit_id, effective_date, "update", changes)
    return version


async def move_org_unit(
    actor: Viewer, unit_id: uuid.UUID, *, new_parent_id: uuid.UUID, effective_date: dt.date
) -> OrgUnitVersion:
    """Move a unit, and so its whole subtree, under another parent from `effective_date` on."""
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        if await version_at(session, new_parent_id, effective_date) is None:
            raise NotFound(
                N_("The new parent unit does not exist on that date."), field="newParentId"
            )
        # The move must not create a cycle on its date nor on any later change of the tree.
        checkpoints = set(
            await session.scalars(
                select(OrgUnitVersion.valid_from).where(OrgUnitVersion.valid_from > effective_date)
            )
        )
        for day in sorted({effective_date, *checkpoints}):
            if unit_id in await ancestors(session, new_parent_id, day, include_self=True):
                raise DomainError(
                    N_("A unit cannot move under itself or one of its own sub-units."),
                    field="newParentId",
                )
        version = await _apply_from(
            session, actor, unit_id, effective_date, "move", {"parent_id": new_parent_id}
        )
    return version


async def close_org_unit(
    actor: Viewer, unit_id: uuid.UUID, *, effective_date: dt.date
) -> OrgUnitVersion:
    """Close a unit from `effective_date`; refused while open sub-units or staff remain."""
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        current = await version_at(session, unit_id, effective_date)
        if current is None:
            raise NotFound(N_("The unit does not exist on that date."), field="id")
        children = await session.scalar(
            select(func.count())
            .select_from(OrgUnitVersion)
            .where(
                OrgUnitVersion.parent_id == unit_id,
                (OrgUnitVersion.valid_to.is_(None)) | (OrgUnitVersion.valid_to > effective_date),
            )
        )
        if children:
            raise DomainError(N_("Close or move the unit's sub-units first."), field="id")
        staff = await session.scalar(
            select(func.count())
            .select_from(EmployeePeriod)
            .where(
                EmployeePeriod.org_unit_id == unit_id,
                EmployeePeriod.status != "terminated",
                (EmployeePeriod.valid_to.is_(None)) | (EmployeePeriod.valid_to > effective_date),
            )
        )
        if staff:
            raise DomainError(N_("Move the unit's staff elsewhere first."), field="id")
        before = _version_dict(current)
        if current.valid_from == effective_date:
            raise DomainError(N_("A unit cannot close on the day it opens."), field="effectiveDate")
        # Changes scheduled after the closing date no longer apply.
        await session.execute(
            delete(OrgUnitVersion).where(
                OrgUnitVersion.org_unit_id == unit_id,
                OrgUnitVersion.valid_from > effective_date,
            )
        )
        current.valid_to = effective_date
        audit.record(
            session,
            actor_id=actor.id,
            action="org_unit.close",
            entity_type="org_unit",
            entity_id=unit_id,
            before=before,
            after={"closed_on": effective_date},
        )
    return current


async def create_position(
    actor: Viewer,
    *,
    title: str,
    org_unit_id: uuid.UUID,
    opened_on: dt.date,
    job_level_id: uuid.UUID | None = None,
    reports_to_id: uuid.UUID | None = None,
    headcount: int = 1,
    code: str | None = None,
) -> Position:
    require_any_role(actor, *HR_WRITERS)
    if headcount < 0 or headcount > 100_000:
        raise DomainError(N_("Headcount must be between 0 and 100000."), field="headcount")
    position = Position(
        id=uuid.uuid4(),
        code=optional_text(code, "code", max_length=64),
        title=required_text(title, "title"),
        org_unit_id=org_unit_id,
        job_level_id=job_level_id,
        reports_to_id=reports_to_id,
        headcount=headcount,
        opened_on=opened_on,
    )
    async with tenant_session() as session:
        if await version_at(session, org_unit_id, opened_on) is None:
            raise NotFound(N_("The unit does not exist on that date."), field="orgUnitId")
        if job_level_id is not None and await session.get(JobLevel, job_level_id) is None:
            raise NotFound(N_("The job level does not exist."), field="jobLevelId")
        if reports_to_id is not None and await session.get(Position, reports_to_id) is None:
            raise NotFound(N_("The position to report to does not exist."), field="reportsToId")
        if position.code:
            await _unique(session, Position.code, position.code, "code")
        session.add(position)
        audit.record(
            session,
            actor_id=actor.id,
            action="position.create",
            entity_type="position",
            entity_id=position.id,
            after={
                "title": position.title,
                "org_unit_id": org_unit_id,
                "reports_to_id": reports_to_id,
                "job_level_id": job_level_id,
            },
        )
    return position


# --- helpers shared with queries -------------------------------------------------------------


async def version_at(
    session: AsyncSession, unit_id: uuid.UUID, day: dt.date
) -> OrgUnitVersion | None:
    """The version of a unit in force on `day`, or None when it is not open then."""
    result: OrgUnitVersion | None = await session.scalar(
        select(OrgUnitVersion).where(
            OrgUnitVersion.org_unit_id == unit_id,
            OrgUnitVersion.valid_from <= day,
            (OrgUnitVersion.valid_to.is_(None)) | (OrgUnitVersion.valid_to > day),
        )
    )
    return result


async def ancestors(
    session: AsyncSession, unit_id: uuid.UUID, day: dt.date, *, include_self: bool = False
) -> list[uuid.UUID]:
    """The chain of parents of a unit on `day`, nearest first."""
    chain = [unit_id] if include_self else []
    seen = {unit_id}
    current: uuid.UUID | None = unit_id
    while current is not None:
        version = await version_at(session, current, day)
        current = version.parent_id if version else None
        if current is None or current in seen:
            break
        seen.add(current)
        chain.append(current)
    return chain


async def _apply_from(
    session: AsyncSession,
    actor: Viewer,
    unit_id: uuid.UUID,
    day: dt.date,
    action: str,
    changes: dict[str, object],
) -> OrgUnitVersion:
    """Split the unit's history at `day` and apply `changes` to every version from then on."""
    covering = await version_at(session, unit_id, day)
    if covering is None:
        raise NotFound(N_("The unit does not exist on that date."), field="id")
    before = _version_dict(covering)
    if covering.valid_from < day:
        tail = OrgUnitVersion(
            id=uuid.uuid4(),
            org_unit_id=unit_id,
            valid_from=day,
            valid_to=covering.valid_to,
            name=covering.name,
            parent_id=covering.parent_id,
            branch_id=covering.branch_id,
            cost_centre=covering.cost_centre,
            head_position_id=covering.head_position_id,
        )
        covering.valid_to = day
        await session.flush()
        session.add(tail)
        await session.flush()
    later = await session.scalars(
        select(OrgUnitVersion).where(
            OrgUnitVersion.org_unit_id == unit_id, OrgUnitVersion.valid_from >= day
        )
    )
    first: OrgUnitVersion | None = None
    for version in sorted(later, key=lambda v: v.valid_from):
        for key, value in changes.items():
            setattr(version, key, value)
        first = first or version
    assert first is not None
    audit.record(
        session,
        actor_id=actor.id,
        action=f"org_unit.{action}",
        entity_type="org_unit",
        entity_id=unit_id,
        before=before,
        after=_version_dict(first) | {"effective_date": day},
    )
    return first


async def _unique(session: AsyncSession, column: object, value: str, field: str) -> None:
    taken = await session.scalar(select(column).where(column == value))  # type: ignore[arg-type]
    if taken is not None:
        raise DomainError(N_("{value} is already in use."), field=field, value=value)


def _branch_dict(branch: Branch) -> dict[str, object]:
    return {
        "code": branch.code,
        "name": branch.name,
        "country": branch.country,
        "currency": branch.currency,
        "time_zone": branch.time_zone,
        "locale": branch.locale,
        "parent_id": branch.parent_id,
    }


def _version_dict(version: OrgUnitVersion) -> dict[str, object]:
    return {
        "name": version.name,
        "parent_id": version.parent_id,
        "branch_id": version.branch_id,
        "cost_centre": version.cost_centre,
        "head_position_id": version.head_position_id,
        "valid_from": version.valid_from,
        "valid_to": version.valid_to,
    }


__all__ = [
    "ancestors",
    "close_org_unit",
    "create_branch",
    "create_job_level",
    "create_org_unit",
    "create_position",
    "move_org_unit",
    "update_org_unit",
    "version_at",
]
