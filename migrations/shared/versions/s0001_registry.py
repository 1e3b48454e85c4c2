"""Tenant registry and spare schemas.

Revision ID: s0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "s0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column(
            "hostnames",
            postgresql.ARRAY(sa.String(253)),
            nullable=False,
            server_default="{}",
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'archived')", name="ck_tenants_status"
        ),
        sa.CheckConstraint("slug ~ '^[a-z][a-z0-9_]{1,39}$'", name="ck_tenants_slug"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        schema="shared",
    )
    op.create_index(
        "ix_tenants_hostnames", "tenants", ["hostnames"], postgresql_using="gin", schema="shared"
    )
    op.create_table(
        "spare_schemas",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="shared",
    )


def downgrade() -> None:
    op.drop_table("spare_schemas", schema="shared")
    op.drop_table("tenants", schema="shared")
