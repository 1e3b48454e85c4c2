"""The exit gate: an offboarding case cannot complete while an advance is still owed.

Opening a case fills its clearance list from live data (each open advance with what is
outstanding, each repayment plan), and HR can add items. Completing it is the only way
an employee becomes terminated: other writers of a termination ask `exit_gate` first,
and the database itself refuses a terminated period for someone with an open advance or
an open case, so no import or edit can go around the gate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, clock, outbox
from domain.advances import actions, ledger
from domain.advances.models import (
    OPEN_STATUSES,
    OUTSTANDING_STATUSES,
    Advance,
    ClearanceItem,
    OffboardingCase,
)
from domain.advances.plans import plan_progress
from domain.errors import DomainError, NotFound, PermissionDenied
from domain.identity.actions import Viewer
from domain.money import Money
from domain.people.actions import record_event
from domain.people.models import Employee
from domain.permissions import HR_WRITERS, require_any_role
from domain.validation import optional_text, required_text
from i18n import N_
from tenants.binding import tenant_session

# Who may see offboarding cases and their items.
CASE_READERS = ("admin", "hr", "finance", "auditor")


@dataclasses.dataclass(frozen=True)
class Owed:
    advance_id: uuid.UUID
    purpose: str
    outstanding: Money


class OutstandingAdvances(DomainError):
    """Raised when an exit would complete while advances are still owed."""

    code = "OUTSTANDING_ADVANCES"

    def __init__(self, owed: list[Owed]) -> None:
        listing = "; ".join(
            f"{o.purpose}: {o.outstanding.amount:f} {o.outstanding.currency}" for o in owed
        )
        super().__init__(
            N_("Advances are still outstanding: {advances}."), field="caseId", advances=listing
        )
        self.owed = owed


class ClearanceOpen(DomainError):
    """Raised when an exit would complete with clearance items still open."""

    code = "CLEARANCE_OPEN"


async def submit_resignation(
    actor: Viewer,
    *,
    last_working_day: dt.date,
    reason: str | None = None,
    employee_id: uuid.UUID | None = None,
) -> OffboardingCase:
    """An employee resigns (or HR records a resignation for them)."""
    subject = employee_id or actor.employee_id
    if subject is None:
        raise DomainError(N_("Your user is not linked to an employee."), field="employeeId")
    if subject != actor.employee_id:
        require_any_role(actor, *HR_WRITERS)
    return await _open_case(actor, subject, "resignation", last_working_day, reason)


async def start_termination(
    actor: Viewer, *, employee_id: uuid.UUID, last_working_day: dt.date, reason: str
) -> OffboardingCase:
    """HR ends an employment."""
    require_any_role(actor, *HR_WRITERS)
    return await _open_case(
        actor,
        employee_id,
        "termination",
        last_working_day,
        required_text(reason, "reason", max_length=2000),
    )


async def _open_case(
    actor: Viewer,
    employee_id: uuid.UUID,
    kind: str,
    last_working_day: dt.date,
    reason: str | None,
) -> OffboardingCase:
    async with tenant_session() as session:
        employee = await session.get(Employee, employee_id, with_for_update=True)
        if employee is None:
            raise NotFound(N_("The employee does not exist."), field="employeeId")
        if last_working_day < employee.hire_date:
            raise DomainError(
                N_("The last working day is before the hire date."), field="lastWorkingDay"
            )
        open_case = await session.scalar(
            select(OffboardingCase.id).where(
                OffboardingCase.employee_id == employee_id, OffboardingCase.status == "open"
            )
        )
        if open_case is not None:
            raise DomainError(
                N_("An exit is already in progress for this employee."), field="employeeId"
            )
        case = OffboardingCase(
            id=uuid.uuid4(),
            employee_id=employee_id,
            kind=kind,
            status="open",
            last_working_day=last_working_day,
            reason=optional_text(reason, "reason", max_length=2000),
            opened_by=actor.id,
        )
        session.add(case)
        await session.flush()
        for item in await _clearance_from_live_data(session, employee_id, case.id):
            session.add(item)
        today = clock.local_today(await _zone(session, employee_id))
        await record_event(
            session,
            actor,
            employee_id,
            "status_change",
            max(today, employee.hire_date),
            status="offboarding",
            reason=f"{kind} opened",
        )
        audit.record(
            session,
            actor_id=actor.id,
            action=f"offboarding.{kind}",
            entity_type="offboarding_case",
            entity_id=case.id,
            after={"employee_id": employee_id, "last_working_day": last_working_day},
        )
        await _offboarding_changed(session, case)
    return case


async def _clearance_from_live_data(
    session: AsyncSession, employee_id: uuid.UUID, case_id: uuid.UUID
) -> list[ClearanceItem]:
    items = []
    for advance in await _open_advances(session, employee_id):
        balance = await ledger.balance(session, advance)
        items.append(
            ClearanceItem(
                id=uuid.uuid4(),
                case_id=case_id,
                kind="advance",
                advance_id=advance.id,
                description=f"Advance '{advance.purpose}' ({advance.status}): outstanding "
                f"{balance.amount:f} {balance.currency}",
                status="open",
            )
        )
    advance_ids = list(
        await session.scalars(select(Advance.id).where(Advance.employee_id == employee_id))
    )
    for plans in (await plan_progress(session, advance_ids)).values():
        for plan in plans:
            if plan.status != "active":
                continue
            items.append(
                ClearanceItem(
                    id=uuid.uuid4(),
                    case_id=case_id,
                    kind="repayment_plan",
                    plan_id=plan.plan.id,
                    advance_id=plan.plan.advance_id,
                    description=f"Repayment plan of {plan.amount.amount:f} {plan.amount.currency}"
                    f" in {plan.plan.instalments} instalments: {plan.remaining.amount:f} "
                    f"{plan.remaining.currency} remaining",
                    status="open",
                )
            )
    return items


async def add_clearance_item(actor: Viewer, case_id: uuid.UUID, description: str) -> ClearanceItem:
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        case = await _open(session, case_id)
        item = ClearanceItem(
            id=uuid.uuid4(),
            case_id=case.id,
            kind="custom",
            description=required_text(description, "description", max_length=2000),
            status="open",
        )
        session.add(item)
        audit.record(
            session,
            actor_id=actor.id,
            action="offboarding.add_item",
            entity_type="offboarding_case",
            entity_id=case.id,
            after={"description": item.description},
        )
    return item


async def clear_item(actor: Viewer, item_id: uuid.UUID, resolution: str) -> ClearanceItem:
    """Mark an HR item done (laptop returned, access revoked...)."""
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        item = await _item(session, actor, item_id)
        _require_not_own(actor, await _open(session, item.case_id))
        if item.kind != "custom":
            raise DomainError(
                N_("Money items clear when the money is settled or waived."), field="itemId"
            )
        _resolve(item, actor, "cleared", required_text(resolution, "resolution"))
        audit.record(
            session,
            actor_id=actor.id,
            action="offboarding.clear_item",
            entity_type="offboarding_case",
            entity_id=item.case_id,
            after={"item": item.id, "resolution": item.resolution},
        )
    return item


async def waive_clearance_item(actor: Viewer, item_id: uuid.UUID, reason: str) -> ClearanceItem:
    """Waive an item. For an advance, this writes off what is owed: the actor needs a
    waiving role (finance, admin, HR) and their own authority must cover the amount; the
    waiver is audited with its reason. Nobody waives an item of their own exit."""
    why = required_text(reason, "reason", max_length=2000)
    async with tenant_session() as session:
        item = await _item(session, actor, item_id)
        case = await _open(session, item.case_id)
        if item.kind == "custom":
            require_any_role(actor, *HR_WRITERS)
        else:
            require_any_role(actor, *actions.WAIVER_ROLES)
        _require_not_own(actor, case)
        if item.status != "open":
            raise DomainError(N_("This item is already resolved."), field="itemId")
        if item.kind != "custom" and item.advance_id is not None:
            await actions.waive_in(session, actor, item.advance_id, why)
        _resolve(item, actor, "waived", why)
        audit.record(
            session,
            actor_id=actor.id,
            action="offboarding.waive",
            entity_type="offboarding_case",
            entity_id=item.case_id,
            after={"item": item.id, "kind": item.kind, "reason": why},
        )
    return item


async def complete_offboarding(actor: Viewer, case_id: uuid.UUID) -> OffboardingCase:
    """Terminate the employee, unless an advance is still owed or an item is open."""
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        case = await _open(session, case_id, lock=True)
        owed: list[Owed] = []
        for advance in await _open_advances(session, case.employee_id):
            if advance.status not in OUTSTANDING_STATUSES:
                continue
            balance = await ledger.balance(session, advance)
            if balance.amount > 0:
                owed.append(Owed(advance.id, advance.purpose, balance))
            else:
                # Nothing is owed: the status says otherwise only for an old reversed
                # payment. Put it right (approved, then cancelled below) rather than block.
                await actions.restate_in(session, actor, advance, "nothing owed at exit")
        if owed:
            raise OutstandingAdvances(owed)
        items = list(
            await session.scalars(select(ClearanceItem).where(ClearanceItem.case_id == case.id))
        )
        if any(i.kind == "custom" and i.status == "open" for i in items):
            raise ClearanceOpen(N_("Clear or waive the remaining items first."), field="caseId")
        # Drafts and requested but unpaid advances lapse with the employment.
        for advance in await _open_advances(session, case.employee_id, drafts=True):
            await actions.cancel_in(session, actor, advance, "employment ended")
        for item in items:
            if item.status == "open":
                _resolve(item, actor, "cleared", "settled")
        # Closed first: the exit gate lets a termination through only once nothing is open.
        case.status = "completed"
        case.completed_at = clock.now()
        await session.flush()
        await record_event(
            session,
            actor,
            case.employee_id,
            "termination",
            case.last_working_day + dt.timedelta(days=1),
            reason=f"{case.kind} completed",
        )
        audit.record(
            session,
            actor_id=actor.id,
            action="offboarding.complete",
            entity_type="offboarding_case",
            entity_id=case.id,
            before={"status": "open"},
            after={"status": "completed"},
        )
        await _offboarding_changed(session, case)
    return case


async def _offboarding_changed(session: AsyncSession, case: OffboardingCase) -> None:
    """Tell background consumers (risk analytics) that an exit opened or completed."""
    await outbox.enqueue(
        session,
        "employee.offboarding",
        {
            "employee_id": case.employee_id,
            "case_id": case.id,
            "kind": case.kind,
            "status": case.status,
            "last_working_day": case.last_working_day,
        },
        f"employee.offboarding:{case.id}:{case.status}",
    )


async def _open_advances(
    session: AsyncSession, employee_id: uuid.UUID, *, drafts: bool = False
) -> list[Advance]:
    statuses = (*OPEN_STATUSES, "draft") if drafts else OPEN_STATUSES
    return list(
        await session.scalars(
            select(Advance)
            .where(Advance.employee_id == employee_id, Advance.status.in_(statuses))
            .order_by(Advance.created_at)
            .with_for_update()
        )
    )


async def _open(
    session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False
) -> OffboardingCase:
    case = await session.get(OffboardingCase, case_id, with_for_update=lock)
    if case is None:
        raise NotFound(N_("The offboarding case does not exist."), field="caseId")
    if case.status != "open":
        raise DomainError(N_("This offboarding case is closed."), field="caseId")
    return case


async def _item(session: AsyncSession, actor: Viewer, item_id: uuid.UUID) -> ClearanceItem:
    """The item, locked, if the actor may see offboarding cases (as `offboardingCases`
    shows them); to anyone else it does not exist."""
    item = await session.get(ClearanceItem, item_id, with_for_update=True)
    if item is None or not actor.has_any_role(*CASE_READERS):
        raise NotFound(N_("The clearance item does not exist."), field="itemId")
    return item


def _require_not_own(actor: Viewer, case: OffboardingCase) -> None:
    if actor.employee_id is not None and actor.employee_id == case.employee_id:
        raise PermissionDenied(N_("You cannot resolve items of your own exit."))


def _resolve(item: ClearanceItem, actor: Viewer, status: str, resolution: str) -> None:
    item.status = status
    item.resolved_by = actor.id
    item.resolved_at = clock.now()
    item.resolution = resolution


async def _zone(session: AsyncSession, employee_id: uuid.UUID) -> str:
    from domain.advances.chain import placements
    from domain.organisation.models import Branch
    from tenants.context import current_tenant

    today = clock.local_today(current_tenant().time_zone)
    place = (await placements(session, {employee_id}, today)).get(employee_id)
    branch = await session.get(Branch, place.branch_id) if place and place.branch_id else None
    return branch.time_zone if branch else current_tenant().time_zone
