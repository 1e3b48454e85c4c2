"""Each scheduled run (a job at one fire time) is recorded once, by whoever runs it.

The active scheduler inserts the slot before it fans the job out, in the transaction
that ends once the fan-out is done; the primary key lets one instance win a slot, so a
slot is never fanned out twice, and one whose fan-out did not finish is caught up.

Revision ID: s0003
Revises: s0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0003"
down_revision: str | None = "s0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_slots",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("fire_time", sa.DateTime(timezone=True), primary_key=True),
        sa.Column(
            "ran_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("tenants", sa.Integer(), nullable=True),
        schema="shared",
    )


def downgrade() -> None:
    op.drop_table("schedule_slots", schema="shared")
