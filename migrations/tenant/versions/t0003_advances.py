"""Employee advances: ledger, approvals, authority matrix, repayment plans, offboarding.

Revision ID: t0003
Revises: t0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0003"
down_revision: str | None = "t0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(19, 4)


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _at(name: str = "created_at", *, nullable: bool = False) -> sa.Column:
    default = sa.func.now() if not nullable else None
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def _fk(
    column: str, table: str, *, nullable: bool = True, ondelete: str | None = None
) -> sa.Column:
    return sa.Column(
        column, sa.Uuid(), sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        _id(),
        sa.Column("base_currency", sa.String(3), nullable=False),
        sa.Column("quote_currency", sa.String(3), nullable=False),
        # How many units of quote_currency one unit of base_currency buys.
        sa.Column("rate", sa.Numeric(24, 10), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("source", sa.String(64), nullable=True),
        _at(),
        sa.CheckConstraint("rate > 0", name="ck_exchange_rates_rate"),
        sa.UniqueConstraint(
            "base_currency", "quote_currency", "valid_from", name="uq_exchange_rates_pair_day"
        ),
    )
    op.create_table(
        "authority_rules",
        _id(),
        _fk("branch_id", "branches"),
        sa.Column("min_rank", sa.Integer(), nullable=False),
        sa.Column("max_rank", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        # What a requester at these levels may ask for.
        sa.Column("max_single_amount", MONEY, nullable=True),
        sa.Column("max_outstanding", MONEY, nullable=True),
        sa.Column("max_open_advances", sa.Integer(), nullable=True),
        # What an approver at these levels may approve on their own.
        sa.Column("approval_limit", MONEY, nullable=True),
        _at(),
        sa.CheckConstraint("min_rank <= max_rank", name="ck_authority_rules_ranks"),
    )
    op.create_table(
        "advances",
        _id(),
        _fk("employee_id", "employees", nullable=False),
        _fk("branch_id", "branches", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("project_code", sa.String(64), nullable=True),
        sa.Column("expected_settlement_date", sa.Date(), nullable=False),
        sa.Column("attachments", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        _at(),
        _at("submitted_at", nullable=True),
        _at("decided_at", nullable=True),
        _at("disbursed_at", nullable=True),
        _at("closed_at", nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'rejected', 'cancelled', 'disbursed',"
            " 'partially_settled', 'settled', 'written_off')",
            name="ck_advances_status",
        ),
        sa.CheckConstraint(
            "kind IN ('travel', 'business', 'petty_cash', 'salary')", name="ck_advances_kind"
        ),
        sa.CheckConstraint("amount > 0", name="ck_advances_amount"),
    )
    op.create_index("ix_advances_employee_id", "advances", ["employee_id", "status"])
    op.create_index("ix_advances_status_due", "advances", ["status", "expected_settlement_date"])
    op.create_table(
        "ledger_entries",
        _id(),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False, unique=True),
        _fk("advance_id", "advances", nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        # Effect on the outstanding balance, in the advance's currency (signed).
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        # The money as it moved, when in another currency than the advance.
        sa.Column("original_amount", MONEY, nullable=True),
        sa.Column("original_currency", sa.String(3), nullable=True),
        sa.Column("rate", sa.Numeric(24, 10), nullable=True),
        sa.Column("rate_date", sa.Date(), nullable=True),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        _fk("reverses_id", "ledger_entries"),
        # Set for entries that settle against an expense claim (table created below).
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True, unique=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        _at("recorded_at"),
        sa.CheckConstraint(
            "kind IN ('disbursement', 'expense_settlement', 'return', 'payroll_deduction',"
            " 'reimbursement', 'write_off', 'waiver', 'reversal')",
            name="ck_ledger_entries_kind",
        ),
    )
    op.create_index("ix_ledger_entries_advance_id", "ledger_entries", ["advance_id", "seq"])
    op.create_unique_constraint("uq_ledger_entries_reverses_id", "ledger_entries", ["reverses_id"])
    op.execute(
        """
        CREATE FUNCTION ledger_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'ledger entries are append-only; record a reversal instead';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE"
        " ON ledger_entries FOR EACH STATEMENT EXECUTE FUNCTION ledger_is_append_only()"
    )
    op.create_table(
        "expense_claims",
        _id(),
        _fk("advance_id", "advances", nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("submitted_by", sa.Uuid(), nullable=True),
        _at("submitted_at"),
    )
    op.create_table(
        "expense_claim_lines",
        _id(),
        _fk("claim_id", "expense_claims", nullable=False, ondelete="CASCADE"),
        sa.Column("spent_on", sa.Date(), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("receipt_reference", sa.String(200), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_expense_claim_lines_amount"),
    )
    op.create_table(
        "approval_steps",
        _id(),
        _fk("advance_id", "advances", nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(24), nullable=False),
        _fk("approver_id", "employees"),
        sa.Column("approver_role", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        _fk("decided_for", "employees"),
        _at("decided_at", nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _at(),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'cancelled')",
            name="ck_approval_steps_status",
        ),
        sa.UniqueConstraint("advance_id", "seq", name="uq_approval_steps_seq"),
    )
    op.create_index("ix_approval_steps_approver", "approval_steps", ["approver_id", "status"])
    op.create_table(
        "delegations",
        _id(),
        _fk("delegator_id", "employees", nullable=False),
        _fk("delegate_id", "employees", nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _at(),
        sa.CheckConstraint("starts_on <= ends_on", name="ck_delegations_dates"),
        sa.CheckConstraint("delegator_id <> delegate_id", name="ck_delegations_people"),
    )
    op.create_table(
        "repayment_plans",
        _id(),
        _fk("advance_id", "advances", nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("instalments", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="active"),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _at(),
        sa.CheckConstraint("instalments BETWEEN 1 AND 120", name="ck_repayment_plans_count"),
    )
    op.create_table(
        "repayment_instalments",
        _id(),
        _fk("plan_id", "repayment_plans", nullable=False, ondelete="CASCADE"),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        _fk("entry_id", "ledger_entries"),
        sa.UniqueConstraint("plan_id", "seq", name="uq_repayment_instalments_seq"),
    )
    op.create_table(
        "offboarding_cases",
        _id(),
        _fk("employee_id", "employees", nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="open"),
        sa.Column("last_working_day", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.Uuid(), nullable=True),
        _at("opened_at"),
        _at("completed_at", nullable=True),
        sa.CheckConstraint(
            "kind IN ('resignation', 'termination')", name="ck_offboarding_cases_kind"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'completed', 'withdrawn')", name="ck_offboarding_cases_status"
        ),
    )
    # At most one open case per employee.
    op.create_index(
        "uq_offboarding_cases_open",
        "offboarding_cases",
        ["employee_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "clearance_items",
        _id(),
        _fk("case_id", "offboarding_cases", nullable=False, ondelete="CASCADE"),
        sa.Column("kind", sa.String(16), nullable=False),
        _fk("advance_id", "advances"),
        _fk("plan_id", "repayment_plans"),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False, server_default="open"),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        _at("resolved_at", nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('advance', 'repayment_plan', 'custom')", name="ck_clearance_items_kind"
        ),
        sa.CheckConstraint(
            "status IN ('open', 'cleared', 'waived')", name="ck_clearance_items_status"
        ),
    )
    # The exit gate, enforced by the database as well: no route (import, edit, bug) can
    # give a terminated period to someone with an open advance.
    op.execute(
        """
        CREATE FUNCTION employee_exit_gate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.status = 'terminated' AND EXISTS (
               SELECT 1 FROM advances
                WHERE employee_id = NEW.employee_id
                  AND status IN ('submitted', 'approved', 'disbursed', 'partially_settled'))
          THEN
            RAISE EXCEPTION 'OUTSTANDING_ADVANCES: employee % has open advances',
              NEW.employee_id USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER employee_periods_exit_gate BEFORE INSERT OR UPDATE ON employee_periods"
        " FOR EACH ROW EXECUTE FUNCTION employee_exit_gate()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER employee_periods_exit_gate ON employee_periods")
    op.execute("DROP FUNCTION employee_exit_gate()")
    for table in (
        "clearance_items",
        "offboarding_cases",
        "repayment_instalments",
        "repayment_plans",
        "delegations",
        "approval_steps",
        "expense_claim_lines",
        "expense_claims",
    ):
        op.drop_table(table)
    op.execute("DROP TRIGGER ledger_entries_append_only ON ledger_entries")
    op.execute("DROP FUNCTION ledger_is_append_only()")
    for table in ("ledger_entries", "advances", "authority_rules", "exchange_rates"):
        op.drop_table(table)
