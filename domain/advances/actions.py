"""The only writers of advances, their ledger and their approvals.

Each action checks who is acting, validates before writing, runs in one tenant
transaction, locks the advance row when its state changes (so concurrent calls take
turns), and records an audit entry with the state before and after.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, clock, outbox
from domain.advances import bounds, ledger
from domain.advances.authority import check_request, may_approve
from domain.advances.chain import placements, plan_chain
from domain.advances.models import (
    KINDS,
    Advance,
    ApprovalStep,
    AuthorityRule,
    Delegation,
    ExchangeRate,
    ExpenseClaim,
    ExpenseClaimLine,
    LedgerEntry,
    RepaymentInstalment,
    RepaymentPlan,
)
from domain.advances.plans import instalments, plan_progress
from domain.advances.queries import may_see
from domain.advances.rates import convert
from domain.errors import DomainError, NotFound, PermissionDenied
from domain.identity.actions import Viewer
from domain.identity.models import User
from domain.money import Money
from domain.organisation.models import Branch
from domain.people.models import Employee
from domain.permissions import HR_WRITERS, require_any_role
from domain.tenant_settings import get_setting, set_setting
from domain.validation import optional_text, required_text
from i18n import N_
from tenants.binding import tenant_session
from tenants.context import current_tenant

FINANCE = ("finance", "admin")
STAFF = ("admin", "hr", "finance")
# Giving up money owed needs one of these roles as well as a job level whose approval limit
# covers the amount: finance and admin write off; HR, who runs exits, may also waive.
WRITE_OFF_ROLES = ("finance", "admin")
WAIVER_ROLES = ("finance", "admin", "hr")
# An employee in these states may ask for, be approved and be paid an advance.
STAYING = ("active", "on_leave")


class AlreadyDecided(DomainError):
    """Raised when an approval step was decided by someone else first."""

    code = "ALREADY_DECIDED"


class NotCurrentStep(DomainError):
    """Raised when a decision is made on a step whose turn has not come or has passed."""

    code = "NOT_CURRENT_STEP"


# --- requesting ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AdvanceRequest:
    kind: str
    amount: Decimal
    purpose: str
    expected_settlement_date: dt.date
    currency: str | None = None  # default: the employee's branch currency
    project_code: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()
    employee_id: uuid.UUID | None = None  # default: the actor's own employee record


async def request_advance(actor: Viewer, data: AdvanceRequest) -> Advance:
    """Create a draft advance for the actor (or, for HR, for someone else)."""
    employee_id = data.employee_id or actor.employee_id
    if employee_id is None:
        raise DomainError(N_("Your user is not linked to an employee."), field="employeeId")
    if employee_id != actor.employee_id:
        require_any_role(actor, *HR_WRITERS)
    if data.kind not in KINDS:
        raise DomainError(N_("Unknown kind of advance."), field="kind")
    attachments = [_attachment(a) for a in data.attachments]
    async with tenant_session() as session:
        if await session.get(Employee, employee_id) is None:
            raise NotFound(N_("The employee does not exist."), field="employeeId")
        today = clock.local_today(await _tenant_zone(session))
        place = (await placements(session, {employee_id}, today)).get(employee_id)
        if place is None or place.branch_id is None:
            raise DomainError(N_("The employee has no branch today."), field="employeeId")
        if place.status not in ("active", "on_leave"):
            raise DomainError(
                N_("Only a current employee may request an advance."), field="employeeId"
            )
        branch = await session.get(Branch, place.branch_id)
        assert branch is not None
        money = bounds.money(data.amount, data.currency or branch.currency)
        if money.amount <= 0:
            raise DomainError(N_("The amount must be above zero."), field="amount")
        branch_today = clock.local_today(branch.time_zone)
        if data.expected_settlement_date < branch_today:
            raise DomainError(
                N_("The settlement date cannot be in the past."), field="expectedSettlementDate"
            )
        advance = Advance(
            id=uuid.uuid4(),
            employee_id=employee_id,
            branch_id=branch.id,
            kind=data.kind,
            amount=money.amount,
            currency=money.currency,
            purpose=required_text(data.purpose, "purpose", max_length=2000),
            project_code=optional_text(data.project_code, "projectCode", max_length=64),
            expected_settlement_date=data.expected_settlement_date,
            attachments=attachments,
            status="draft",
            requested_by=actor.id,
        )
        session.add(advance)
        _audit(session, actor, "advance.request", advance, None)
    return advance


async def submit_advance(actor: Viewer, advance_id: uuid.UUID) -> Advance:
    """Check the request against the matrix and freeze its approval chain."""
    async with tenant_session() as session:
        advance = await _locked(session, advance_id)
        _require_requester_or_hr(actor, advance)
        if advance.status != "draft":
            raise DomainError(N_("Only a draft can be submitted."), field="id")
        before = _snapshot(advance)
        branch = await session.get(Branch, advance.branch_id)
        assert branch is not None
        today = clock.local_today(branch.time_zone)
        place = await _require_staying(session, advance, today, field="advanceId")
        money = Money(advance.amount, advance.currency)
        await check_request(
            session,
            employee_id=advance.employee_id,
            rank=place.rank,
            branch_id=advance.branch_id,
            kind=advance.kind,
            amount=money,
            today=today,
        )
        steps = await plan_chain(
            session, requester_id=advance.employee_id, kind=advance.kind, amount=money, day=today
        )
        frozen = [
            ApprovalStep(
                id=uuid.uuid4(),
                advance_id=advance.id,
                seq=seq,
                role=step.role,
                approver_id=step.approver_id,
                approver_role=step.approver_role,
                reason=step.reason,
                status="pending",
            )
            for seq, step in enumerate(steps, start=1)
        ]
        session.add_all(frozen)
        if frozen:
            await _request_approval(session, advance, frozen[0])
        advance.status = "submitted"
        advance.submitted_at = clock.now()
        _audit(
            session,
            actor,
            "advance.submit",
            advance,
            before,
            chain=[(s.role, s.approver_id, s.approver_role) for s in steps],
        )
    return advance


async def preview_chain(
    actor: Viewer,
    *,
    employee_id: uuid.UUID | None,
    kind: str,
    amount: Decimal,
    currency: str | None,
) -> list[Any]:
    """Who would approve this request if it were submitted now (nothing is written)."""
    employee_id = employee_id or actor.employee_id
    if employee_id is None:
        raise DomainError(N_("Your user is not linked to an employee."), field="employeeId")
    if employee_id != actor.employee_id:
        require_any_role(actor, *STAFF)
    if kind not in KINDS:
        raise DomainError(N_("Unknown kind of advance."), field="kind")
    async with tenant_session() as session:
        today = clock.local_today(await _tenant_zone(session))
        place = (await placements(session, {employee_id}, today)).get(employee_id)
        if place is None or place.branch_id is None:
            raise DomainError(N_("The employee has no branch today."), field="employeeId")
        branch = await session.get(Branch, place.branch_id)
        assert branch is not None
        money = bounds.money(amount, currency or branch.currency)
        return await plan_chain(
            session,
            requester_id=employee_id,
            kind=kind,
            amount=money,
            day=clock.local_today(branch.time_zone),
        )


async def cancel_advance(actor: Viewer, advance_id: uuid.UUID, reason: str | None) -> Advance:
    async with tenant_session() as session:
        advance = await _locked(session, advance_id)
        _require_requester_or_hr(actor, advance)
        if advance.status in ("rejected", "cancelled"):
            raise DomainError(N_("This advance is already closed."), field="id")
        if advance.status not in ("draft", "submitted", "approved"):
            raise DomainError(
                N_("Money has moved; settle or write the advance off instead."), field="id"
            )
        await cancel_in(session, actor, advance, reason or "cancelled")
    return advance


# --- approvals -------------------------------------------------------------------------------


async def decide_approval(
    actor: Viewer, step_id: uuid.UUID, *, approve: bool, comment: str | None = None
) -> ApprovalStep:
    """Approve or reject the current step. Concurrent deciders take turns on the advance
    row; the first decides, the others are told it was already decided."""
    async with tenant_session() as session:
        step = await session.get(ApprovalStep, step_id)
        if step is None:
            raise NotFound(N_("The approval step does not exist."), field="stepId")
        advance = await _locked(session, step.advance_id)
        if not await _sees(session, actor, advance):
            raise NotFound(N_("The approval step does not exist."), field="stepId")
        await session.refresh(step)
        if step.status != "pending":
            raise AlreadyDecided(N_("This step has already been decided."), field="stepId")
        current = await _current_step(session, advance.id)
        if current is None or current.id != step.id:
            raise NotCurrentStep(N_("It is not this step's turn."), field="stepId")
        branch = await session.get(Branch, advance.branch_id)
        assert branch is not None
        branch_today = clock.local_today(branch.time_zone)
        acting_for = await _acting_for(session, actor, step, advance, branch_today)
        await _require_fresh_eyes(session, actor, advance, acting_for)
        if approve:
            # A rejection stays possible: it is how a leaver's request ends.
            await _require_staying(session, advance, branch_today, field="stepId")
        before = _snapshot(advance)
        step.status = "approved" if approve else "rejected"
        step.decided_by = actor.id
        step.decided_for = acting_for
        step.decided_at = clock.now()
        step.comment = optional_text(comment, "comment", max_length=2000)
        if not approve:
            await _cancel_pending_steps(session, advance.id)
            advance.status = "rejected"
            advance.decided_at = step.decided_at
            advance.closed_at = step.decided_at
        elif (following := await _current_step(session, advance.id)) is None:
            advance.status = "approved"
            advance.decided_at = step.decided_at
        else:
            await _request_approval(session, advance, following)
        _audit(
            session,
            actor,
            "approval.approve" if approve else "approval.reject",
            advance,
            before,
            step=step.seq,
            role=step.role,
            comment=step.comment,
        )
    return step


async def delegate_approvals(
    actor: Viewer, *, delegate_id: uuid.UUID, starts_on: dt.date, ends_on: dt.date
) -> Delegation:
    if actor.employee_id is None:
        raise DomainError(N_("Your user is not linked to an employee."), field="delegateId")
    if ends_on < starts_on:
        raise DomainError(N_("The end date is before the start date."), field="endsOn")
    if delegate_id == actor.employee_id:
        raise DomainError(N_("You cannot delegate to yourself."), field="delegateId")
    async with tenant_session() as session:
        if await session.get(Employee, delegate_id) is None:
            raise NotFound(N_("The employee does not exist."), field="delegateId")
        today = clock.local_today(await _tenant_zone(session))
        place = (await placements(session, {delegate_id}, today)).get(delegate_id)
        if place is None or place.status not in STAYING:
            raise DomainError(
                N_("Approvals can only be delegated to a current employee."), field="delegateId"
            )
        delegation = Delegation(
            id=uuid.uuid4(),
            delegator_id=actor.employee_id,
            delegate_id=delegate_id,
            starts_on=starts_on,
            ends_on=ends_on,
            created_by=actor.id,
        )
        session.add(delegation)
        audit.record(
            session,
            actor_id=actor.id,
            action="approval.delegate",
            entity_type="delegation",
            entity_id=delegation.id,
            after={"delegate_id": delegate_id, "starts_on": starts_on, "ends_on": ends_on},
        )
    return delegation


# --- money movements -------------------------------------------------------------------------


async def disburse_advance(
    actor: Viewer,
    advance_id: uuid.UUID,
    *,
    idempotency_key: str,
    paid: Decimal | None = None,
    paid_currency: str | None = None,
    occurred_on: dt.date | None = None,
) -> LedgerEntry:
    """Record finance paying out an approved advance; the same key twice pays once.

    `paid` is what left the bank when it differs in currency (default: the advance's)."""
    require_any_role(actor, *FINANCE)
    key = required_text(idempotency_key, "idempotencyKey", max_length=128)
    async with tenant_session() as session:
        # Payments with one key take turns whichever advance they name (key, then advance:
        # one lock order), so a second finds the first's entry rather than colliding with
        # it on the unique key. The tenant is in the lock's name: keys are per tenant.
        named = f"disburse:{current_tenant().id}:{key}"
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(named, 0))))
        advance = await _visible(session, actor, advance_id)
        _require_not_own(actor, advance)
        existing = await session.scalar(
            select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
        )
        if existing is not None:
            if existing.advance_id != advance.id or existing.kind != "disbursement":
                raise DomainError(
                    N_("This idempotency key was used for another payment."), field="idempotencyKey"
                )
            if await _is_reversed(session, existing):
                # The key's payment was undone: a new payment is a new key.
                raise DomainError(
                    N_("The payment with this idempotency key was reversed; use a new key."),
                    field="idempotencyKey",
                )
            return existing
        if advance.status != "approved":
            raise DomainError(N_("Only an approved advance can be paid out."), field="id")
        today = await _branch_today(session, advance)
        await _require_staying(session, advance, today)
        day = occurred_on or today
        money = (
            bounds.money(
                paid, paid_currency or advance.currency, field="paid", currency_field="paid"
            )
            if paid is not None
            else Money(advance.amount, advance.currency)
        )
        entry = await _entry(
            session,
            actor,
            advance,
            "disbursement",
            money,
            day,
            sign=1,
            idempotency_key=key,
            field="paid",
        )
        if entry.amount != advance.amount:
            raise DomainError(
                N_("The payment must equal the approved amount ({amount})."),
                field="paid",
                amount=f"{Money.of(advance.amount, advance.currency).amount:f} {advance.currency}",
            )
    return entry


@dataclasses.dataclass(frozen=True)
class ClaimLine:
    spent_on: dt.date
    category: str
    amount: Decimal
    currency: str | None = None  # default: the advance's currency
    receipt_reference: str | None = None


async def submit_expense_claim(
    actor: Viewer, advance_id: uuid.UUID, lines: list[ClaimLine]
) -> ExpenseClaim:
    """Settle an advance with receipts. Spending beyond the balance is reimbursed."""
    if not lines:
        raise DomainError(N_("A claim needs at least one line."), field="lines")
    if len(lines) > bounds.MAX_CLAIM_LINES:
        # Each line is an entry written under the advance's lock: a long claim holds it.
        raise DomainError(
            N_("A claim has at most {count} lines; split it into several claims."),
            field="lines",
            count=bounds.MAX_CLAIM_LINES,
        )
    async with tenant_session() as session:
        advance = await _visible(session, actor, advance_id)
        # TODO(#4): a claim settles at once, unreviewed; its owner may file it (that is the
        # route), but nobody checks the receipts before the debt goes down.
        _require_requester_or_finance(actor, advance)
        _require_money_out(advance)
        claim = ExpenseClaim(
            id=uuid.uuid4(),
            advance_id=advance.id,
            total=Decimal(0),
            currency=advance.currency,
            submitted_by=actor.id,
        )
        session.add(claim)
        await session.flush()
        total = Decimal(0)
        for index, line in enumerate(lines):
            field = f"lines.{index}"
            money = bounds.money(
                line.amount,
                line.currency or advance.currency,
                field=f"{field}.amount",
                currency_field=f"{field}.amount.currency",
            )
            if money.amount <= 0:
                raise DomainError(N_("The amount must be above zero."), field=f"{field}.amount")
            session.add(
                ExpenseClaimLine(
                    id=uuid.uuid4(),
                    claim_id=claim.id,
                    spent_on=line.spent_on,
                    category=required_text(line.category, f"{field}.category", max_length=64),
                    amount=money.amount,
                    currency=money.currency,
                    receipt_reference=optional_text(
                        line.receipt_reference, f"{field}.receiptReference"
                    ),
                )
            )
            entry = await _entry(
                session,
                actor,
                advance,
                "expense_settlement",
                money,
                line.spent_on,
                sign=-1,
                claim_id=claim.id,
                field=f"{field}.amount",
            )
            total -= entry.amount
        claim.total = total
        balance = await ledger.outstanding(session, advance.id)
        if balance < 0:
            # The employee spent more than they were advanced: the company owes the rest.
            await _entry(
                session,
                actor,
                advance,
                "reimbursement",
                Money(-balance, advance.currency),
                await _branch_today(session, advance),
                sign=1,
                reason="overspending reimbursed",
                claim_id=claim.id,
            )
        await _restate(session, actor, advance, "advance.expense_claim", claim_total=total)
    return claim


async def record_return(
    actor: Viewer,
    advance_id: uuid.UUID,
    *,
    amount: Decimal,
    currency: str | None = None,
    occurred_on: dt.date,
    method: str = "bank",
) -> LedgerEntry:
    """The employee paid unspent money back (cash or bank transfer); `currency` defaults
    to the advance's."""
    require_any_role(actor, *FINANCE)
    if method not in ("cash", "bank"):
        raise DomainError(N_("The method is cash or bank."), field="method")
    return await _settle(
        actor, advance_id, "return", (amount, currency), occurred_on, f"{method} return"
    )


async def record_payroll_deduction(
    actor: Viewer,
    advance_id: uuid.UUID,
    *,
    amount: Decimal,
    currency: str | None = None,
    occurred_on: dt.date,
    reason: str | None = None,
) -> LedgerEntry:
    """Recover part of an advance from pay (an instalment, or the final pay)."""
    require_any_role(actor, "finance", "hr", "admin")
    return await _settle(
        actor,
        advance_id,
        "payroll_deduction",
        (amount, currency),
        occurred_on,
        reason or "payroll deduction",
    )


async def create_repayment_plan(
    actor: Viewer, advance_id: uuid.UUID, *, count: int, starts_on: dt.date
) -> RepaymentPlan:
    """Plan the outstanding balance as monthly payroll deductions."""
    require_any_role(actor, "finance", "hr", "admin")
    async with tenant_session() as session:
        advance = await _visible(session, actor, advance_id)
        _require_not_own(actor, advance)
        _require_money_out(advance)
        bounds.plan_start(starts_on, await _branch_today(session, advance))
        earlier = (await plan_progress(session, [advance.id]))[advance.id]
        if any(p.status == "active" for p in earlier):
            # Two live plans would both count the same deductions.
            raise DomainError(
                N_("This advance already has a repayment plan in progress."), field="advanceId"
            )
        balance = await ledger.balance(session, advance)
        schedule = instalments(balance, count, starts_on)
        last_entry = await session.scalar(
            select(func.max(LedgerEntry.seq)).where(LedgerEntry.advance_id == advance.id)
        )
        plan = RepaymentPlan(
            id=uuid.uuid4(),
            advance_id=advance.id,
            amount=balance.amount,
            currency=balance.currency,
            instalments=count,
            starts_on=starts_on,
            status="active",
            ledger_seq=last_entry or 0,
            created_by=actor.id,
        )
        session.add(plan)
        await session.flush()
        for seq, (due_on, amount) in enumerate(schedule, start=1):
            session.add(
                RepaymentInstalment(
                    id=uuid.uuid4(), plan_id=plan.id, seq=seq, due_on=due_on, amount=amount.amount
                )
            )
        audit.record(
            session,
            actor_id=actor.id,
            action="advance.repayment_plan",
            entity_type="advance",
            entity_id=advance.id,
            after={
                "plan_id": plan.id,
                "amount": plan.amount,
                "instalments": count,
                "starts_on": starts_on,
            },
        )
    return plan


async def write_off_advance(actor: Viewer, advance_id: uuid.UUID, *, reason: str) -> LedgerEntry:
    """Give up the outstanding balance: finance or admin whose own authority covers it,
    never on their own advance."""
    return await close_balance(actor, advance_id, kind="write_off", reason=reason)


async def close_balance(
    actor: Viewer, advance_id: uuid.UUID, *, kind: str, reason: str
) -> LedgerEntry:
    """Write off or waive what is still owed, with authority and a reason."""
    why = required_text(reason, "reason", max_length=2000)
    async with tenant_session() as session:
        return await _close_in(session, actor, advance_id, kind, why)


async def waive_in(
    session: AsyncSession, actor: Viewer, advance_id: uuid.UUID, reason: str
) -> LedgerEntry:
    """Waive what is owed on an advance, inside the caller's transaction (offboarding):
    finance, admin or HR whose own authority covers it, never on their own advance."""
    return await _close_in(session, actor, advance_id, "waiver", reason)


async def restate_in(session: AsyncSession, actor: Viewer, advance: Advance, reason: str) -> None:
    """Set the status the ledger implies, inside the caller's transaction: an advance
    left showing money out with nothing owed (an old reversed payment) is put right."""
    await _restate(session, actor, advance, "advance.restate", reason=reason)


async def cancel_in(session: AsyncSession, actor: Viewer, advance: Advance, reason: str) -> None:
    """Cancel a requested or approved advance inside the caller's transaction."""
    if advance.status not in ("draft", "submitted", "approved"):
        return
    before = _snapshot(advance)
    await _cancel_pending_steps(session, advance.id)
    advance.status = "cancelled"
    advance.closed_at = clock.now()
    _audit(session, actor, "advance.cancel", advance, before, reason=reason)


async def _close_in(
    session: AsyncSession, actor: Viewer, advance_id: uuid.UUID, kind: str, reason: str
) -> LedgerEntry:
    advance = await _visible(session, actor, advance_id)
    require_any_role(actor, *(WAIVER_ROLES if kind == "waiver" else WRITE_OFF_ROLES))
    _require_not_own(actor, advance)
    _require_money_out(advance)
    balance = await ledger.balance(session, advance)
    await require_authority(session, actor, advance, balance)
    today = await _branch_today(session, advance)
    entry = await _entry(session, actor, advance, kind, balance, today, sign=-1, reason=reason)
    await _restate(session, actor, advance, f"advance.{kind}", amount=balance.amount, reason=reason)
    return entry


async def reverse_entry(actor: Viewer, entry_id: uuid.UUID, *, reason: str) -> LedgerEntry:
    """Correct a mistaken entry with an opposite one; the original stays as it was."""
    require_any_role(actor, *FINANCE)
    why = required_text(reason, "reason", max_length=2000)
    async with tenant_session() as session:
        original = await session.get(LedgerEntry, entry_id)
        if original is None:
            raise NotFound(N_("The ledger entry does not exist."), field="entryId")
        advance = await _locked(session, original.advance_id)
        if not await _sees(session, actor, advance):
            raise NotFound(N_("The ledger entry does not exist."), field="entryId")
        _require_not_own(actor, advance)
        if original.kind == "reversal":
            raise DomainError(N_("A reversal cannot itself be reversed."), field="entryId")
        if await _is_reversed(session, original):
            raise DomainError(N_("This entry has already been reversed."), field="entryId")
        if original.kind == "disbursement":
            await _require_payment_undoable(session, original)
        entry = LedgerEntry(
            id=uuid.uuid4(),
            advance_id=advance.id,
            kind="reversal",
            amount=-original.amount,
            currency=original.currency,
            occurred_on=await _branch_today(session, advance),
            reverses_id=original.id,
            reason=why,
            recorded_by=actor.id,
        )
        session.add(entry)
        await session.flush()
        await _restate(session, actor, advance, "advance.reversal", entry=original.id, reason=why)
    return entry


# --- matrix and rates ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuleInput:
    min_rank: int
    max_rank: int
    currency: str
    kind: str | None = None
    branch_id: uuid.UUID | None = None
    max_single_amount: Decimal | None = None
    max_outstanding: Decimal | None = None
    max_open_advances: int | None = None
    approval_limit: Decimal | None = None


async def set_authority_matrix(
    actor: Viewer,
    rules: list[RuleInput],
    *,
    block_when_overdue: bool,
    named_approvers: list[tuple[str, uuid.UUID]],
) -> list[AuthorityRule]:
    """Replace the tenant's matrix and policy as a whole (admin only)."""
    require_any_role(actor, "admin")
    built = []
    for index, rule in enumerate(rules):
        field = f"rules.{index}"
        if rule.min_rank < 0:
            raise DomainError(N_("A rank is 0 or more."), field=f"{field}.minRank")
        if rule.min_rank > rule.max_rank:
            raise DomainError(N_("The lowest rank is above the highest."), field=f"{field}.minRank")
        if rule.kind is not None and rule.kind not in KINDS:
            raise DomainError(N_("Unknown kind of advance."), field=f"{field}.kind")
        if rule.max_open_advances is not None and rule.max_open_advances < 0:
            raise DomainError(
                N_("The number of open advances is 0 or more."), field=f"{field}.maxOpenAdvances"
            )
        currency = bounds.money_currency(rule.currency, field=f"{field}.currency")
        amounts = {
            name: bounds.money(value, currency, field=f"{field}.{input_name}").amount
            if value is not None
            else None
            for name, input_name, value in (
                ("max_single_amount", "maxSingleAmount", rule.max_single_amount),
                ("max_outstanding", "maxOutstanding", rule.max_outstanding),
                ("approval_limit", "approvalLimit", rule.approval_limit),
            )
        }
        if any(v is not None and v < 0 for v in amounts.values()):
            raise DomainError(N_("Amounts cannot be negative."), field=field)
        built.append(
            AuthorityRule(
                id=uuid.uuid4(),
                branch_id=rule.branch_id,
                min_rank=rule.min_rank,
                max_rank=rule.max_rank,
                kind=rule.kind,
                currency=currency,
                max_open_advances=rule.max_open_advances,
                **amounts,
            )
        )
    async with tenant_session() as session:
        before = [_rule_dict(r) for r in await session.scalars(select(AuthorityRule))]
        await session.execute(AuthorityRule.__table__.delete())
        session.add_all(built)
        await set_setting(session, "advances.block_when_overdue", block_when_overdue)
        await set_setting(
            session,
            "advances.named_approvers",
            [{"role": role, "position_id": str(pid)} for role, pid in named_approvers],
        )
        audit.record(
            session,
            actor_id=actor.id,
            action="authority_matrix.set",
            entity_type="authority_matrix",
            entity_id="tenant",
            before={"rules": before},
            after={
                "rules": [_rule_dict(r) for r in built],
                "block_when_overdue": block_when_overdue,
                "named_approvers": named_approvers,
            },
        )
    return built


async def set_exchange_rate(
    actor: Viewer,
    *,
    base: str,
    quote: str,
    rate: Decimal,
    valid_from: dt.date,
    source: str | None = None,
) -> ExchangeRate:
    require_any_role(actor, *FINANCE)
    base_code = bounds.money_currency(base, field="base")
    quote_code = bounds.money_currency(quote, field="quote")
    if base_code == quote_code:
        raise DomainError(N_("A rate converts between two different currencies."), field="quote")
    row = ExchangeRate(
        id=uuid.uuid4(),
        base_currency=base_code,
        quote_currency=quote_code,
        rate=bounds.rate(rate),
        valid_from=valid_from,
        source=optional_text(source, "source"),
    )
    async with tenant_session() as session:
        await session.execute(
            ExchangeRate.__table__.delete().where(
                ExchangeRate.base_currency == row.base_currency,
                ExchangeRate.quote_currency == row.quote_currency,
                ExchangeRate.valid_from == valid_from,
            )
        )
        session.add(row)
        audit.record(
            session,
            actor_id=actor.id,
            action="exchange_rate.set",
            entity_type="exchange_rate",
            entity_id=f"{base_code}/{quote_code}",
            after={"rate": row.rate, "valid_from": valid_from},
        )
    return row


# --- shared steps ----------------------------------------------------------------------------


async def require_authority(
    session: AsyncSession, actor: Viewer, advance: Advance, amount: Money
) -> None:
    """The actor's own authority must cover `amount`: a named approver above the matrix,
    or a job level whose approval limit covers it. Roles alone are not authority, and
    nobody's authority covers their own advance."""
    _require_not_own(actor, advance)
    if actor.employee_id is None:
        raise PermissionDenied(N_("Only an employee with authority may do this."))
    day = await _branch_today(session, advance)
    place = (await placements(session, {actor.employee_id}, day)).get(actor.employee_id)
    named = await get_setting(session, "advances.named_approvers")
    named_positions = {uuid.UUID(n["position_id"]) for n in named}
    if place is not None and place.position_id in named_positions:
        return
    if place is not None and await may_approve(
        session,
        rank=place.rank,
        branch_id=place.branch_id,
        kind=advance.kind,
        amount=amount,
        today=day,
    ):
        return
    raise PermissionDenied(
        N_("Your authority does not cover {amount}."), amount=f"{amount.amount:f} {amount.currency}"
    )


async def _settle(
    actor: Viewer,
    advance_id: uuid.UUID,
    kind: str,
    given: tuple[Decimal, str | None],
    occurred_on: dt.date,
    reason: str,
) -> LedgerEntry:
    """Record money coming back; `given` is the amount and its currency (default: the
    advance's), read once the advance is known."""
    async with tenant_session() as session:
        advance = await _visible(session, actor, advance_id)
        _require_not_own(actor, advance)
        _require_money_out(advance)
        amount, currency = given
        money = bounds.money(amount, currency or advance.currency)
        if money.amount <= 0:
            # A negative return would raise the debt: that is a reversal's job.
            raise DomainError(N_("The amount must be above zero."), field="amount")
        balance = await ledger.balance(session, advance)
        entry = await _entry(
            session, actor, advance, kind, money, occurred_on, sign=-1, reason=reason
        )
        if -entry.amount > balance.amount:
            raise DomainError(
                N_("This is more than the outstanding {amount}."),
                field="amount",
                amount=f"{balance.amount:f} {balance.currency}",
            )
        await _restate(session, actor, advance, f"advance.{kind}", amount=-entry.amount)
    return entry


async def _entry(
    session: AsyncSession,
    actor: Viewer,
    advance: Advance,
    kind: str,
    money: Money,
    occurred_on: dt.date,
    *,
    sign: int,
    reason: str | None = None,
    idempotency_key: str | None = None,
    claim_id: uuid.UUID | None = None,
    field: str = "amount",
) -> LedgerEntry:
    """Append an entry in the advance's currency, converting (and recording how) if needed."""
    conversion = await convert(session, money, advance.currency, occurred_on)
    bounds.held(conversion.result, field=field)
    foreign = conversion.rate is not None
    entry = LedgerEntry(
        id=uuid.uuid4(),
        advance_id=advance.id,
        kind=kind,
        amount=sign * conversion.result.amount,
        currency=advance.currency,
        original_amount=money.amount if foreign else None,
        original_currency=money.currency if foreign else None,
        rate=conversion.rate,
        rate_date=conversion.rate_date,
        occurred_on=occurred_on,
        reason=reason,
        idempotency_key=idempotency_key,
        claim_id=claim_id,
        recorded_by=actor.id,
    )
    session.add(entry)
    await session.flush()
    if kind == "disbursement":
        before = _snapshot(advance)
        advance.status = "disbursed"
        advance.disbursed_at = clock.now()
        _audit(session, actor, "advance.disburse", advance, before, entry=entry.id)
        await _advance_changed(session, advance, "disbursed")
    return entry


async def _restate(
    session: AsyncSession, actor: Viewer, advance: Advance, action: str, **details: Any
) -> None:
    """Set the status the ledger now implies, and audit the movement."""
    before = _snapshot(advance)
    status = ledger.status_from(await ledger.entries(session, advance.id))
    if status is not None:
        advance.status = status
        if status in ("settled", "written_off"):
            advance.closed_at = advance.closed_at or clock.now()
        else:
            advance.closed_at = None  # a reversal reopened it
        if status == "approved":
            advance.disbursed_at = None  # its payment was reversed
    _audit(session, actor, action, advance, before, **details)
    await _advance_changed(session, advance, action.removeprefix("advance."))


async def _advance_changed(session: AsyncSession, advance: Advance, change: str) -> None:
    """Tell background consumers (risk analytics) that money moved on an advance."""
    await outbox.enqueue(
        session,
        "advance.changed",
        {
            "advance_id": advance.id,
            "employee_id": advance.employee_id,
            "status": advance.status,
            "change": change,
        },
        outbox.event_key("advance.changed", advance.id),
    )


async def _request_approval(session: AsyncSession, advance: Advance, step: ApprovalStep) -> None:
    """Ask the approver of the step whose turn has come, once per step."""
    await outbox.enqueue(
        session,
        "approval.requested",
        {"step_id": step.id, "advance_id": advance.id},
        f"approval.requested:{step.id}",
    )


async def _locked(session: AsyncSession, advance_id: uuid.UUID) -> Advance:
    advance = await session.get(Advance, advance_id, with_for_update=True)
    if advance is None:
        raise NotFound(N_("The advance does not exist."), field="advanceId")
    return advance


async def _visible(session: AsyncSession, actor: Viewer, advance_id: uuid.UUID) -> Advance:
    """The advance, locked, if the actor may see it; "missing" and "not yours to see"
    read the same, as on the read path."""
    advance = await _locked(session, advance_id)
    if not await _sees(session, actor, advance):
        raise NotFound(N_("The advance does not exist."), field="advanceId")
    return advance


async def _sees(session: AsyncSession, actor: Viewer, advance: Advance) -> bool:
    day = clock.local_today(await _tenant_zone(session))
    return await may_see(session, actor, advance.id, advance.employee_id, day)


def _require_not_own(actor: Viewer, advance: Advance) -> None:
    """Nobody moves, waives or writes off the money of their own advance, whatever their
    roles: the employee's own route is an expense claim."""
    if actor.employee_id is not None and actor.employee_id == advance.employee_id:
        raise PermissionDenied(N_("You cannot do this on your own advance."))


async def _require_staying(
    session: AsyncSession, advance: Advance, day: dt.date, *, field: str | None = None
) -> Any:
    """The advance's employee is still employed and not leaving on `day`: a request of
    someone offboarding or gone is not submitted, approved or paid. Returns where they
    stand."""
    place = (await placements(session, {advance.employee_id}, day)).get(advance.employee_id)
    if place is None or place.status not in STAYING:
        raise DomainError(
            N_("The employee is leaving or has left; this advance cannot go ahead."), field=field
        )
    return place


async def _is_reversed(session: AsyncSession, entry: LedgerEntry) -> bool:
    done = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.reverses_id == entry.id))
    return done is not None


async def _require_payment_undoable(session: AsyncSession, payment: LedgerEntry) -> None:
    """A payment is reversed only when nothing rests on it: no live entry after it, no
    repayment plan. Reversed, the advance is approved again, to be paid or cancelled."""
    entries = await ledger.entries(session, payment.advance_id)
    reversed_ids = {e.reverses_id for e in entries if e.kind == "reversal"}
    later = [
        e
        for e in entries
        if e.id != payment.id and e.kind != "reversal" and e.id not in reversed_ids
    ]
    if later:
        raise DomainError(
            N_("Reverse the entries recorded after the payment first."), field="entryId"
        )
    planned = await session.scalar(
        select(RepaymentPlan.id).where(RepaymentPlan.advance_id == payment.advance_id).limit(1)
    )
    if planned is not None:
        raise DomainError(
            N_("A payment with a repayment plan cannot be reversed."), field="entryId"
        )


async def _current_step(session: AsyncSession, advance_id: uuid.UUID) -> ApprovalStep | None:
    step: ApprovalStep | None = await session.scalar(
        select(ApprovalStep)
        .where(ApprovalStep.advance_id == advance_id, ApprovalStep.status == "pending")
        .order_by(ApprovalStep.seq)
        .limit(1)
    )
    return step


async def _cancel_pending_steps(session: AsyncSession, advance_id: uuid.UUID) -> None:
    await session.execute(
        update(ApprovalStep)
        .where(ApprovalStep.advance_id == advance_id, ApprovalStep.status == "pending")
        .values(status="cancelled")
    )


async def _acting_for(
    session: AsyncSession, actor: Viewer, step: ApprovalStep, advance: Advance, day: dt.date
) -> uuid.UUID | None:
    """Whom the actor decides for: themselves, or the approver who delegated to them."""
    if actor.employee_id is not None and actor.employee_id == advance.employee_id:
        raise PermissionDenied(N_("Nobody approves their own request."))
    if step.approver_role is not None:
        if actor.has_any_role(step.approver_role):
            return actor.employee_id
        raise PermissionDenied(N_("This step is for {role}."), role=step.approver_role)
    if actor.employee_id is not None and actor.employee_id == step.approver_id:
        return actor.employee_id
    if actor.employee_id is not None and step.approver_id is not None:
        delegated = await session.scalar(
            select(Delegation.id).where(
                Delegation.delegator_id == step.approver_id,
                Delegation.delegate_id == actor.employee_id,
                Delegation.starts_on <= day,
                Delegation.ends_on >= day,
            )
        )
        if delegated is not None:
            return step.approver_id
    raise PermissionDenied(N_("This step is not yours to decide."))


async def _require_fresh_eyes(
    session: AsyncSession, actor: Viewer, advance: Advance, acting_for: uuid.UUID | None
) -> None:
    """One person approves a request once, by their own hand or through a delegate: a
    finance manager who approved as the line manager does not also approve as finance,
    and two approvers who delegated to each other do not fill two steps between them.

    The people behind this decision (the decider and whom they act for) may be behind no
    earlier approval, as its decider or as whom it was decided for."""
    people = [p for p in {actor.employee_id, acting_for} if p is not None]
    their_users = select(User.id).where(User.employee_id.in_(people))
    earlier = select(ApprovalStep.decided_by).where(
        ApprovalStep.advance_id == advance.id,
        ApprovalStep.status == "approved",
        or_(
            ApprovalStep.decided_by == actor.id,
            ApprovalStep.decided_by.in_(their_users) if people else false(),
            ApprovalStep.decided_for.in_(people) if people else false(),
        ),
    )
    found = (await session.execute(earlier.limit(1))).first()
    if found is None:
        return
    if found.decided_by == actor.id:
        raise PermissionDenied(N_("You have already approved this request at an earlier step."))
    raise PermissionDenied(
        N_("This request already carries an approval by you or by whom you act for.")
    )


def _require_requester_or_hr(actor: Viewer, advance: Advance) -> None:
    if actor.employee_id != advance.employee_id and not actor.has_any_role(*HR_WRITERS):
        raise NotFound(N_("The advance does not exist."), field="advanceId")


def _require_requester_or_finance(actor: Viewer, advance: Advance) -> None:
    if actor.employee_id != advance.employee_id and not actor.has_any_role(*FINANCE):
        raise NotFound(N_("The advance does not exist."), field="advanceId")


def _require_money_out(advance: Advance) -> None:
    if advance.status not in ("disbursed", "partially_settled"):
        raise DomainError(N_("Nothing is outstanding on this advance."), field="id")


async def _branch_today(session: AsyncSession, advance: Advance) -> dt.date:
    branch = await session.get(Branch, advance.branch_id)
    assert branch is not None
    return clock.local_today(branch.time_zone)


async def _tenant_zone(session: AsyncSession) -> str:
    return current_tenant().time_zone


def _attachment(raw: dict[str, Any]) -> dict[str, Any]:
    name = required_text(str(raw.get("name", "")), "attachments.name")
    reference = required_text(str(raw.get("reference", "")), "attachments.reference")
    return {"name": name, "reference": reference}


def _snapshot(advance: Advance) -> dict[str, Any]:
    return {"status": advance.status, "amount": advance.amount, "currency": advance.currency}


def _audit(
    session: AsyncSession,
    actor: Viewer,
    action: str,
    advance: Advance,
    before: dict[str, Any] | None,
    **details: Any,
) -> None:
    audit.record(
        session,
        actor_id=actor.id,
        action=action,
        entity_type="advance",
        entity_id=advance.id,
        before=before,
        after=_snapshot(advance) | details,
    )


def _rule_dict(rule: AuthorityRule) -> dict[str, Any]:
    return {
        "branch_id": rule.branch_id,
        "min_rank": rule.min_rank,
        "max_rank": rule.max_rank,
        "kind": rule.kind,
        "currency": rule.currency,
        "max_single_amount": rule.max_single_amount,
        "max_outstanding": rule.max_outstanding,
        "max_open_advances": rule.max_open_advances,
        "approval_limit": rule.approval_limit,
    }
