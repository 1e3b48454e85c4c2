"""What background work did: the last run of each schedule, each tenant's last run of
each scheduled actor, and the messages that failed for good.

Revision ID: s0002
Revises: s0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "s0002"
down_revision: str | None = "s0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def tenant_fk() -> sa.ForeignKey:
    return sa.ForeignKey("shared.tenants.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "schedule_runs",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenants", sa.Integer(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False, server_default="1"),
        schema="shared",
    )
    op.create_table(
        "job_runs",
        sa.Column("tenant_id", sa.Uuid(), tenant_fk(), primary_key=True),
        sa.Column("actor", sa.String(100), primary_key=True),
        sa.Column("last_finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.String(8), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("failures", sa.BigInteger(), nullable=False, server_default="0"),
        sa.CheckConstraint("last_status IN ('ok', 'failed')", name="ck_job_runs_last_status"),
        schema="shared",
    )
    op.create_table(
        "failed_messages",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), tenant_fk(), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column(
            "failed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="shared",
    )
    op.create_index(
        "ix_failed_messages_tenant_id_failed_at",
        "failed_messages",
        ["tenant_id", "failed_at"],
        schema="shared",
    )


def downgrade() -> None:
    op.drop_table("failed_messages", schema="shared")
    op.drop_table("job_runs", schema="shared")
    op.drop_table("schedule_runs", schema="shared")
