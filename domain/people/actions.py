"""The only writers of employees and their history.

Every change is an effective-dated event. After recording one, the employee's periods are
rebuilt from all events in the same transaction; an event that makes the history
inconsistent raises and nothing is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, crypto, outbox
from domain.advances.exit_gate import require_open_exit
from domain.errors import DomainError, NotFound
from domain.identity.actions import Viewer
from domain.money import Money
from domain.organisation.models import Branch, JobLevel, OrgUnit, Position
from domain.people.history import PositionFacts, replay, to_rows
from domain.people.models import (
    SALARY_PERIODS,
    Employee,
    EmployeePeriod,
    EmploymentEvent,
    PerformanceReview,
    ProjectAssignment,
    RewardOrPenalty,
)
from domain.permissions import HR_WRITERS, require_any_role
from domain.validation import optional_text, required_text
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

EMPLOYEE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,31}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
RATING_SCALE = (Decimal(1), Decimal(5))
HIRE_STATUSES = ("onboarding", "active")


# --- rules shared with imports ---------------------------------------------------------------


def employee_number(value: str | None, field: str = "employeeNumber") -> str:
    """The trimmed employee number, or a `DomainError` when it breaks the pattern."""
    number = (value or "").strip()
    if not EMPLOYEE_NUMBER.fullmatch(number):
        raise DomainError(
            N_("An employee number has 1 to 32 letters, digits or . _ / -."), field=field
        )
    return number


def work_email(value: str | None, field: str = "workEmail") -> str | None:
    """The trimmed work e-mail address, None when blank, or a `DomainError`."""
    email = optional_text(value, field, max_length=254)
    if email and not EMAIL.fullmatch(email):
        raise DomainError(N_("Enter a valid e-mail address."), field=field)
    return email


def check_birth_before_hire(
    birth_date: dt.date | None, hire_date: dt.date, field: str = "birthDate"
) -> None:
    if birth_date and birth_date >= hire_date:
        raise DomainError(N_("The birth date must be before the hire date."), field=field)


def check_hire_status(status: str, field: str = "status") -> None:
    if status not in HIRE_STATUSES:
        raise DomainError(N_("A new hire is onboarding or active."), field=field)


def checked_salary(
    salary: SalaryInput, default_currency: str, field: str = "salary"
) -> tuple[Money, str]:
    """The salary as exact money in its currency (default: the branch's) and its period."""
    if salary.period not in SALARY_PERIODS:
        raise DomainError(N_("The pay period is hour, month or year."), field=f"{field}.period")
    money = Money.of(salary.amount, salary.currency or default_currency, field=f"{field}.amount")
    if money.amount <= 0:
        raise DomainError(N_("A salary is above zero."), field=f"{field}.amount")
    return money, salary.period


def check_rating(rating: Decimal, field: str = "rating") -> None:
    low, high = RATING_SCALE
    if not low <= rating <= high:
        raise DomainError(
            N_("A rating is between {low} and {high}."), field=field, low=low, high=high
        )


@dataclasses.dataclass(frozen=True)
class SalaryInput:
    amount: Decimal
    currency: str | None = None  # default: the branch's currency
    period: str = "month"


@dataclasses.dataclass(frozen=True)
class HireInput:
    employee_number: str
    given_name: str
    family_name: str
    hire_date: dt.date
    branch_id: uuid.UUID
    position_id: uuid.UUID | None = None
    org_unit_id: uuid.UUID | None = None
    local_name: str | None = None
    preferred_name: str | None = None
    work_email: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = None
    national_id: str | None = None
    bank_account: str | None = None
    salary: SalaryInput | None = None
    status: str = "active"


async def hire_employee(
    actor: Viewer, data: HireInput, *, today: dt.date | None = None
) -> Employee:
    require_any_role(actor, *HR_WRITERS)
    tenant = current_tenant()
    number = employee_number(data.employee_number)
    email = work_email(data.work_email)
    check_birth_before_hire(data.birth_date, data.hire_date)
    check_hire_status(data.status)
    employee = Employee(
        id=uuid.uuid4(),
        employee_number=number,
        given_name=required_text(data.given_name, "givenName", max_length=100),
        family_name=required_text(data.family_name, "familyName", max_length=100),
        local_name=optional_text(data.local_name, "localName", max_length=100),
        preferred_name=optional_text(data.preferred_name, "preferredName", max_length=100),
        work_email=email,
        phone=optional_text(data.phone, "phone", max_length=40),
        birth_date=data.birth_date,
        national_id_encrypted=crypto.encrypt(
            tenant.id, optional_text(data.national_id, "nationalId")
        ),
        bank_account_encrypted=crypto.encrypt(
            tenant.id, optional_text(data.bank_account, "bankAccount")
        ),
        hire_date=data.hire_date,
    )
    employee.search_text = search_text(employee)
    async with tenant_session() as session:
        taken = await session.scalar(select(Employee.id).where(Employee.employee_number == number))
        if taken is not None:
            raise DomainError(
                N_("Employee number {value} is already in use."),
                field="employeeNumber",
                value=number,
            )
        branch = await session.get(Branch, data.branch_id)
        if branch is None:
            raise NotFound(N_("The branch does not exist."), field="branchId")
        event = EmploymentEvent(
            id=uuid.uuid4(),
            employee_id=employee.id,
            kind="hire",
            effective_date=data.hire_date,
            branch_id=branch.id,
            position_id=data.position_id,
            org_unit_id=data.org_unit_id,
            status=data.status,
            recorded_by=actor.id,
        )
        await _check_placement(session, event)
        if data.salary is not None:
            _set_salary(event, data.salary, branch.currency)
        session.add(employee)
        await session.flush()
        session.add(event)
        await session.flush()
        await rebuild_periods(session, employee.id)
        audit.record(
            session,
            actor_id=actor.id,
            action="employee.hire",
            entity_type="employee",
            entity_id=employee.id,
            after={
                "employee_number": number,
                "hire_date": data.hire_date,
                "branch_id": branch.id,
                "position_id": data.position_id,
            },
        )
    return employee


async def transfer_employee(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    effective_date: dt.date,
    branch_id: uuid.UUID | None = None,
    position_id: uuid.UUID | None = None,
    org_unit_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> EmploymentEvent:
    if branch_id is None and position_id is None and org_unit_id is None:
        raise DomainError(N_("Name a new branch, position or unit."))
    return await _record(
        actor,
        employee_id,
        "transfer",
        effective_date,
        branch_id=branch_id,
        position_id=position_id,
        org_unit_id=org_unit_id,
        reason=reason,
    )


async def promote_employee(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    effective_date: dt.date,
    position_id: uuid.UUID | None = None,
    job_level_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> EmploymentEvent:
    if position_id is None and job_level_id is None:
        raise DomainError(N_("Name a new position or job level."))
    return await _record(
        actor,
        employee_id,
        "promotion",
        effective_date,
        position_id=position_id,
        job_level_id=job_level_id,
        reason=reason,
    )


async def change_salary(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    effective_date: dt.date,
    salary: SalaryInput,
    reason: str | None = None,
) -> EmploymentEvent:
    return await _record(
        actor, employee_id, "salary_change", effective_date, salary=salary, reason=reason
    )


async def start_leave(
    actor: Viewer, employee_id: uuid.UUID, *, effective_date: dt.date, reason: str | None = None
) -> EmploymentEvent:
    return await _record(actor, employee_id, "leave_start", effective_date, reason=reason)


async def end_leave(
    actor: Viewer, employee_id: uuid.UUID, *, effective_date: dt.date, reason: str | None = None
) -> EmploymentEvent:
    return await _record(actor, employee_id, "leave_end", effective_date, reason=reason)


async def change_status(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    effective_date: dt.date,
    status: str,
    reason: str | None = None,
) -> EmploymentEvent:
    """Move between onboarding, active and offboarding. Leaving is not a status edit."""
    if status not in ("onboarding", "active", "offboarding"):
        raise DomainError(
            N_("The status can only be set to onboarding, active or offboarding."),
            field="status",
        )
    return await _record(
        actor, employee_id, "status_change", effective_date, status=status, reason=reason
    )


async def record_performance_review(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    period: str,
    rating: Decimal,
    reviewed_on: dt.date,
    reviewer_id: uuid.UUID | None = None,
    comment: str | None = None,
) -> PerformanceReview:
    require_any_role(actor, *HR_WRITERS, "manager")
    check_rating(rating)
    review = PerformanceReview(
        id=uuid.uuid4(),
        employee_id=employee_id,
        period=required_text(period, "period", max_length=32),
        rating=rating,
        reviewer_id=reviewer_id,
        comment=optional_text(comment, "comment", max_length=4000),
        reviewed_on=reviewed_on,
    )
    async with tenant_session() as session:
        await _employee(session, employee_id)
        if reviewer_id is not None:
            await _employee(session, reviewer_id, field="reviewerId")
        taken = await session.scalar(
            select(PerformanceReview.id).where(
                PerformanceReview.employee_id == employee_id,
                PerformanceReview.period == review.period,
            )
        )
        if taken is not None:
            raise DomainError(N_("This period has already been reviewed."), field="period")
        session.add(review)
        audit.record(
            session,
            actor_id=actor.id,
            action="employee.review",
            entity_type="employee",
            entity_id=employee_id,
            after={"period": review.period, "rating": rating},
        )
        # Risk analytics re-scores the employee (workers.events.employee_reviewed).
        await outbox.enqueue(
            session,
            "employee.reviewed",
            {"employee_id": employee_id, "review_id": review.id},
            outbox.event_key("employee.reviewed", review.id),
        )
    return review


async def record_reward_or_penalty(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    kind: str,
    occurred_on: dt.date,
    category: str,
    amount: Decimal | None = None,
    currency: str | None = None,
    note: str | None = None,
) -> RewardOrPenalty:
    require_any_role(actor, *HR_WRITERS)
    if kind not in ("reward", "penalty"):
        raise DomainError(N_("The kind is reward or penalty."), field="kind")
    money = None
    if amount is not None:
        if not currency:
            raise DomainError(N_("An amount needs a currency."), field="currency")
        money = Money.of(amount, currency)
        if money.amount < 0:
            raise DomainError(N_("Amounts cannot be negative."), field="amount")
    item = RewardOrPenalty(
        id=uuid.uuid4(),
        employee_id=employee_id,
        occurred_on=occurred_on,
        kind=kind,
        category=required_text(category, "category", max_length=64),
        amount=money.amount if money else None,
        currency=money.currency if money else None,
        note=optional_text(note, "note", max_length=4000),
    )
    async with tenant_session() as session:
        await _employee(session, employee_id)
        session.add(item)
        audit.record(
            session,
            actor_id=actor.id,
            action=f"employee.{kind}",
            entity_type="employee",
            entity_id=employee_id,
            after={
                "category": item.category,
                "amount": item.amount,
                "currency": item.currency,
                "occurred_on": occurred_on,
            },
        )
    return item


async def assign_project(
    actor: Viewer,
    employee_id: uuid.UUID,
    *,
    project_code: str,
    role: str,
    start_date: dt.date,
    end_date: dt.date | None = None,
) -> ProjectAssignment:
    require_any_role(actor, *HR_WRITERS, "manager")
    if end_date is not None and end_date < start_date:
        raise DomainError(N_("The end date is before the start date."), field="endDate")
    assignment = ProjectAssignment(
        id=uuid.uuid4(),
        employee_id=employee_id,
        project_code=required_text(project_code, "projectCode", max_length=64),
        role=required_text(role, "role", max_length=100),
        start_date=start_date,
        end_date=end_date,
    )
    async with tenant_session() as session:
        await _employee(session, employee_id)
        session.add(assignment)
        audit.record(
            session,
            actor_id=actor.id,
            action="employee.assign_project",
            entity_type="employee",
            entity_id=employee_id,
            after={"project_code": assignment.project_code, "role": assignment.role},
        )
    return assignment


# --- shared steps ------------------------------------------------------------------------


async def _record(
    actor: Viewer,
    employee_id: uuid.UUID,
    kind: str,
    effective_date: dt.date,
    **changes: Any,
) -> EmploymentEvent:
    """Record one event and rebuild the employee's periods, in one transaction."""
    require_any_role(actor, *HR_WRITERS)
    async with tenant_session() as session:
        return await record_event(session, actor, employee_id, kind, effective_date, **changes)


async def record_event(
    session: AsyncSession,
    actor: Viewer,
    employee_id: uuid.UUID,
    kind: str,
    effective_date: dt.date,
    *,
    branch_id: uuid.UUID | None = None,
    position_id: uuid.UUID | None = None,
    org_unit_id: uuid.UUID | None = None,
    job_level_id: uuid.UUID | None = None,
    status: str | None = None,
    salary: SalaryInput | None = None,
    reason: str | None = None,
) -> EmploymentEvent:
    """Record one event inside the caller's transaction and rebuild the periods.

    For other domain actions that change an employee as one step of their own work (the
    offboarding case, for instance); the caller checks permissions.
    """
    event = EmploymentEvent(
        id=uuid.uuid4(),
        employee_id=employee_id,
        kind=kind,
        effective_date=effective_date,
        branch_id=branch_id,
        position_id=position_id,
        org_unit_id=org_unit_id,
        job_level_id=job_level_id,
        status=status,
        reason=optional_text(reason, "reason", max_length=2000),
        recorded_by=actor.id,
    )
    await _employee(session, employee_id)
    if kind == "termination" or status == "terminated":
        # Completing an offboarding case closes it (and its advances) before it gets here.
        await require_open_exit(session, employee_id)
    await _check_placement(session, event)
    if salary is not None:
        currency = await _branch_currency_on(session, employee_id, effective_date)
        _set_salary(event, salary, currency)
    session.add(event)
    await session.flush()
    await rebuild_periods(session, employee_id)
    audit.record(
        session,
        actor_id=actor.id,
        action=f"employee.{kind}",
        entity_type="employee",
        entity_id=employee_id,
        after=_event_dict(event),
    )
    return event


async def rebuild_periods(session: AsyncSession, employee_id: uuid.UUID) -> None:
    """Replace the employee's periods with what their events add up to."""
    events = list(
        await session.scalars(
            select(EmploymentEvent).where(EmploymentEvent.employee_id == employee_id)
        )
    )
    position_ids = {e.position_id for e in events if e.position_id is not None}
    positions = {
        p.id: PositionFacts(p.org_unit_id, p.job_level_id)
        for p in await session.scalars(select(Position).where(Position.id.in_(position_ids)))
    }
    periods = replay(events, positions)
    await session.execute(delete(EmployeePeriod).where(EmployeePeriod.employee_id == employee_id))
    session.add_all(to_rows(employee_id, periods))
    await session.flush()


async def _employee(
    session: AsyncSession, employee_id: uuid.UUID, *, field: str = "employeeId"
) -> Employee:
    employee = await session.get(Employee, employee_id)
    if employee is None:
        raise NotFound(N_("The employee does not exist."), field=field)
    return employee


async def _check_placement(session: AsyncSession, event: EmploymentEvent) -> None:
    if event.branch_id is not None and await session.get(Branch, event.branch_id) is None:
        raise NotFound(N_("The branch does not exist."), field="branchId")
    if event.position_id is not None:
        position = await session.get(Position, event.position_id)
        if position is None:
            raise NotFound(N_("The position does not exist."), field="positionId")
        day = event.effective_date
        if position.opened_on > day or (position.closed_on and position.closed_on <= day):
            raise DomainError(N_("The position is not open on that date."), field="positionId")
    if event.org_unit_id is not None and await session.get(OrgUnit, event.org_unit_id) is None:
        raise NotFound(N_("The org unit does not exist."), field="orgUnitId")
    if event.job_level_id is not None and await session.get(JobLevel, event.job_level_id) is None:
        raise NotFound(N_("The job level does not exist."), field="jobLevelId")


async def _branch_currency_on(session: AsyncSession, employee_id: uuid.UUID, day: dt.date) -> str:
    branch_id = await session.scalar(
        select(EmployeePeriod.branch_id)
        .where(
            EmployeePeriod.employee_id == employee_id,
            EmployeePeriod.valid_from <= day,
        )
        .order_by(EmployeePeriod.valid_from.desc())
        .limit(1)
    )
    branch = await session.get(Branch, branch_id) if branch_id else None
    return branch.currency if branch else current_tenant().currency


def _set_salary(event: EmploymentEvent, salary: SalaryInput, default_currency: str) -> None:
    money, period = checked_salary(salary, default_currency)
    event.salary_amount = money.amount
    event.salary_currency = money.currency
    event.salary_period = period


def _event_dict(event: EmploymentEvent) -> dict[str, object]:
    return {
        "kind": event.kind,
        "effective_date": event.effective_date,
        "branch_id": event.branch_id,
        "position_id": event.position_id,
        "org_unit_id": event.org_unit_id,
        "job_level_id": event.job_level_id,
        "status": event.status,
        "salary_amount": event.salary_amount,
        "salary_currency": event.salary_currency,
        "reason": event.reason,
    }


def search_text(employee: Employee) -> str:
    """What name search looks in: every name in every script, number and e-mail."""
    return search_text_of(
        given_name=employee.given_name,
        family_name=employee.family_name,
        local_name=employee.local_name,
        preferred_name=employee.preferred_name,
        employee_number=employee.employee_number,
        work_email=employee.work_email,
    )


def search_text_of(
    *,
    given_name: str,
    family_name: str,
    local_name: str | None,
    preferred_name: str | None,
    employee_number: str,
    work_email: str | None,
) -> str:
    """`search_text` from plain values (imports build rows without ORM objects)."""
    parts = [
        given_name,
        family_name,
        local_name,
        preferred_name,
        employee_number,
        work_email,
        f"{given_name} {family_name}",
        f"{family_name} {given_name}",
    ]
    return " | ".join(p.casefold() for p in parts if p)
