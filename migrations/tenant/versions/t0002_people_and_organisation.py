"""Branches, org units, job levels, positions, employees with history, and the audit log.

Revision ID: t0002
Revises: t0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0002"
down_revision: str | None = "t0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _created() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _fk(
    column: str, table: str, *, nullable: bool = True, ondelete: str | None = None
) -> sa.Column:
    return sa.Column(
        column, sa.Uuid(), sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "branches",
        _id(),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        _fk("parent_id", "branches"),
        _created(),
    )
    op.create_table(
        "job_levels",
        _id(),
        sa.Column("code", sa.String(32), nullable=False, unique=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("pay_min", sa.Numeric(19, 4), nullable=True),
        sa.Column("pay_max", sa.Numeric(19, 4), nullable=True),
        sa.Column("pay_currency", sa.String(3), nullable=True),
        _created(),
        sa.CheckConstraint(
            "pay_min IS NULL OR pay_max IS NULL OR pay_min <= pay_max",
            name="ck_job_levels_pay_band",
        ),
    )
    op.create_table(
        "org_units",
        _id(),
        sa.Column("code", sa.String(64), nullable=True, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        _created(),
        sa.CheckConstraint(
            "kind IN ('company', 'division', 'department', 'team', 'unit')",
            name="ck_org_units_kind",
        ),
    )
    op.create_table(
        "positions",
        _id(),
        sa.Column("code", sa.String(64), nullable=True, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        _fk("org_unit_id", "org_units", nullable=False),
        _fk("job_level_id", "job_levels"),
        _fk("reports_to_id", "positions"),
        sa.Column("headcount", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("opened_on", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        _created(),
        sa.CheckConstraint("headcount >= 0", name="ck_positions_headcount"),
    )
    op.create_index("ix_positions_org_unit_id", "positions", ["org_unit_id"])
    op.create_index("ix_positions_reports_to_id", "positions", ["reports_to_id"])
    # A unit's name, place in the tree and head change over time: one row per interval.
    op.create_table(
        "org_unit_versions",
        _id(),
        _fk("org_unit_id", "org_units", nullable=False, ondelete="CASCADE"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        _fk("parent_id", "org_units"),
        _fk("branch_id", "branches", nullable=False),
        sa.Column("cost_centre", sa.String(64), nullable=True),
        _fk("head_position_id", "positions"),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name="ck_org_unit_versions_interval"
        ),
        sa.UniqueConstraint("org_unit_id", "valid_from", name="uq_org_unit_versions_start"),
    )
    op.create_index("ix_org_unit_versions_parent_id", "org_unit_versions", ["parent_id"])
    op.create_table(
        "employees",
        _id(),
        sa.Column("employee_number", sa.String(32), nullable=False, unique=True),
        sa.Column("given_name", sa.String(100), nullable=False),
        sa.Column("family_name", sa.String(100), nullable=False),
        sa.Column("local_name", sa.String(100), nullable=True),
        sa.Column("preferred_name", sa.String(100), nullable=True),
        sa.Column("work_email", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("national_id_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("bank_account_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("hire_date", sa.Date(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False, server_default=""),
        _created(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_employees_family_name", "employees", ["family_name", "given_name", "id"])
    op.create_index("ix_employees_hire_date", "employees", ["hire_date", "id"])
    op.create_table(
        "employment_events",
        _id(),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False, unique=True),
        _fk("employee_id", "employees", nullable=False, ondelete="CASCADE"),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        _fk("branch_id", "branches"),
        _fk("position_id", "positions"),
        _fk("org_unit_id", "org_units"),
        _fk("job_level_id", "job_levels"),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("salary_amount", sa.Numeric(19, 4), nullable=True),
        sa.Column("salary_currency", sa.String(3), nullable=True),
        sa.Column("salary_period", sa.String(8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "kind IN ('hire', 'transfer', 'promotion', 'salary_change', 'leave_start',"
            " 'leave_end', 'status_change', 'termination')",
            name="ck_employment_events_kind",
        ),
    )
    op.create_index(
        "ix_employment_events_employee",
        "employment_events",
        ["employee_id", "effective_date", "seq"],
    )
    # Derived from employment_events by replaying them; never edited by hand.
    op.create_table(
        "employee_periods",
        _fk("employee_id", "employees", nullable=False, ondelete="CASCADE"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        _fk("branch_id", "branches"),
        _fk("position_id", "positions"),
        _fk("org_unit_id", "org_units"),
        _fk("job_level_id", "job_levels"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("salary_amount", sa.Numeric(19, 4), nullable=True),
        sa.Column("salary_currency", sa.String(3), nullable=True),
        sa.Column("salary_period", sa.String(8), nullable=True),
        sa.PrimaryKeyConstraint("employee_id", "valid_from", name="pk_employee_periods"),
        sa.CheckConstraint(
            "status IN ('onboarding', 'active', 'on_leave', 'offboarding', 'terminated')",
            name="ck_employee_periods_status",
        ),
    )
    op.create_index("ix_employee_periods_position_id", "employee_periods", ["position_id"])
    op.create_index("ix_employee_periods_org_unit_id", "employee_periods", ["org_unit_id"])
    op.create_table(
        "performance_reviews",
        _id(),
        _fk("employee_id", "employees", nullable=False, ondelete="CASCADE"),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("rating", sa.Numeric(4, 2), nullable=False),
        _fk("reviewer_id", "employees"),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        _created(),
        sa.UniqueConstraint("employee_id", "period", name="uq_performance_reviews_period"),
    )
    op.create_table(
        "rewards_penalties",
        _id(),
        _fk("employee_id", "employees", nullable=False, ondelete="CASCADE"),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("amount", sa.Numeric(19, 4), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _created(),
        sa.CheckConstraint("kind IN ('reward', 'penalty')", name="ck_rewards_penalties_kind"),
    )
    op.create_index("ix_rewards_penalties_employee_id", "rewards_penalties", ["employee_id"])
    op.create_table(
        "project_assignments",
        _id(),
        _fk("employee_id", "employees", nullable=False, ondelete="CASCADE"),
        sa.Column("project_code", sa.String(64), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        _created(),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name="ck_project_assignments_dates"
        ),
    )
    op.create_index("ix_project_assignments_employee_id", "project_assignments", ["employee_id"])
    op.create_table(
        "tenant_settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", postgresql.JSONB(), nullable=False),
    )
    op.add_column("users", _fk("employee_id", "employees"))
    op.create_index("uq_users_employee_id", "users", ["employee_id"], unique=True)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("before", postgresql.JSONB(), nullable=True),
        sa.Column("after", postgresql.JSONB(), nullable=True),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    # The audit log is append-only: the database itself refuses edits and deletions.
    op.execute(
        """
        CREATE FUNCTION audit_log_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the audit log is append-only';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION audit_log_is_append_only()")
    op.drop_table("audit_log")
    op.drop_index("uq_users_employee_id", "users")
    op.drop_column("users", "employee_id")
    for table in (
        "tenant_settings",
        "project_assignments",
        "rewards_penalties",
        "performance_reviews",
        "employee_periods",
        "employment_events",
        "employees",
        "org_unit_versions",
        "positions",
        "org_units",
        "job_levels",
        "branches",
    ):
        op.drop_table(table)
