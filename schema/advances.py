"""GraphQL for employee advances: requests, approvals, the ledger, aging and exits."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from sqlalchemy import select

from domain.advances import actions, ledger, offboarding
from domain.advances import queries as advance_queries
from domain.advances.models import Advance as AdvanceRow
from domain.advances.models import ApprovalStep as StepRow
from domain.advances.models import ClearanceItem as ItemRow
from domain.advances.models import LedgerEntry as EntryRow
from domain.advances.models import OffboardingCase as CaseRow
from domain.advances.plans import InstalmentProgress, PlanProgress, plan_progress
from domain.audit import AuditEntry as AuditRow
from domain.errors import DomainError
from domain.money import Money as DomainMoney
from i18n import N_
from schema import loaders
from schema.common import Money, MoneyInput, attempt, decode_id, decode_optional, today
from schema.context import RequestContext
from schema.errors import ApiError, ErrorCode, UserError, user_error
from schema.identity import Ctx
from schema.node import Node, register_node, to_global_id
from schema.organisation import load_branch, load_unit
from tenants.binding import tenant_session

if TYPE_CHECKING:
    from schema.organisation import Branch, OrgUnit
    from schema.people import Employee

EmployeeRef = Annotated["Employee", strawberry.lazy("schema.people")]
BranchRef = Annotated["Branch", strawberry.lazy("schema.organisation")]
OrgUnitRef = Annotated["OrgUnit", strawberry.lazy("schema.organisation")]


def _instant(at: dt.datetime | None) -> dt.datetime | None:
    """An instant with its UTC offset; a bare local time names no instant and is refused."""
    if at is not None and at.utcoffset() is None:
        raise ApiError(ErrorCode.BAD_USER_INPUT, N_("Give the time with its UTC offset."))
    return at


def _money(amount: Decimal | None, currency: str | None, context: RequestContext) -> Money | None:
    return Money.of(amount, currency, context.format_locale)


async def _employee(context: RequestContext, pk: uuid.UUID | None) -> Any:
    from schema.people import load_employee

    return await load_employee(context, pk, today(context))


@strawberry.type(description="One movement of an advance's money (append-only).")
class LedgerEntry:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="disbursement, expense_settlement, return, payroll_deduction, "
        "reimbursement, write_off, waiver or reversal."
    )
    amount: Money = strawberry.field(
        description="Effect on the outstanding balance, in the advance's currency."
    )
    original: Money | None = strawberry.field(
        description="The money as it moved, when in another currency."
    )
    rate: Decimal | None = strawberry.field(description="Exchange rate used, if any.")
    rate_date: dt.date | None = strawberry.field(description="Date the rate applies from.")
    occurred_on: dt.date
    reason: str | None
    recorded_at: dt.datetime
    reverses: strawberry.ID | None = strawberry.field(description="The entry this reverses.")

    @classmethod
    def from_row(cls, row: EntryRow, context: RequestContext) -> LedgerEntry:
        tenant = context.require_tenant()
        return cls(
            id=to_global_id("LedgerEntry", tenant.id, row.id),
            kind=row.kind,
            amount=_money(row.amount, row.currency, context),  # type: ignore[arg-type]
            original=_money(row.original_amount, row.original_currency, context),
            rate=row.rate,
            rate_date=row.rate_date,
            occurred_on=row.occurred_on,
            reason=row.reason,
            recorded_at=row.recorded_at,
            reverses=to_global_id("LedgerEntry", tenant.id, row.reverses_id)
            if row.reverses_id
            else None,
        )


@strawberry.type(description="One approver's turn in an advance's frozen approval chain.")
class ApprovalStep(Node):
    seq: int = strawberry.field(description="Order in the chain, from 1.")
    role: str = strawberry.field(
        description="manager, unit_head, escalation, named:<role> or finance."
    )
    approver_role: str | None = strawberry.field(description="User role for role steps.")
    reason: str | None = strawberry.field(description="Why this approver is in the chain.")
    status: str = strawberry.field(description="pending, approved, rejected or cancelled.")
    decided_at: dt.datetime | None
    decided_by: strawberry.ID | None = strawberry.field(
        description="The user who decided the step."
    )
    comment: str | None
    approver_pk: strawberry.Private[uuid.UUID | None]
    decided_for_pk: strawberry.Private[uuid.UUID | None]
    advance_pk: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: StepRow, context: RequestContext) -> ApprovalStep:
        tenant_id = context.require_tenant().id
        return cls(
            id=to_global_id("ApprovalStep", tenant_id, row.id),
            seq=row.seq,
            role=row.role,
            approver_role=row.approver_role,
            reason=row.reason,
            status=row.status,
            decided_at=row.decided_at,
            decided_by=to_global_id("User", tenant_id, row.decided_by) if row.decided_by else None,
            comment=row.comment,
            approver_pk=row.approver_id,
            decided_for_pk=row.decided_for,
            advance_pk=row.advance_id,
        )

    @strawberry.field(description="The employee who is to approve (null for role steps).")
    async def approver(self, info: Ctx) -> EmployeeRef | None:
        return await _employee(info.context, self.approver_pk)

    @strawberry.field(
        description="The approver the decision was made for: the decider themselves, or the "
        "approver who delegated the step to them."
    )
    async def decided_for(self, info: Ctx) -> EmployeeRef | None:
        return await _employee(info.context, self.decided_for_pk)

    @strawberry.field(description="The advance this step belongs to.")
    async def advance(self, info: Ctx) -> Advance | None:
        return await load_advance(info.context, self.advance_pk)


@strawberry.type(description="One instalment of a repayment plan, with what it has recovered.")
class Instalment:
    seq: int = strawberry.field(description="Order in the plan, from 1.")
    due_on: dt.date = strawberry.field(description="Falls due on this local date of the branch.")
    amount: Money
    recovered: Money = strawberry.field(
        description="Paid so far: what was settled after the plan was made (payroll "
        "deductions, returns, expense claims, less reversals), applied in due-date order."
    )
    status: str = strawberry.field(
        description="paid, partly_paid, due, overdue (not fully paid after its due date on "
        "the branch's local calendar) or closed (the advance was settled or written off "
        "without it)."
    )
    deducted: bool = strawberry.field(
        description="Fully recovered.", deprecation_reason="Use `status` and `recovered`."
    )

    @classmethod
    def of(cls, state: InstalmentProgress, context: RequestContext) -> Instalment:
        return cls(
            seq=state.seq,
            due_on=state.due_on,
            amount=Money.of(state.amount.amount, state.amount.currency, context.format_locale),
            recovered=Money.of(
                state.recovered.amount, state.recovered.currency, context.format_locale
            ),
            status=state.status,
            deducted=state.status == "paid",
        )


@strawberry.type(description="Scheduled payroll deductions that sum exactly to the amount.")
class RepaymentPlanType:
    id: strawberry.ID
    amount: Money = strawberry.field(description="What was owed when the plan was made.")
    starts_on: dt.date
    status: str = strawberry.field(
        description="active, completed (every instalment paid, or the advance settled) or "
        "written_off (the rest of the advance was written off or waived)."
    )
    recovered: Money = strawberry.field(description="Paid towards the plan so far.")
    remaining: Money = strawberry.field(
        description="Still to be recovered by the plan (zero once it is not active)."
    )
    next_due: Instalment | None = strawberry.field(
        description="The earliest instalment not yet paid, while the plan is active."
    )
    instalments: list[Instalment] = strawberry.field(description="In due-date order.")

    @classmethod
    def of(cls, state: PlanProgress, context: RequestContext) -> RepaymentPlanType:
        def money(value: DomainMoney) -> Money:
            return _money(value.amount, value.currency, context)  # type: ignore[return-value]

        following = state.next_due
        return cls(
            id=to_global_id("RepaymentPlan", context.require_tenant().id, state.plan.id),
            amount=money(state.amount),
            starts_on=state.plan.starts_on,
            status=state.status,
            recovered=money(state.recovered),
            remaining=money(state.remaining),
            next_due=Instalment.of(following, context) if following else None,
            instalments=[Instalment.of(i, context) for i in state.instalments],
        )


@strawberry.type(description="An audit entry: who did what, when, before and after.")
class AuditEntry:
    occurred_at: dt.datetime
    actor_id: strawberry.ID | None
    action: str
    entity_type: str
    entity_id: str
    before: strawberry.scalars.JSON | None
    after: strawberry.scalars.JSON | None

    @classmethod
    def from_row(cls, row: AuditRow, context: RequestContext) -> AuditEntry:
        actor = (
            to_global_id("User", context.require_tenant().id, row.actor_id)
            if row.actor_id
            else None
        )
        return cls(
            occurred_at=row.occurred_at,
            actor_id=actor,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            before=row.before,
            after=row.after,
        )


@strawberry.type(description="A page of the audit log.")
class AuditLogPage:
    entries: list[AuditEntry]
    numbers: list[int] = strawberry.field(
        description="Each entry's number; pass the last as `beforeId` for the next page."
    )
    has_next_page: bool


@strawberry.type(description="Money paid to an employee before the expense, to be settled.")
class Advance(Node):
    kind: str = strawberry.field(description="travel, business, petty_cash or salary.")
    amount: Money
    purpose: str
    project_code: str | None
    expected_settlement_date: dt.date = strawberry.field(
        description="Local date in the employee's branch time zone."
    )
    status: str = strawberry.field(
        description="draft, submitted, approved, rejected, cancelled, disbursed, "
        "partially_settled, settled or written_off."
    )
    attachments: strawberry.scalars.JSON
    submitted_at: dt.datetime | None
    disbursed_at: dt.datetime | None
    row: strawberry.Private[AdvanceRow]

    @classmethod
    def from_row(cls, row: AdvanceRow, context: RequestContext) -> Advance:
        return cls(
            id=to_global_id("Advance", context.require_tenant().id, row.id),
            kind=row.kind,
            amount=_money(row.amount, row.currency, context),  # type: ignore[arg-type]
            purpose=row.purpose,
            project_code=row.project_code,
            expected_settlement_date=row.expected_settlement_date,
            status=row.status,
            attachments=row.attachments,
            submitted_at=row.submitted_at,
            disbursed_at=row.disbursed_at,
            row=row,
        )

    @strawberry.field(description="The employee who owes the money.")
    async def employee(self, info: Ctx) -> EmployeeRef | None:
        return await _employee(info.context, self.row.employee_id)

    @strawberry.field(description="The branch whose currency and calendar apply.")
    async def branch(self, info: Ctx) -> BranchRef | None:
        return await load_branch(info.context, self.row.branch_id)

    @strawberry.field(description="What is still owed: the sum of the ledger entries.")
    async def outstanding(self, info: Ctx) -> Money:
        async with tenant_session() as session:
            balance = await ledger.outstanding(session, self.row.id)
        return _money(balance, self.row.currency, info.context)  # type: ignore[return-value]

    @strawberry.field(
        description="Money still out after the expected settlement date, judged on the "
        "branch's local calendar."
    )
    async def overdue(
        self,
        info: Ctx,
        at: Annotated[
            dt.datetime | None,
            strawberry.argument(description="The instant to judge at (default: now)."),
        ] = None,
    ) -> bool:
        async with tenant_session() as session:
            days = await advance_queries.branch_days(session, at=_instant(at))
        return ledger.is_overdue(self.row, days[self.row.branch_id])

    @strawberry.field(description="Every movement, in the order recorded.")
    async def entries(self, info: Ctx) -> list[LedgerEntry]:
        async with tenant_session() as session:
            rows = await ledger.entries(session, self.row.id)
        return [LedgerEntry.from_row(r, info.context) for r in rows]

    @strawberry.field(description="The approval chain frozen at submission.")
    async def approval_chain(self, info: Ctx) -> list[ApprovalStep]:
        async with tenant_session() as session:
            rows = await session.scalars(
                select(StepRow).where(StepRow.advance_id == self.row.id).order_by(StepRow.seq)
            )
            return [ApprovalStep.from_row(r, info.context) for r in rows]

    @strawberry.field(description="Repayment plans by payroll deduction, oldest first.")
    async def repayment_plans(
        self,
        info: Ctx,
        at: Annotated[
            dt.datetime | None,
            strawberry.argument(
                description="The instant overdue instalments are judged at (default: now)."
            ),
        ] = None,
    ) -> list[RepaymentPlanType]:
        async with tenant_session() as session:
            found = await plan_progress(session, [self.row.id], at=_instant(at))
        return [RepaymentPlanType.of(state, info.context) for state in found[self.row.id]]

    @strawberry.field(description="The advance's audit trail (admin and auditor only).")
    async def audit(self, info: Ctx) -> list[AuditEntry] | None:
        viewer = info.context.require_viewer()
        if not viewer.has_any_role("admin", "auditor"):
            return None
        async with tenant_session() as session:
            rows = await session.scalars(
                select(AuditRow)
                .where(AuditRow.entity_type == "advance", AuditRow.entity_id == str(self.row.id))
                .order_by(AuditRow.id)
            )
            return [AuditEntry.from_row(r, info.context) for r in rows]


async def load_advance(context: RequestContext, pk: uuid.UUID) -> Advance | None:
    viewer = context.require_viewer()
    async with tenant_session() as session:
        row = await advance_queries.get_advance(session, viewer, pk, today(context))
    return Advance.from_row(row, context) if row else None


async def _fetch_advance(context: RequestContext, pk: uuid.UUID) -> Advance | None:
    if context.viewer is None or context.tenant is None:
        return None
    return await load_advance(context, pk)


register_node("Advance", _fetch_advance)


@strawberry.type(description="An employee's advance history, shown to approvers.")
class CreditProfile:
    outstanding: list[Money] = strawberry.field(description="Outstanding, per currency.")
    open_advances: int
    overdue_count: int
    overdue_amount: list[Money]
    average_days_to_settle: Decimal | None = strawberry.field(
        description="Average days from disbursement to settlement."
    )
    rejections_last_12_months: int
    write_offs_last_12_months: int
    written_off_last_12_months: list[Money]


async def credit_profile_of(context: RequestContext, employee_id: uuid.UUID) -> CreditProfile:
    """The employee's profile; the caller has checked that the viewer may see it. The
    request's loader fetches the profiles of a whole page at once."""
    profile = await loaders.credit_profiles(context).load(employee_id)

    def money(values: list[DomainMoney]) -> list[Money]:
        return [_money(m.amount, m.currency, context) for m in values]  # type: ignore[misc]

    return CreditProfile(
        outstanding=money(profile.outstanding),
        open_advances=profile.open_advances,
        overdue_count=profile.overdue_count,
        overdue_amount=money(profile.overdue_amount),
        average_days_to_settle=profile.average_days_to_settle,
        rejections_last_12_months=profile.rejections_12_months,
        write_offs_last_12_months=profile.write_offs_12_months,
        written_off_last_12_months=money(profile.written_off_12_months),
    )


@strawberry.type(description="A step waiting for the viewer, with what they need to decide.")
class InboxItem:
    step: ApprovalStep
    advance: Advance

    @strawberry.field(description="The requester's credit profile.")
    async def credit_profile(self, info: Ctx) -> CreditProfile:
        return await credit_profile_of(info.context, self.advance.row.employee_id)


@strawberry.type(description="A page of the viewer's approval inbox, oldest first.")
class InboxConnection:
    items: list[InboxItem]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="A page of advances, newest first.")
class AdvanceConnection:
    nodes: list[Advance]
    has_next_page: bool
    end_cursor: str | None


@strawberry.type(description="Overdue money in one days-overdue bucket, for one group.")
class AgingBucket:
    group: str = strawberry.field(description="org_unit or branch.")
    org_unit: OrgUnitRef | None
    branch: BranchRef | None
    bucket: str = strawberry.field(description="0-30, 31-60, 61-90 or 90+ days overdue.")
    amount: Money = strawberry.field(description="In the advances' own currency.")
    converted: Money = strawberry.field(description="In the tenant's currency.")
    count: int


@strawberry.type(description="Who would approve a request, in order.")
class PlannedApprover:
    role: str
    reason: str
    approver_role: str | None
    approver_pk: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The approving employee (null for role steps).")
    async def approver(self, info: Ctx) -> EmployeeRef | None:
        return await _employee(info.context, self.approver_pk)


@strawberry.type(description="One thing to settle before an exit completes.")
class ClearanceItem:
    id: strawberry.ID
    kind: str = strawberry.field(description="advance, repayment_plan or custom.")
    description: str
    status: str = strawberry.field(description="open, cleared or waived.")
    resolution: str | None
    remaining: Money | None = strawberry.field(
        description="Still owed now: the advance's outstanding balance, or what the "
        "repayment plan has still to recover (null for HR items)."
    )
    repayment_plan: RepaymentPlanType | None = strawberry.field(
        description="The plan, for repayment plan items, with its instalments."
    )
    advance_pk: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The advance, for advance and plan items.")
    async def advance(self, info: Ctx) -> Advance | None:
        return await load_advance(info.context, self.advance_pk) if self.advance_pk else None


@strawberry.type(description="The exit process of one employee.")
class OffboardingCase(Node):
    kind: str = strawberry.field(description="resignation or termination.")
    status: str = strawberry.field(description="open, completed or withdrawn.")
    last_working_day: dt.date
    reason: str | None
    completed_at: dt.datetime | None
    items: list[ClearanceItem]
    employee_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The employee leaving.")
    async def employee(self, info: Ctx) -> EmployeeRef | None:
        return await _employee(info.context, self.employee_pk)


async def _case(context: RequestContext, case_id: uuid.UUID) -> OffboardingCase | None:
    async with tenant_session() as session:
        row = await session.get(CaseRow, case_id)
        if row is None:
            return None
        items = list(
            await session.scalars(
                select(ItemRow).where(ItemRow.case_id == row.id).order_by(ItemRow.kind, ItemRow.id)
            )
        )
        advance_ids = sorted({i.advance_id for i in items if i.advance_id is not None})
        owed = await advance_queries.balances(session, advance_ids)
        currencies = {
            r.id: r.currency
            for r in await session.execute(
                select(AdvanceRow.id, AdvanceRow.currency).where(AdvanceRow.id.in_(advance_ids))
            )
        }
        plans = {
            state.plan.id: RepaymentPlanType.of(state, context)
            for states in (await plan_progress(session, advance_ids)).values()
            for state in states
        }
    tenant_id = context.require_tenant().id

    def remaining(item: ItemRow) -> Money | None:
        if item.kind == "repayment_plan" and item.plan_id in plans:
            return plans[item.plan_id].remaining
        if item.kind == "advance" and item.advance_id is not None:
            return _money(
                owed.get(item.advance_id, Decimal(0)), currencies[item.advance_id], context
            )
        return None

    return OffboardingCase(
        id=to_global_id("OffboardingCase", tenant_id, row.id),
        kind=row.kind,
        status=row.status,
        last_working_day=row.last_working_day,
        reason=row.reason,
        completed_at=row.completed_at,
        employee_pk=row.employee_id,
        items=[
            ClearanceItem(
                id=to_global_id("ClearanceItem", tenant_id, i.id),
                kind=i.kind,
                description=i.description,
                status=i.status,
                resolution=i.resolution,
                remaining=remaining(i),
                repayment_plan=plans.get(i.plan_id) if i.plan_id else None,
                advance_pk=i.advance_id,
            )
            for i in items
        ],
    )


def _may_see_cases(context: RequestContext) -> bool:
    viewer = context.require_viewer()
    return viewer.has_any_role("admin", "hr", "finance", "auditor")


# --- queries ---------------------------------------------------------------------------------


@strawberry.input(description="Filters of the advance list.")
class AdvanceFilterInput:
    employee_id: strawberry.ID | None = None
    status: list[str] | None = None
    overdue: bool | None = None
    overdue_at: dt.datetime | None = strawberry.field(
        default=None, description="The instant `overdue` is judged at (default: now)."
    )
    org_unit_id: strawberry.ID | None = strawberry.field(
        default=None, description="This unit and everything under it."
    )
    branch_id: strawberry.ID | None = None


@strawberry.input(description="A request to preview the approval chain of.")
class ApprovalChainPreviewInput:
    kind: str
    amount: MoneyInput
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="Default: the viewer's own employee record."
    )


def _after(cursor: str | None, type_name: str, context: RequestContext) -> uuid.UUID | None:
    return decode_optional(cursor, type_name, context, "after")  # type: ignore[arg-type]


@strawberry.type
class AdvanceQueries:
    @strawberry.field(description="Advances the viewer may see, newest first.")
    async def advances(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: AdvanceFilterInput | None = None,
    ) -> AdvanceConnection:
        context = info.context
        viewer = context.require_viewer()
        given = filter or AdvanceFilterInput()
        filters = advance_queries.AdvanceFilter(
            employee_id=decode_optional(given.employee_id, "Employee", context, "employeeId"),
            statuses=tuple(given.status or ()),
            overdue=given.overdue,
            overdue_at=_instant(given.overdue_at),
            org_unit_id=decode_optional(given.org_unit_id, "OrgUnit", context, "orgUnitId"),
            branch_id=decode_optional(given.branch_id, "Branch", context, "branchId"),
        )
        async with tenant_session() as session:
            rows, more = await advance_queries.list_advances(
                session,
                viewer,
                filters,
                first=first,
                after=_after(after, "Advance", context),
                day=today(context),
            )
        nodes = [Advance.from_row(r, context) for r in rows]
        return AdvanceConnection(
            nodes=nodes, has_next_page=more, end_cursor=nodes[-1].id if nodes else None
        )

    @strawberry.field(description="One advance with its entries, chain and audit trail.")
    async def advance(self, info: Ctx, id: strawberry.ID) -> Advance | None:
        context = info.context
        try:
            pk = decode_id(id, "Advance", context, "id")
        except DomainError:
            return None
        return await load_advance(context, pk)

    @strawberry.field(description="Approval steps waiting for the viewer, oldest first.")
    async def approval_inbox(
        self, info: Ctx, first: int = 20, after: str | None = None
    ) -> InboxConnection:
        context = info.context
        viewer = context.require_viewer()
        async with tenant_session() as session:
            pairs, more = await advance_queries.inbox(
                session, viewer, first=first, after=_after(after, "ApprovalStep", context)
            )
        items = [
            InboxItem(
                step=ApprovalStep.from_row(step, context),
                advance=Advance.from_row(advance, context),
            )
            for step, advance in pairs
        ]
        return InboxConnection(
            items=items, has_next_page=more, end_cursor=items[-1].step.id if items else None
        )

    @strawberry.field(description="Who would approve this request if submitted now.")
    async def approval_chain_preview(
        self, info: Ctx, input: ApprovalChainPreviewInput
    ) -> list[PlannedApprover]:
        context = info.context
        planned = await actions.preview_chain(
            context.require_viewer(),
            employee_id=decode_optional(input.employee_id, "Employee", context, "employeeId"),
            kind=input.kind,
            amount=input.amount.amount,
            currency=input.amount.currency,
        )
        return [
            PlannedApprover(
                role=p.role,
                reason=p.reason,
                approver_role=p.approver_role,
                approver_pk=p.approver_id,
            )
            for p in planned
        ]

    @strawberry.field(
        description="Overdue outstanding money by days overdue, per org unit and branch."
    )
    async def advance_aging(
        self,
        info: Ctx,
        as_of: Annotated[
            dt.date | None,
            strawberry.argument(
                description="Judge every branch on this local date (default: each "
                "branch's own today)."
            ),
        ] = None,
    ) -> list[AgingBucket]:
        context = info.context
        viewer = context.require_viewer()
        tenant = context.require_tenant()
        day = as_of or today(context)
        async with tenant_session() as session:
            rows = await advance_queries.aging(
                session, viewer, tenant_currency=tenant.currency, as_of=as_of
            )
        # Gathered, so that the loaders fetch every unit and branch in one batch each.
        units = await asyncio.gather(
            *(load_unit(context, r.group_id, day) for r in rows if r.group == "org_unit")
        )
        branches = await asyncio.gather(
            *(load_branch(context, r.group_id) for r in rows if r.group == "branch")
        )
        unit_of = iter(units)
        branch_of = iter(branches)
        return [
            AgingBucket(
                group=row.group,
                org_unit=next(unit_of) if row.group == "org_unit" else None,
                branch=next(branch_of) if row.group == "branch" else None,
                bucket=row.bucket,
                amount=_money(row.amount, row.currency, context),  # type: ignore[arg-type]
                converted=_money(row.converted, tenant.currency, context),  # type: ignore[arg-type]
                count=row.count,
            )
            for row in rows
        ]

    @strawberry.field(
        description="The append-only audit log, newest first (admin and auditor only)."
    )
    async def audit_log(
        self,
        info: Ctx,
        first: Annotated[int, strawberry.argument(description="At most 100.")] = 50,
        before_id: Annotated[
            int | None, strawberry.argument(description="Continue below this entry's number.")
        ] = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
    ) -> AuditLogPage:
        context = info.context
        context.require_role("admin", "auditor")
        limit = max(1, min(first, 100))
        async with tenant_session() as session:
            query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
            if entity_type:
                query = query.where(AuditRow.entity_type == entity_type)
            if entity_id:
                query = query.where(AuditRow.entity_id == entity_id)
            if before_id is not None:
                query = query.where(AuditRow.id < before_id)
            rows = list(await session.scalars(query))
        return AuditLogPage(
            entries=[AuditEntry.from_row(r, context) for r in rows[:limit]],
            numbers=[r.id for r in rows[:limit]],
            has_next_page=len(rows) > limit,
        )

    @strawberry.field(description="Offboarding cases (admin, hr, finance, auditor).")
    async def offboarding_cases(
        self, info: Ctx, status: str | None = None
    ) -> list[OffboardingCase]:
        context = info.context
        if not _may_see_cases(context):
            return []
        async with tenant_session() as session:
            query = select(CaseRow.id).order_by(CaseRow.opened_at.desc())
            if status:
                query = query.where(CaseRow.status == status)
            ids = list(await session.scalars(query))
        found = [await _case(context, i) for i in ids]
        return [c for c in found if c is not None]


# --- mutations -------------------------------------------------------------------------------


@strawberry.input(description="An attachment's metadata (the file lives elsewhere).")
class AttachmentInput:
    name: str
    reference: str


@strawberry.input(description="A new advance request (saved as a draft).")
class RequestAdvanceInput:
    kind: str = strawberry.field(description="travel, business, petty_cash or salary.")
    amount: MoneyInput
    purpose: str
    expected_settlement_date: dt.date
    project_code: str | None = None
    attachments: list[AttachmentInput] | None = None
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="HR only: request for someone else."
    )


@strawberry.type(description="Result of a mutation on an advance.")
class AdvancePayload:
    advance: Advance | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Submit, cancel and similar actions on one advance.")
class AdvanceActionInput:
    advance_id: strawberry.ID
    reason: str | None = None


@strawberry.input(description="A decision on an approval step.")
class DecideApprovalInput:
    step_id: strawberry.ID
    approve: bool
    comment: str | None = None


@strawberry.type(description="Result of `decideApproval`.")
class ApprovalPayload:
    step: ApprovalStep | None = None
    advance: Advance | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Hand one's approval steps to a colleague for a date range.")
class DelegateApprovalsInput:
    delegate_id: strawberry.ID
    starts_on: dt.date
    ends_on: dt.date


@strawberry.type(description="Result of `delegateApprovals`.")
class DelegationPayload:
    ok: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Finance paying out an approved advance.")
class DisburseAdvanceInput:
    advance_id: strawberry.ID
    idempotency_key: str = strawberry.field(description="The same key twice records one payment.")
    paid: MoneyInput | None = strawberry.field(
        default=None, description="What was paid, if in another currency than the advance."
    )
    occurred_on: dt.date | None = None


@strawberry.input(description="One receipt of an expense claim.")
class ClaimLineInput:
    spent_on: dt.date
    category: str
    amount: MoneyInput
    receipt_reference: str | None = None


@strawberry.input(description="Receipts that settle an advance.")
class SubmitExpenseClaimInput:
    advance_id: strawberry.ID
    lines: list[ClaimLineInput]


@strawberry.input(description="Money paid back by the employee.")
class RecordReturnInput:
    advance_id: strawberry.ID
    amount: MoneyInput
    occurred_on: dt.date
    method: str = strawberry.field(default="bank", description="cash or bank.")


@strawberry.input(description="A recovery from pay (an instalment, or the final pay).")
class RecordPayrollDeductionInput:
    advance_id: strawberry.ID
    amount: MoneyInput
    occurred_on: dt.date
    reason: str | None = None


@strawberry.input(description="Monthly payroll deductions for the outstanding balance.")
class CreateRepaymentPlanInput:
    advance_id: strawberry.ID
    instalments: int
    starts_on: dt.date = strawberry.field(
        description="Instalments fall due 1..N months after this date."
    )


@strawberry.input(description="Give up the outstanding balance, with a reason.")
class WriteOffAdvanceInput:
    advance_id: strawberry.ID
    reason: str


@strawberry.input(description="Reverse a mistaken ledger entry.")
class ReverseLedgerEntryInput:
    entry_id: strawberry.ID
    reason: str


@strawberry.input(description="A row of the authority matrix.")
class AuthorityRuleInput:
    min_rank: int
    max_rank: int
    currency: str
    kind: str | None = None
    branch_id: strawberry.ID | None = None
    max_single_amount: Decimal | None = None
    max_outstanding: Decimal | None = None
    max_open_advances: int | None = None
    approval_limit: Decimal | None = strawberry.field(
        default=None, description="What a holder of these levels may approve alone."
    )


@strawberry.input(description="A named approver above the matrix.")
class NamedApproverInput:
    role: str = strawberry.field(description="e.g. finance_director or ceo.")
    position_id: strawberry.ID


@strawberry.input(description="The whole authority matrix and advance policy.")
class SetAuthorityMatrixInput:
    rules: list[AuthorityRuleInput]
    block_when_overdue: bool = True
    named_approvers: list[NamedApproverInput] = strawberry.field(default_factory=list)


@strawberry.type(description="Result of `setAuthorityMatrix`.")
class AuthorityMatrixPayload:
    rule_count: int = 0
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="An exchange rate valid from a date.")
class SetExchangeRateInput:
    base: str
    quote: str
    rate: Decimal = strawberry.field(description="Units of quote per unit of base.")
    valid_from: dt.date
    source: str | None = None


@strawberry.type(description="Result of `setExchangeRate`.")
class ExchangeRatePayload:
    ok: bool = False
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="A resignation.")
class SubmitResignationInput:
    last_working_day: dt.date
    reason: str | None = None
    employee_id: strawberry.ID | None = strawberry.field(
        default=None, description="HR only: record it for someone else."
    )


@strawberry.input(description="A termination by HR.")
class StartTerminationInput:
    employee_id: strawberry.ID
    last_working_day: dt.date
    reason: str


@strawberry.type(description="An advance still owed, as reported by `completeOffboarding`.")
class OwedAdvance:
    advance_id: strawberry.ID
    purpose: str
    outstanding: Money


@strawberry.type(description="Result of an offboarding mutation.")
class OffboardingPayload:
    case: OffboardingCase | None = None
    outstanding_advances: list[OwedAdvance] = strawberry.field(default_factory=list)
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Complete an exit.")
class CompleteOffboardingInput:
    case_id: strawberry.ID


@strawberry.input(description="Waive a clearance item, with a reason.")
class WaiveClearanceItemInput:
    item_id: strawberry.ID
    reason: str


@strawberry.input(description="Add an HR item to a clearance list.")
class AddClearanceItemInput:
    case_id: strawberry.ID
    description: str


@strawberry.input(description="Mark an HR clearance item done.")
class ClearClearanceItemInput:
    item_id: strawberry.ID
    resolution: str


async def _advance_payload(context: RequestContext, run: Any) -> AdvancePayload:
    """The advance after the mutation (`run` returns it or its key), read as the viewer
    may see it: null if they may not, as on the read path."""
    done, errors = await attempt(context, run)
    if done is None:
        return AdvancePayload(user_errors=errors)
    pk = done if isinstance(done, uuid.UUID) else done.id
    return AdvancePayload(advance=await load_advance(context, pk), user_errors=errors)


@strawberry.type
class AdvanceMutations:
    @strawberry.mutation(description="Request an advance (saved as a draft).")
    async def request_advance(self, info: Ctx, input: RequestAdvanceInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            return await actions.request_advance(
                context.require_viewer(),
                actions.AdvanceRequest(
                    kind=input.kind,
                    amount=input.amount.amount,
                    currency=input.amount.currency,
                    purpose=input.purpose,
                    expected_settlement_date=input.expected_settlement_date,
                    project_code=input.project_code,
                    attachments=tuple(
                        {"name": a.name, "reference": a.reference} for a in input.attachments or ()
                    ),
                    employee_id=decode_optional(
                        input.employee_id, "Employee", context, "employeeId"
                    ),
                ),
            )

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Submit a draft: checks the matrix, freezes the chain.")
    async def submit_advance(self, info: Ctx, input: AdvanceActionInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            return await actions.submit_advance(context.require_viewer(), pk)

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Cancel an advance before any money moves.")
    async def cancel_advance(self, info: Ctx, input: AdvanceActionInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            return await actions.cancel_advance(context.require_viewer(), pk, input.reason)

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Approve or reject the current step of an advance.")
    async def decide_approval(self, info: Ctx, input: DecideApprovalInput) -> ApprovalPayload:
        context = info.context

        async def run() -> StepRow:
            pk = decode_id(input.step_id, "ApprovalStep", context, "stepId")
            return await actions.decide_approval(
                context.require_viewer(), pk, approve=input.approve, comment=input.comment
            )

        step, errors = await attempt(context, run)
        if step is None:
            return ApprovalPayload(user_errors=errors)
        return ApprovalPayload(
            step=ApprovalStep.from_row(step, context),
            advance=await load_advance(context, step.advance_id),
        )

    @strawberry.mutation(description="Hand your approval steps to a colleague for a while.")
    async def delegate_approvals(
        self, info: Ctx, input: DelegateApprovalsInput
    ) -> DelegationPayload:
        context = info.context

        async def run() -> object:
            return await actions.delegate_approvals(
                context.require_viewer(),
                delegate_id=decode_id(input.delegate_id, "Employee", context, "delegateId"),
                starts_on=input.starts_on,
                ends_on=input.ends_on,
            )

        done, errors = await attempt(context, run)
        return DelegationPayload(ok=done is not None, user_errors=errors)

    @strawberry.mutation(description="Pay out an approved advance (finance; idempotent).")
    async def disburse_advance(self, info: Ctx, input: DisburseAdvanceInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.disburse_advance(
                context.require_viewer(),
                pk,
                idempotency_key=input.idempotency_key,
                paid=input.paid.amount if input.paid else None,
                paid_currency=input.paid.currency if input.paid else None,
                occurred_on=input.occurred_on,
            )
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Settle an advance with receipts.")
    async def submit_expense_claim(
        self, info: Ctx, input: SubmitExpenseClaimInput
    ) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.submit_expense_claim(
                context.require_viewer(),
                pk,
                [
                    actions.ClaimLine(
                        spent_on=line.spent_on,
                        category=line.category,
                        amount=line.amount.amount,
                        currency=line.amount.currency,
                        receipt_reference=line.receipt_reference,
                    )
                    for line in input.lines
                ],
            )
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Record money paid back (finance).")
    async def record_return(self, info: Ctx, input: RecordReturnInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.record_return(
                context.require_viewer(),
                pk,
                amount=input.amount.amount,
                currency=input.amount.currency,
                occurred_on=input.occurred_on,
                method=input.method,
            )
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Record a recovery from pay, e.g. from the final pay.")
    async def record_payroll_deduction(
        self, info: Ctx, input: RecordPayrollDeductionInput
    ) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.record_payroll_deduction(
                context.require_viewer(),
                pk,
                amount=input.amount.amount,
                currency=input.amount.currency,
                occurred_on=input.occurred_on,
                reason=input.reason,
            )
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Plan monthly payroll deductions for what is owed.")
    async def create_repayment_plan(
        self, info: Ctx, input: CreateRepaymentPlanInput
    ) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.create_repayment_plan(
                context.require_viewer(), pk, count=input.instalments, starts_on=input.starts_on
            )
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Write off what is owed; needs covering authority.")
    async def write_off_advance(self, info: Ctx, input: WriteOffAdvanceInput) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.advance_id, "Advance", context, "advanceId")
            await actions.write_off_advance(context.require_viewer(), pk, reason=input.reason)
            return pk

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Reverse a mistaken ledger entry (finance).")
    async def reverse_ledger_entry(
        self, info: Ctx, input: ReverseLedgerEntryInput
    ) -> AdvancePayload:
        context = info.context

        async def run() -> AdvanceRow | uuid.UUID:
            pk = decode_id(input.entry_id, "LedgerEntry", context, "entryId")
            entry = await actions.reverse_entry(context.require_viewer(), pk, reason=input.reason)
            return entry.advance_id

        return await _advance_payload(context, run)

    @strawberry.mutation(description="Replace the authority matrix and policy (admin).")
    async def set_authority_matrix(
        self, info: Ctx, input: SetAuthorityMatrixInput
    ) -> AuthorityMatrixPayload:
        context = info.context

        async def run() -> list[Any]:
            return await actions.set_authority_matrix(
                context.require_viewer(),
                [
                    actions.RuleInput(
                        min_rank=r.min_rank,
                        max_rank=r.max_rank,
                        currency=r.currency,
                        kind=r.kind,
                        branch_id=decode_optional(r.branch_id, "Branch", context, "branchId"),
                        max_single_amount=r.max_single_amount,
                        max_outstanding=r.max_outstanding,
                        max_open_advances=r.max_open_advances,
                        approval_limit=r.approval_limit,
                    )
                    for r in input.rules
                ],
                block_when_overdue=input.block_when_overdue,
                named_approvers=[
                    (n.role, decode_id(n.position_id, "Position", context, "positionId"))
                    for n in input.named_approvers
                ],
            )

        rules, errors = await attempt(context, run)
        return AuthorityMatrixPayload(rule_count=len(rules or []), user_errors=errors)

    @strawberry.mutation(description="Enter an exchange rate valid from a date (finance).")
    async def set_exchange_rate(
        self, info: Ctx, input: SetExchangeRateInput
    ) -> ExchangeRatePayload:
        context = info.context

        async def run() -> object:
            return await actions.set_exchange_rate(
                context.require_viewer(),
                base=input.base,
                quote=input.quote,
                rate=input.rate,
                valid_from=input.valid_from,
                source=input.source,
            )

        done, errors = await attempt(context, run)
        return ExchangeRatePayload(ok=done is not None, user_errors=errors)

    @strawberry.mutation(description="Resign (or, for HR, record a resignation).")
    async def submit_resignation(
        self, info: Ctx, input: SubmitResignationInput
    ) -> OffboardingPayload:
        context = info.context

        async def run() -> CaseRow:
            return await offboarding.submit_resignation(
                context.require_viewer(),
                last_working_day=input.last_working_day,
                reason=input.reason,
                employee_id=decode_optional(input.employee_id, "Employee", context, "employeeId"),
            )

        return await _case_payload(context, run)

    @strawberry.mutation(description="End an employment (HR).")
    async def start_termination(
        self, info: Ctx, input: StartTerminationInput
    ) -> OffboardingPayload:
        context = info.context

        async def run() -> CaseRow:
            return await offboarding.start_termination(
                context.require_viewer(),
                employee_id=decode_id(input.employee_id, "Employee", context, "employeeId"),
                last_working_day=input.last_working_day,
                reason=input.reason,
            )

        return await _case_payload(context, run)

    @strawberry.mutation(
        description="Complete an exit; fails with OUTSTANDING_ADVANCES while money is owed."
    )
    async def complete_offboarding(
        self, info: Ctx, input: CompleteOffboardingInput
    ) -> OffboardingPayload:
        context = info.context
        context.require_viewer()
        try:
            pk = decode_id(input.case_id, "OffboardingCase", context, "caseId")
            row = await offboarding.complete_offboarding(context.require_viewer(), pk)
        except offboarding.OutstandingAdvances as error:
            tenant_id = context.require_tenant().id
            owed = [
                OwedAdvance(
                    advance_id=to_global_id("Advance", tenant_id, o.advance_id),
                    purpose=o.purpose,
                    outstanding=_money(o.outstanding.amount, o.outstanding.currency, context),
                )  # type: ignore[arg-type]
                for o in error.owed
            ]
            return OffboardingPayload(
                outstanding_advances=owed, user_errors=[user_error(error, context.locale)]
            )
        except DomainError as error:
            return OffboardingPayload(user_errors=[user_error(error, context.locale)])
        return OffboardingPayload(case=await _case(context, row.id))

    @strawberry.mutation(description="Waive a clearance item; for money, within authority.")
    async def waive_clearance_item(
        self, info: Ctx, input: WaiveClearanceItemInput
    ) -> OffboardingPayload:
        context = info.context

        async def run() -> CaseRow:
            pk = decode_id(input.item_id, "ClearanceItem", context, "itemId")
            item = await offboarding.waive_clearance_item(
                context.require_viewer(), pk, input.reason
            )
            async with tenant_session() as session:
                case = await session.get(CaseRow, item.case_id)
            assert case is not None
            return case

        return await _case_payload(context, run)

    @strawberry.mutation(description="Add an HR item to a clearance list.")
    async def add_clearance_item(
        self, info: Ctx, input: AddClearanceItemInput
    ) -> OffboardingPayload:
        context = info.context

        async def run() -> CaseRow:
            pk = decode_id(input.case_id, "OffboardingCase", context, "caseId")
            await offboarding.add_clearance_item(context.require_viewer(), pk, input.description)
            async with tenant_session() as session:
                case = await session.get(CaseRow, pk)
            assert case is not None
            return case

        return await _case_payload(context, run)

    @strawberry.mutation(description="Mark an HR clearance item done.")
    async def clear_clearance_item(
        self, info: Ctx, input: ClearClearanceItemInput
    ) -> OffboardingPayload:
        context = info.context

        async def run() -> CaseRow:
            pk = decode_id(input.item_id, "ClearanceItem", context, "itemId")
            item = await offboarding.clear_item(context.require_viewer(), pk, input.resolution)
            async with tenant_session() as session:
                case = await session.get(CaseRow, item.case_id)
            assert case is not None
            return case

        return await _case_payload(context, run)


async def _case_payload(context: RequestContext, run: Any) -> OffboardingPayload:
    row, errors = await attempt(context, run)
    if row is None:
        return OffboardingPayload(user_errors=errors)
    return OffboardingPayload(case=await _case(context, row.id))
