"""Risk analytics: stored risk scores, threshold alerts and trained models.

Revision ID: t0007
Revises: t0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0007"
down_revision: str | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_models",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("horizon_months", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("trained_from", sa.Date(), nullable=False),
        sa.Column("trained_to", sa.Date(), nullable=False),
        sa.Column("features", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("metrics", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("fairness", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.Column("artifact", sa.LargeBinary(), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.CheckConstraint("kind IN ('advance_risk', 'attrition')", name="ck_risk_models_kind"),
        # NULLS NOT DISTINCT: the advance-risk line has no horizon, and its versions
        # must still be unique.
        sa.UniqueConstraint(
            "kind",
            "horizon_months",
            "version",
            name="uq_risk_models_kind_horizon_months_version",
            postgresql_nulls_not_distinct=True,
        ),
    )
    # At most one serving model per line.
    op.create_index(
        "ix_risk_models_active",
        "risk_models",
        ["kind", sa.text("coalesce(horizon_months, 0)")],
        unique=True,
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "risk_scores",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column(
            "employee_id",
            sa.Uuid(),
            sa.ForeignKey("employees.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("score", sa.Numeric(5, 2), nullable=False),
        sa.Column("band", sa.String(8), nullable=False),
        sa.Column("probability", sa.Numeric(6, 5), nullable=True),
        sa.Column("factors", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("model_kind", sa.String(8), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("model_id", sa.Uuid(), sa.ForeignKey("risk_models.id"), nullable=True),
        sa.Column(
            "scored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("score >= 0 AND score <= 100", name="ck_risk_scores_score"),
        sa.CheckConstraint("band IN ('low', 'medium', 'high')", name="ck_risk_scores_band"),
        sa.CheckConstraint("model_kind IN ('points', 'trained')", name="ck_risk_scores_model_kind"),
    )
    # An employee's latest score: the GraphQL field and the alert check read it.
    op.create_index(
        "ix_risk_scores_employee_id_scored_at", "risk_scores", ["employee_id", "scored_at", "id"]
    )

    op.create_table(
        "risk_alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "employee_id",
            sa.Uuid(),
            sa.ForeignKey("employees.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("band", sa.String(8), nullable=False),
        sa.Column("score", sa.Numeric(5, 2), nullable=False),
        sa.Column("threshold", sa.Numeric(5, 2), nullable=False),
        sa.Column("risk_score_id", sa.BigInteger(), sa.ForeignKey("risk_scores.id"), nullable=True),
        sa.Column(
            "raised_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        # Set when the score falls back below the threshold: the crossing is over, and a
        # new rise is a new crossing with a new alert.
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("band IN ('medium', 'high')", name="ck_risk_alerts_band"),
    )
    # One open crossing per employee and band: a second alert for it fails to insert.
    op.create_index(
        "uq_risk_alerts_open_crossing",
        "risk_alerts",
        ["employee_id", "band"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_index("ix_risk_alerts_raised_at", "risk_alerts", ["raised_at", "id"])


def downgrade() -> None:
    op.drop_table("risk_alerts")
    op.drop_table("risk_scores")
    op.drop_table("risk_models")
