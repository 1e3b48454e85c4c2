"""Tables of the organisation area (tenant schema)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import Date, DateTime, ForeignKey, Integer, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tenants.metadata import TenantBase

ORG_UNIT_KINDS = ("company", "division", "department", "team", "unit")


class Branch(TenantBase):
    """An office or legal entity with its own country, currency, time zone and locale."""

    __tablename__ = "branches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(35))
    address: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("branches.id"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class JobLevel(TenantBase):
    """A rank with a pay band; the authority matrix is keyed on it."""

    __tablename__ = "job_levels"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    rank: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    pay_min: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    pay_max: Mapped[Decimal | None] = mapped_column(Numeric(19, 4))
    pay_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class OrgUnit(TenantBase):
    """The identity of a node of the organisation tree; what it looks like over time is in
    `OrgUnitVersion`."""

    __tablename__ = "org_units"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class OrgUnitVersion(TenantBase):
    """An org unit's name, parent, branch, cost centre and head over [valid_from, valid_to)."""

    __tablename__ = "org_unit_versions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    org_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_units.id"))
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id"))
    cost_centre: Mapped[str | None] = mapped_column(String(64))
    head_position_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("positions.id"))


class Position(TenantBase):
    """A seat in an org unit with a job level; reporting lines run between positions."""

    __tablename__ = "positions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    org_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_units.id"))
    job_level_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("job_levels.id"))
    reports_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("positions.id"))
    headcount: Mapped[int] = mapped_column(Integer, default=1)
    opened_on: Mapped[dt.date] = mapped_column(Date)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
