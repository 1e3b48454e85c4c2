"""The exit gate also holds employees whose offboarding case is open.

A second trigger beside `employee_periods_exit_gate` (which refuses a terminated period
for someone with an open advance, and fires first): a terminated period for someone whose
offboarding case is still open is refused too. Completing the case closes it before it
records the termination, so that one passes.

Revision ID: t0009
Revises: t0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0009"
down_revision: str | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION employee_offboarding_gate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.status = 'terminated' AND EXISTS (
               SELECT 1 FROM offboarding_cases
                WHERE employee_id = NEW.employee_id AND status = 'open')
          THEN
            RAISE EXCEPTION 'CLEARANCE_OPEN: employee % has an open offboarding case',
              NEW.employee_id USING ERRCODE = 'check_violation';
          END IF;
          RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER employee_periods_offboarding_gate BEFORE INSERT OR UPDATE"
        " ON employee_periods FOR EACH ROW EXECUTE FUNCTION employee_offboarding_gate()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER employee_periods_offboarding_gate ON employee_periods")
    op.execute("DROP FUNCTION employee_offboarding_gate()")
