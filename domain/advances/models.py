"""Tables of the advances area (tenant schema)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenants.metadata import TenantBase

KINDS = ("travel", "business", "petty_cash", "salary")
STATUSES = (
    "draft",
    "submitted",
    "approved",
    "rejected",
    "cancelled",
    "disbursed",
    "partially_settled",
    "settled",
    "written_off",
)
# Advances whose money is (or may soon be) out with the employee.
OPEN_STATUSES = ("submitted", "approved", "disbursed", "partially_settled")
OUTSTANDING_STATUSES = ("disbursed", "partially_settled")
ENTRY_KINDS = (
    "disbursement",
    "expense_settlement",
    "return",
    "payroll_deduction",
    "reimbursement",
    "write_off",
    "waiver",
    "reversal",
)
MONEY = Numeric(19, 4)


def _now_column() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class ExchangeRate(TenantBase):
    """One unit of `base_currency` buys `rate` units of `quote_currency` from `valid_from`."""

    __tablename__ = "exchange_rates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    base_currency: Mapped[str] = mapped_column(String(3))
    quote_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = _now_column()


class AuthorityRule(TenantBase):
    """A row of the authority matrix: limits for a job-level range and an advance kind."""

    __tablename__ = "authority_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("branches.id"))
    min_rank: Mapped[int] = mapped_column(Integer)
    max_rank: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    max_single_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    max_outstanding: Mapped[Decimal | None] = mapped_column(MONEY)
    max_open_advances: Mapped[int | None] = mapped_column(Integer)
    approval_limit: Mapped[Decimal | None] = mapped_column(MONEY)
    created_at: Mapped[dt.datetime] = _now_column()


class Advance(TenantBase):
    """Money paid to an employee before the expense, to be settled later."""

    __tablename__ = "advances"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"))
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(Text)
    project_code: Mapped[str | None] = mapped_column(String(64))
    expected_settlement_date: Mapped[dt.date] = mapped_column(Date)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[uuid.UUID | None]
    created_at: Mapped[dt.datetime] = _now_column()
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disbursed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LedgerEntry(TenantBase):
    """One movement of an advance; append-only (the database refuses edits)."""

    __tablename__ = "ledger_entries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    advance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advances.id"))
    kind: Mapped[str] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    original_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    original_currency: Mapped[str | None] = mapped_column(String(3))
    rate: Mapped[Decimal | None] = mapped_column(Numeric(24, 10))
    rate_date: Mapped[dt.date | None] = mapped_column(Date)
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"))
    claim_id: Mapped[uuid.UUID | None]
    reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    recorded_by: Mapped[uuid.UUID | None]
    recorded_at: Mapped[dt.datetime] = _now_column()


class ExpenseClaim(TenantBase):
    __tablename__ = "expense_claims"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    advance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advances.id"))
    total: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    submitted_by: Mapped[uuid.UUID | None]
    submitted_at: Mapped[dt.datetime] = _now_column()


class ExpenseClaimLine(TenantBase):
    __tablename__ = "expense_claim_lines"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    claim_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("expense_claims.id", ondelete="CASCADE"))
    spent_on: Mapped[dt.date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    receipt_reference: Mapped[str | None] = mapped_column(String(200))


class ApprovalStep(TenantBase):
    """One approver's turn, frozen when the advance is submitted."""

    __tablename__ = "approval_steps"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    advance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advances.id"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(24))  # manager, unit_head, escalation, finance...
    approver_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("employees.id"))
    approver_role: Mapped[str | None] = mapped_column(String(16))  # a user role, e.g. finance
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    decided_by: Mapped[uuid.UUID | None]
    decided_for: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("employees.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now_column()


class Delegation(TenantBase):
    """An approver handing their approval steps to someone else for a date range."""

    __tablename__ = "delegations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    delegator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"))
    delegate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[dt.datetime] = _now_column()


class RepaymentPlan(TenantBase):
    """Monthly payroll deductions for what was owed when the plan was made.

    NOTE: `status` is what the plan was made as; what it has recovered, what remains and
    whether it is completed are derived from the ledger (`plans.progress`), never stored.
    """

    __tablename__ = "repayment_plans"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    advance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("advances.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    instalments: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[dt.date] = mapped_column(Date)  # instalments fall due monthly after it
    status: Mapped[str] = mapped_column(String(12), default="active")
    # The advance's last ledger entry when the plan was made; later settling entries pay it.
    ledger_seq: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[uuid.UUID | None]
    created_at: Mapped[dt.datetime] = _now_column()


class RepaymentInstalment(TenantBase):
    __tablename__ = "repayment_instalments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("repayment_plans.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    # NOTE: unused; which entries paid an instalment is derived from the ledger instead.
    entry_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ledger_entries.id"))


class OffboardingCase(TenantBase):
    """The exit process of one employee; it cannot complete while money is owed."""

    __tablename__ = "offboarding_cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id"))
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="open")
    last_working_day: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    opened_by: Mapped[uuid.UUID | None]
    opened_at: Mapped[dt.datetime] = _now_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ClearanceItem(TenantBase):
    __tablename__ = "clearance_items"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("offboarding_cases.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    advance_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("advances.id"))
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("repayment_plans.id"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="open")
    resolved_by: Mapped[uuid.UUID | None]
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)
