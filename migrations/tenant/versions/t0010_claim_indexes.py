"""Indexes for reaching expense claims from their advance and lines from their claim.

Risk features read an employee's claims and their lines through these keys at every
re-score; without an index each read scans both tables whole.

Revision ID: t0010
Revises: t0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "t0010"
down_revision: str | None = "t0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_expense_claims_advance_id", "expense_claims", ["advance_id"])
    op.create_index("ix_expense_claim_lines_claim_id", "expense_claim_lines", ["claim_id"])
    op.create_index("ix_ledger_entries_claim_id", "ledger_entries", ["claim_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_claim_id", "ledger_entries")
    op.drop_index("ix_expense_claim_lines_claim_id", "expense_claim_lines")
    op.drop_index("ix_expense_claims_advance_id", "expense_claims")
