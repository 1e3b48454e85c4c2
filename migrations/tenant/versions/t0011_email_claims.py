"""A notification's e-mail is claimed before it is sent; unsent e-mails are indexed.

`email_claimed_until` is the lease of the worker sending the e-mail (two copies of one
message never both send it); `email_due_at` is when its next attempt was due (a retry's
time). The partial index serves the sweep that queues again e-mails left unsent.

Revision ID: t0011
Revises: t0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0011"
down_revision: str | None = "t0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("email_claimed_until", sa.DateTime(timezone=True)))
    op.add_column("notifications", sa.Column("email_due_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_notifications_email_unsent",
        "notifications",
        ["created_at"],
        postgresql_where=sa.text("email_status IN ('pending', 'retrying')"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_email_unsent", table_name="notifications")
    op.drop_column("notifications", "email_due_at")
    op.drop_column("notifications", "email_claimed_until")
