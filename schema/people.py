"""GraphQL for employees: the directory, records as of a date, history and changes."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy import select

from domain.errors import DomainError
from domain.people import actions
from domain.people import queries as people
from domain.people.models import EmploymentEvent as EventRow
from domain.people.models import PerformanceReview as ReviewRow
from domain.people.models import ProjectAssignment as ProjectRow
from domain.people.models import RewardOrPenalty as RewardRow
from domain.people.queries import Access, EmployeeRecord
from schema import loaders
from schema.common import (
    Deferred,
    Money,
    MoneyInput,
    attempt,
    decode_id,
    decode_optional,
    today,
)
from schema.context import RequestContext
from schema.errors import UserError
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from schema.organisation import (
    Branch,
    JobLevel,
    OrgUnit,
    Position,
    load_branch,
    load_job_level,
    load_position,
    load_unit,
)
from schema.prefetch import fields_at, prefetch
from tenants.binding import tenant_session

if TYPE_CHECKING:
    from schema.advances import CreditProfile
    from schema.analytics import RiskScore
    from schema.risk_models import AttritionRisk


_NOTHING_PREFETCHED: Mapping[str, object] = MappingProxyType({})


@strawberry.enum(description="Where an employee stands.")
class EmployeeStatus(enum.Enum):
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    ON_LEAVE = "on_leave"
    OFFBOARDING = "offboarding"
    TERMINATED = "terminated"


@strawberry.enum(description="Orders of the employee list.")
class EmployeeSort(enum.Enum):
    NAME = "name"
    HIRE_DATE = "hire_date"
    EMPLOYEE_NUMBER = "employee_number"


@strawberry.type(description="A salary: amount, currency and pay period.")
class Salary:
    amount: Money = strawberry.field(description="Gross amount per period.")
    period: str = strawberry.field(description="hour, month or year.")


@strawberry.type(description="One effective-dated change in an employee's history.")
class EmploymentEvent:
    kind: str = strawberry.field(
        description="hire, transfer, promotion, salary_change, leave_start, leave_end, "
        "status_change or termination."
    )
    effective_date: dt.date = strawberry.field(description="When the change takes effect.")
    status: str | None = strawberry.field(description="Status set by the change, if any.")
    reason: str | None = strawberry.field(description="Why, as recorded.")
    recorded_at: dt.datetime = strawberry.field(description="When it was recorded.")
    salary: Salary | None = strawberry.field(description="New salary (sensitive).")
    branch_pk: strawberry.Private[uuid.UUID | None]
    position_pk: strawberry.Private[uuid.UUID | None]
    job_level_pk: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="New branch, if the change set one.")
    async def branch(self, info: Ctx) -> Branch | None:
        return await load_branch(info.context, self.branch_pk)

    @strawberry.field(description="New position, if the change set one.")
    async def position(self, info: Ctx) -> Position | None:
        return await load_position(info.context, self.position_pk)

    @strawberry.field(description="New job level, if the change set one.")
    async def job_level(self, info: Ctx) -> JobLevel | None:
        return await load_job_level(info.context, self.job_level_pk)


@strawberry.type(description="A performance review.")
class PerformanceReview:
    period: str
    rating: Decimal
    comment: str | None
    reviewed_on: dt.date


@strawberry.type(description="A reward or a penalty.")
class RewardOrPenalty:
    kind: str = strawberry.field(description="reward or penalty.")
    category: str
    occurred_on: dt.date
    amount: Money | None
    note: str | None


@strawberry.type(description="Participation in a project.")
class ProjectAssignment:
    project_code: str
    role: str
    start_date: dt.date
    end_date: dt.date | None


@strawberry.type(
    description="An employee as of `asOf`. Fields the viewer may not read are null: sensitive "
    "ones (salary, birth date, national ID, bank account) for all but admin, hr, finance and "
    "the employee; profile ones (number, status, level, history) outside the viewer's line."
)
class Employee(Node):
    given_name: str
    family_name: str
    local_name: str | None = strawberry.field(description="Name in local script, e.g. 王小明.")
    preferred_name: str | None
    work_email: str | None
    as_of: dt.date = strawberry.field(description="The date the record is shown as of.")
    employee_number: str | None
    phone: str | None
    hire_date: dt.date | None
    status: EmployeeStatus | None
    birth_date: dt.date | None
    display_name: str = strawberry.field(
        description="Preferred or given name with the family name."
    )
    # NOTE: relations are plain fields holding either the object (prefetched with a page,
    # see schema.prefetch) or a `Deferred` that loads it through a DataLoader only when a
    # query selects it; graphql-core awaits awaitable values. Plain fields skip strawberry's
    # per-call resolver machinery, which dominated the cost of a page of 100 employees.
    branch: Branch | None = strawberry.field(description="Branch on `asOf`.")
    org_unit: OrgUnit | None = strawberry.field(description="Org unit on `asOf`.")
    position: Position | None = strawberry.field(description="Position on `asOf`.")
    job_level: JobLevel | None = strawberry.field(description="Job level on `asOf`.")
    manager: Employee | None = strawberry.field(
        description="Holder of the position this employee's position reports to; a vacant "
        "position passes up the line."
    )
    record: strawberry.Private[EmployeeRecord]

    @classmethod
    def from_record(
        cls,
        record: EmployeeRecord,
        context: RequestContext,
        prefetched: Mapping[str, object] = _NOTHING_PREFETCHED,
    ) -> Employee:
        """The employee for `record`; relations from `prefetched`, else loaded if asked."""
        return cls(
            id=to_global_id("Employee", context.require_tenant().id, record.id),
            given_name=record.given_name,
            family_name=record.family_name,
            local_name=record.local_name,
            preferred_name=record.preferred_name,
            work_email=record.work_email,
            as_of=record.as_of,
            employee_number=record.employee_number,
            phone=record.phone,
            hire_date=record.hire_date,
            status=EmployeeStatus(record.status) if record.status else None,
            birth_date=record.birth_date,
            display_name=f"{record.preferred_name or record.given_name} {record.family_name}",
            # Deferred loads are made only for relations the page did not prefetch.
            branch=prefetched["branch"]  # type: ignore[arg-type]
            if "branch" in prefetched
            else Deferred(lambda: load_branch(context, record.branch_id)),
            org_unit=prefetched["org_unit"]  # type: ignore[arg-type]
            if "org_unit" in prefetched
            else Deferred(lambda: load_unit(context, record.org_unit_id, record.as_of)),
            position=prefetched["position"]  # type: ignore[arg-type]
            if "position" in prefetched
            else Deferred(lambda: load_position(context, record.position_id)),
            job_level=prefetched["job_level"]  # type: ignore[arg-type]
            if "job_level" in prefetched
            else Deferred(lambda: load_job_level(context, record.job_level_id)),
            manager=prefetched["manager"]  # type: ignore[arg-type]
            if "manager" in prefetched
            else Deferred(lambda: _load_manager(context, record)),
            record=record,
        )

    @strawberry.field(description="Salary on `asOf` (sensitive).")
    def salary(self, info: Ctx) -> Salary | None:
        r = self.record
        money = Money.of(r.salary_amount, r.salary_currency, info.context.format_locale)
        return Salary(amount=money, period=r.salary_period or "month") if money else None

    @strawberry.field(description="National ID (sensitive; encrypted at rest).")
    def national_id(self) -> str | None:
        return self.record.national_id

    @strawberry.field(description="Bank account (sensitive; encrypted at rest).")
    def bank_account(self) -> str | None:
        return self.record.bank_account

    @strawberry.field(
        description="Advance history for approvers: outstanding, overdue, settlement habits "
        "(the employee, admin, hr, finance, and managers of their line)."
    )
    async def credit_profile(
        self, info: Ctx
    ) -> Annotated[CreditProfile, strawberry.lazy("schema.advances")] | None:
        from schema.advances import credit_profile_of

        if self.record.access < Access.PROFILE:
            return None
        return await credit_profile_of(info.context, self.record.id)

    @strawberry.field(
        description="Advance risk as last scored, with its explaining factors (admin and hr; "
        "null for anyone else). Every read is written to the audit log."
    )
    async def risk_score(
        self, info: Ctx
    ) -> Annotated[RiskScore, strawberry.lazy("schema.analytics")] | None:
        from schema.analytics import risk_score_of

        return await risk_score_of(info.context, self.record.id)

    @strawberry.field(
        description="Probability of leaving within the horizon as of `asOf`, from the "
        "tenant's trained attrition model (admin and hr; null for anyone else, without a "
        "model, or when not employed then). Every read is written to the audit log."
    )
    async def attrition_risk(
        self,
        info: Ctx,
        horizon_months: Annotated[int, strawberry.argument(description="3, 6 or 12.")],
    ) -> Annotated[AttritionRisk, strawberry.lazy("schema.risk_models")] | None:
        from schema.risk_models import attrition_risk_of

        return await attrition_risk_of(info.context, self.record.id, horizon_months, self.as_of)

    @strawberry.field(description="Employees this one manages on `asOf`.")
    async def direct_reports(self, info: Ctx) -> list[Employee]:
        from domain.organisation.queries import direct_reports

        async with tenant_session() as session:
            ids = await direct_reports(session, self.record.id, self.as_of)
        found = [await load_employee(info.context, i, self.as_of) for i in ids]
        return [e for e in found if e is not None]

    @strawberry.field(description="Every change, in effective-date order (profile access).")
    async def history(self, info: Ctx) -> list[EmploymentEvent] | None:
        if self.record.access < Access.PROFILE:
            return None
        async with tenant_session() as session:
            rows = await people.history(session, self.record.id)
        full = self.record.access >= Access.FULL
        return [_event(row, full, info.context) for row in rows]

    @strawberry.field(description="Performance reviews, latest first (profile access).")
    async def performance_reviews(self, info: Ctx) -> list[PerformanceReview] | None:
        if self.record.access < Access.PROFILE:
            return None
        async with tenant_session() as session:
            rows = await session.scalars(
                select(ReviewRow)
                .where(ReviewRow.employee_id == self.record.id)
                .order_by(ReviewRow.reviewed_on.desc())
            )
            return [
                PerformanceReview(
                    period=r.period, rating=r.rating, comment=r.comment, reviewed_on=r.reviewed_on
                )
                for r in rows
            ]

    @strawberry.field(description="Rewards and penalties, latest first (profile access).")
    async def rewards_and_penalties(self, info: Ctx) -> list[RewardOrPenalty] | None:
        if self.record.access < Access.PROFILE:
            return None
        async with tenant_session() as session:
            rows = await session.scalars(
                select(RewardRow)
                .where(RewardRow.employee_id == self.record.id)
                .order_by(RewardRow.occurred_on.desc())
            )
            return [
                RewardOrPenalty(
                    kind=r.kind,
                    category=r.category,
                    occurred_on=r.occurred_on,
                    amount=Money.of(r.amount, r.currency, info.context.format_locale),
                    note=r.note,
                )
                for r in rows
            ]

    @strawberry.field(description="Project participation, latest first.")
    async def projects(self, info: Ctx) -> list[ProjectAssignment] | None:
        if self.record.access < Access.PROFILE:
            return None
        async with tenant_session() as session:
            rows = await session.scalars(
                select(ProjectRow)
                .where(ProjectRow.employee_id == self.record.id)
                .order_by(ProjectRow.start_date.desc())
            )
            return [
                ProjectAssignment(
                    project_code=r.project_code,
                    role=r.role,
                    start_date=r.start_date,
                    end_date=r.end_date,
                )
                for r in rows
            ]


async def _load_manager(context: RequestContext, record: EmployeeRecord) -> Employee | None:
    if record.position_id is None:
        return None
    manager_id = await loaders.managers(context, record.as_of).load(record.position_id)
    return await load_employee(context, manager_id, record.as_of)


def _event(row: EventRow, full: bool, context: RequestContext) -> EmploymentEvent:
    salary = None
    if full and row.salary_amount is not None:
        money = Money.of(row.salary_amount, row.salary_currency, context.format_locale)
        salary = Salary(amount=money, period=row.salary_period or "month") if money else None
    return EmploymentEvent(
        kind=row.kind,
        effective_date=row.effective_date,
        status=row.status,
        reason=row.reason,
        recorded_at=row.recorded_at,
        salary=salary,
        branch_pk=row.branch_id,
        position_pk=row.position_id,
        job_level_pk=row.job_level_id,
    )


async def load_employee(
    context: RequestContext, pk: uuid.UUID | None, day: dt.date
) -> Employee | None:
    if pk is None:
        return None
    record = await loaders.employees(context, day).load(pk)
    return Employee.from_record(record, context) if record else None


async def _fetch_employee(context: RequestContext, pk: uuid.UUID) -> Employee | None:
    if context.viewer is None or context.tenant is None:
        return None
    return await load_employee(context, pk, today(context))


register_node("Employee", _fetch_employee)


# --- the directory -------------------------------------------------------------------------


@strawberry.type(description="An employee in a page of results.")
class EmployeeEdge:
    @strawberry.field(description="Pass as `after` to continue after this row.")
    def cursor(self) -> str:
        return self.page.cursor(self.index)

    node: Employee
    page: strawberry.Private[people.Page]
    index: strawberry.Private[int]


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A page of employees.")
class EmployeeConnection:
    edges: list[EmployeeEdge]
    page_info: PageInfo
    count: strawberry.Private[object]

    @strawberry.field(description="Rows matching the filter, all pages together.")
    async def total_count(self) -> int:
        return await self.count()  # type: ignore[operator]


@strawberry.input(description="Filters of the employee list; all given ones must match.")
class EmployeeFilterInput:
    org_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="This unit and everything under it."
    )
    branch_id: strawberry.ID | None = None
    status: list[EmployeeStatus] | None = None
    job_level_id: strawberry.ID | None = None
    search: str | None = strawberry.field(
        default=None, description="Part of any name (any script), number or e-mail."
    )


@strawberry.type
class PeopleQueries:
    @strawberry.field(description="Employees as of `asOf` (default today), keyset-paginated.")
    async def employees(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="At most 100.")] = 20,
        after: str | None = None,
        filter: EmployeeFilterInput | None = None,
        sort: EmployeeSort = EmployeeSort.NAME,
        descending: bool = False,
        as_of: dt.date | None = None,
    ) -> EmployeeConnection:
        context = info.context
        viewer = context.require_viewer()
        tenant = context.require_tenant()
        day = as_of or today(context)
        given = filter or EmployeeFilterInput()
        filters = people.EmployeeFilter(
            org_unit_id=decode_optional(given.org_unit_id, "OrgUnit", context, "orgUnitId"),
            branch_id=decode_optional(given.branch_id, "Branch", context, "branchId"),
            statuses=tuple(s.value for s in given.status or ()),
            job_level_id=decode_optional(given.job_level_id, "JobLevel", context, "jobLevelId"),
            search=given.search,
        )
        wanted = fields_at(info.selected_fields[0].selections, ["edges", "node"])
        async with tenant_session() as session:
            page = await people.list_employees(
                session,
                tenant,
                viewer,
                day=day,
                filters=filters,
                sort=people.Sort(sort.value),
                descending=descending,
                first=first,
                after=after,
            )
            bundles = await prefetch(context, session, page.records, wanted, day)

        async def count() -> int:
            async with tenant_session() as session:
                return await people.count_employees(session, viewer, day=day, filters=filters)

        loader = loaders.employees(context, day)
        edges = []
        for index, (record, bundle) in enumerate(zip(page.records, bundles, strict=True)):
            loader.prime(record.id, record)
            node = Employee.from_record(record, context, bundle)
            edges.append(EmployeeEdge(node=node, page=page, index=index))
        return EmployeeConnection(
            edges=edges,
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
            count=count,
        )

    @strawberry.field(description="One employee as of `asOf` (default today).")
    async def employee(
        self,
        info: Ctx,
        id: strawberry.ID,
        as_of: dt.date | None = None,
    ) -> Employee | None:
        context = info.context
        context.require_viewer()
        try:
            pk = decode_id(id, "Employee", context, "id")
        except DomainError:  # an ID that is not ours reads as missing
            return None
        return await load_employee(context, pk, as_of or today(context))


# --- changes -------------------------------------------------------------------------------


@strawberry.input(description="A salary with its pay period.")
class SalaryInput:
    amount: MoneyInput
    period: str = strawberry.field(default="month", description="hour, month or year.")

    def to_domain(self) -> actions.SalaryInput:
        return actions.SalaryInput(
            amount=self.amount.amount, currency=self.amount.currency, period=self.period
        )


@strawberry.input(description="A new employee and their hire.")
class HireEmployeeInput:
    employee_number: str
    given_name: str
    family_name: str
    hire_date: dt.date
    branch_id: strawberry.ID
    position_id: strawberry.ID | None = None
    org_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="Unit when the employee holds no position."
    )
    local_name: str | None = None
    preferred_name: str | None = None
    work_email: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = None
    national_id: str | None = None
    bank_account: str | None = None
    salary: SalaryInput | None = None
    status: EmployeeStatus = EmployeeStatus.ACTIVE


@strawberry.type(description="Result of a change to an employee.")
class EmployeePayload:
    employee: Employee | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A move to another branch, position or unit from a date.")
class TransferEmployeeInput:
    employee_id: strawberry.ID
    effective_date: dt.date
    branch_id: strawberry.ID | None = None
    position_id: strawberry.ID | None = None
    org_unit_id: strawberry.ID | None = None
    reason: str | None = None


@strawberry.input(description="A promotion to a position or job level from a date.")
class PromoteEmployeeInput:
    employee_id: strawberry.ID
    effective_date: dt.date
    position_id: strawberry.ID | None = None
    job_level_id: strawberry.ID | None = None
    reason: str | None = None


@strawberry.input(description="A new salary from a date.")
class ChangeSalaryInput:
    employee_id: strawberry.ID
    effective_date: dt.date
    salary: SalaryInput
    reason: str | None = None


@strawberry.input(description="The start or end of a leave.")
class LeaveInput:
    employee_id: strawberry.ID
    effective_date: dt.date
    reason: str | None = None


@strawberry.input(description="A performance review for a period.")
class RecordPerformanceReviewInput:
    employee_id: strawberry.ID
    period: str = strawberry.field(description="e.g. 2026-H2 or 2026.")
    rating: Decimal = strawberry.field(description="On the tenant's scale, 1 to 5.")
    reviewed_on: dt.date
    reviewer_id: strawberry.ID | None = None
    comment: str | None = None


@strawberry.input(description="A reward or a penalty.")
class RecordRewardOrPenaltyInput:
    employee_id: strawberry.ID
    kind: str = strawberry.field(description="reward or penalty.")
    occurred_on: dt.date
    category: str
    amount: MoneyInput | None = None
    note: str | None = None


@strawberry.input(description="Participation in a project.")
class AssignProjectInput:
    employee_id: strawberry.ID
    project_code: str
    role: str
    start_date: dt.date
    end_date: dt.date | None = None


async def _changed(
    context: RequestContext, employee_id: uuid.UUID, day: dt.date
) -> Employee | None:
    return await load_employee(context, employee_id, day)


@strawberry.type
class PeopleMutations:
    @strawberry.mutation(description="Hire an employee (admin, hr).")
    async def hire_employee(self, info: Ctx, input: HireEmployeeInput) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            row = await actions.hire_employee(
                context.require_viewer(),
                actions.HireInput(
                    employee_number=input.employee_number,
                    given_name=input.given_name,
                    family_name=input.family_name,
                    hire_date=input.hire_date,
                    branch_id=decode_id(input.branch_id, "Branch", context, "branchId"),
                    position_id=decode_optional(
                        input.position_id, "Position", context, "positionId"
                    ),
                    org_unit_id=decode_optional(input.org_unit_id, "OrgUnit", context, "orgUnitId"),
                    local_name=input.local_name,
                    preferred_name=input.preferred_name,
                    work_email=input.work_email,
                    phone=input.phone,
                    birth_date=input.birth_date,
                    national_id=input.national_id,
                    bank_account=input.bank_account,
                    salary=input.salary.to_domain() if input.salary else None,
                    status=input.status.value,
                ),
            )
            return await _changed(context, row.id, max(input.hire_date, today(context)))

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Move an employee to another branch, position or unit.")
    async def transfer_employee(
        self,
        info: Ctx,
        input: TransferEmployeeInput,
    ) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.transfer_employee(
                context.require_viewer(),
                employee_id,
                effective_date=input.effective_date,
                branch_id=decode_optional(input.branch_id, "Branch", context, "branchId"),
                position_id=decode_optional(input.position_id, "Position", context, "positionId"),
                org_unit_id=decode_optional(input.org_unit_id, "OrgUnit", context, "orgUnitId"),
                reason=input.reason,
            )
            return await _changed(context, employee_id, input.effective_date)

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Promote an employee to a position or job level.")
    async def promote_employee(
        self,
        info: Ctx,
        input: PromoteEmployeeInput,
    ) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.promote_employee(
                context.require_viewer(),
                employee_id,
                effective_date=input.effective_date,
                position_id=decode_optional(input.position_id, "Position", context, "positionId"),
                job_level_id=decode_optional(input.job_level_id, "JobLevel", context, "jobLevelId"),
                reason=input.reason,
            )
            return await _changed(context, employee_id, input.effective_date)

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Change an employee's salary from a date (admin, hr).")
    async def change_salary(self, info: Ctx, input: ChangeSalaryInput) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.change_salary(
                context.require_viewer(),
                employee_id,
                effective_date=input.effective_date,
                salary=input.salary.to_domain(),
                reason=input.reason,
            )
            return await _changed(context, employee_id, input.effective_date)

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Start a leave from a date.")
    async def start_leave(self, info: Ctx, input: LeaveInput) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.start_leave(
                context.require_viewer(),
                employee_id,
                effective_date=input.effective_date,
                reason=input.reason,
            )
            return await _changed(context, employee_id, input.effective_date)

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="End a leave from a date.")
    async def end_leave(self, info: Ctx, input: LeaveInput) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.end_leave(
                context.require_viewer(),
                employee_id,
                effective_date=input.effective_date,
                reason=input.reason,
            )
            return await _changed(context, employee_id, input.effective_date)

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Record a performance review (admin, hr, manager).")
    async def record_performance_review(
        self,
        info: Ctx,
        input: RecordPerformanceReviewInput,
    ) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.record_performance_review(
                context.require_viewer(),
                employee_id,
                period=input.period,
                rating=input.rating,
                reviewed_on=input.reviewed_on,
                reviewer_id=decode_optional(input.reviewer_id, "Employee", context, "reviewerId"),
                comment=input.comment,
            )
            return await _changed(context, employee_id, today(context))

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Record a reward or a penalty (admin, hr).")
    async def record_reward_or_penalty(
        self,
        info: Ctx,
        input: RecordRewardOrPenaltyInput,
    ) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.record_reward_or_penalty(
                context.require_viewer(),
                employee_id,
                kind=input.kind,
                occurred_on=input.occurred_on,
                category=input.category,
                amount=input.amount.amount if input.amount else None,
                currency=input.amount.currency if input.amount else None,
                note=input.note,
            )
            return await _changed(context, employee_id, today(context))

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)

    @strawberry.mutation(description="Assign an employee to a project (admin, hr, manager).")
    async def assign_project(self, info: Ctx, input: AssignProjectInput) -> EmployeePayload:
        context = info.context

        async def run() -> Employee | None:
            employee_id = decode_id(input.employee_id, "Employee", context, "employeeId")
            await actions.assign_project(
                context.require_viewer(),
                employee_id,
                project_code=input.project_code,
                role=input.role,
                start_date=input.start_date,
                end_date=input.end_date,
            )
            return await _changed(context, employee_id, today(context))

        employee, errors = await attempt(context, run)
        return EmployeePayload(employee=employee, user_errors=errors)
