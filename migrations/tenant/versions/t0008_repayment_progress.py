"""Repayment plans remember where the ledger stood when they were made.

A plan's progress is derived from the ledger: the settling entries recorded after the
plan (above `ledger_seq`) pay its instalments in due-date order. Plans made before this
revision take the entries recorded up to their creation as their starting point.

Revision ID: t0008
Revises: t0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0008"
down_revision: str | None = "t0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("repayment_plans", sa.Column("ledger_seq", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE repayment_plans p SET ledger_seq = COALESCE(
          (SELECT max(e.seq) FROM ledger_entries e
            WHERE e.advance_id = p.advance_id AND e.recorded_at <= p.created_at), 0)
        """
    )
    op.alter_column("repayment_plans", "ledger_seq", nullable=False)


def downgrade() -> None:
    op.drop_column("repayment_plans", "ledger_seq")
