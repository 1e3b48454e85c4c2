"""Tables of the risk analytics area (tenant schema, migration t0007)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    Numeric,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenants.metadata import TenantBase

BANDS = ("low", "medium", "high")
# Bands an alert can be raised for, lowest first.
ALERT_BANDS = ("medium", "high")
MODEL_KINDS = ("points", "trained")
RISK_MODEL_KINDS = ("advance_risk", "attrition")


class RiskModel(TenantBase):
    """A trained model of one tenant, versioned per kind and horizon; the artifact is hashed."""

    __tablename__ = "risk_models"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    horizon_months: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    trained_from: Mapped[dt.date] = mapped_column(Date)
    trained_to: Mapped[dt.date] = mapped_column(Date)
    features: Mapped[list[str]] = mapped_column(JSONB, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    fairness: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class RiskScore(TenantBase):
    """One scoring of one employee as of a date; rows are kept, the newest one is current."""

    __tablename__ = "risk_scores"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    band: Mapped[str] = mapped_column(String(8))
    probability: Mapped[Decimal | None] = mapped_column(Numeric(6, 5))
    # [{"name": ..., "contribution": float, "value": float, ...}], largest first.
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    model_kind: Mapped[str] = mapped_column(String(8))
    model_version: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("risk_models.id"))
    scored_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class RiskAlert(TenantBase):
    """Raised once when an employee's score rises to a band's threshold; closed when it falls."""

    __tablename__ = "risk_alerts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    employee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    band: Mapped[str] = mapped_column(String(8))
    score: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    threshold: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    risk_score_id: Mapped[int | None] = mapped_column(ForeignKey("risk_scores.id"))
    raised_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
