"""The tenant registry in the shared schema, and validated reads of it."""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
import zoneinfo

from babel import Locale, UnknownLocaleError
from babel.numbers import list_currencies
from sqlalchemy import CheckConstraint, DateTime, String, any_, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from tenants.binding import shared_session
from tenants.context import Tenant
from tenants.errors import InvalidTenantField, TenantInactive, TenantNotFound
from tenants.metadata import SharedBase
from tenants.slugs import normalize_slug

STATUSES = ("active", "suspended", "archived")


class TenantRecord(SharedBase):
    """One customer organisation; its data lives in the schema derived from `slug`."""

    __tablename__ = "tenants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'archived')", name="status"),
        CheckConstraint("slug ~ '^[a-z][a-z0-9_]{1,39}$'", name="slug"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    locale: Mapped[str] = mapped_column(String(35))
    currency: Mapped[str] = mapped_column(String(3))
    time_zone: Mapped[str] = mapped_column(String(64))
    hostnames: Mapped[list[str]] = mapped_column(ARRAY(String(253)), default=list)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    def snapshot(self) -> Tenant:
        return Tenant(
            id=self.id,
            slug=self.slug,
            name=self.name,
            status=self.status,
            locale=self.locale,
            currency=self.currency,
            time_zone=self.time_zone,
            hostnames=tuple(self.hostnames or ()),
        )


class SpareSchema(SharedBase):
    """A schema migrated ahead of time, renamed into place when a tenant is created."""

    __tablename__ = "spare_schemas"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# Babel parses an unknown remainder as a variant and falls back to the language
# ('en_US;drop' becomes 'en'), so the identifier's shape is checked first.
LOCALE_PATTERN = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")


def validate_locale(value: str) -> str:
    if not LOCALE_PATTERN.fullmatch(value):
        raise InvalidTenantField("locale", f"Unknown locale {value!r}.")
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, UnknownLocaleError) as exc:
        raise InvalidTenantField("locale", f"Unknown locale {value!r}.") from exc


def validate_currency(value: str) -> str:
    code = value.upper()
    if code not in list_currencies():
        raise InvalidTenantField("currency", f"Unknown ISO 4217 currency {value!r}.")
    return code


def validate_time_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise InvalidTenantField("time_zone", f"Unknown IANA time zone {value!r}.")
    return value


def validate_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 200:
        raise InvalidTenantField("name", "A tenant name has 1 to 200 characters.")
    if any(ord(ch) < 32 for ch in name):
        raise InvalidTenantField("name", "A tenant name cannot contain control characters.")
    return name


class TenantCache:
    """A short-lived in-process cache of registry rows, keyed by slug.

    Keys are slugs, or `host:<hostname>` for custom domains. Changes made through this
    process clear it at once; other processes see them within `ttl` seconds. Misses are
    cached too, and their keys come from requests, so the cache holds at most
    `max_entries` keys.
    """

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._rows: dict[str, tuple[float, Tenant | None]] = {}

    def get(self, slug: str) -> tuple[bool, Tenant | None]:
        hit = self._rows.get(slug)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, slug: str, tenant: Tenant | None) -> None:
        now = time.monotonic()
        if len(self._rows) >= self.max_entries:
            self._rows = {key: hit for key, hit in self._rows.items() if hit[0] >= now}
            # Keep pruning rare: once it runs, at least half the room is free.
            if len(self._rows) >= self.max_entries // 2:
                self._rows.clear()
        self._rows[slug] = (now + self.ttl, tenant)

    def clear(self) -> None:
        self._rows.clear()


tenant_cache = TenantCache()


async def find_tenant(slug: str) -> Tenant | None:
    """The registered tenant named by `slug` (case-folded), whatever its status."""
    normalized = normalize_slug(slug)
    if normalized is None:
        return None
    found, tenant = tenant_cache.get(normalized)
    if found:
        return tenant
    async with shared_session() as session:
        record = await session.scalar(select(TenantRecord).where(TenantRecord.slug == normalized))
        tenant = record.snapshot() if record else None
    tenant_cache.put(normalized, tenant)
    return tenant


async def find_tenant_by_hostname(hostname: str) -> Tenant | None:
    """A tenant that registered `hostname` as one of its own (custom domains)."""
    key = "host:" + hostname.strip().casefold()
    found, tenant = tenant_cache.get(key)
    if found:
        return tenant
    async with shared_session() as session:
        record = await session.scalar(
            select(TenantRecord).where(any_(TenantRecord.hostnames) == key[5:])
        )
        tenant = record.snapshot() if record else None
    tenant_cache.put(key, tenant)
    return tenant


async def get_active_tenant(slug: str) -> Tenant:
    """The tenant for serving a request: raises when unknown, suspended or archived."""
    tenant = await find_tenant(slug)
    if tenant is None:
        raise TenantNotFound(f"No tenant is registered as {slug!r}.")
    if not tenant.is_active:
        raise TenantInactive(tenant.slug, tenant.status)
    return tenant


async def list_tenants() -> list[Tenant]:
    async with shared_session() as session:
        records = await session.scalars(select(TenantRecord).order_by(TenantRecord.slug))
        return [record.snapshot() for record in records]


async def set_status(slug: str, status: str) -> Tenant:
    """Change a tenant's status (active, suspended, archived)."""
    if status not in STATUSES:
        raise InvalidTenantField(
            "status", f"Unknown status {status!r}; use one of {', '.join(STATUSES)}."
        )
    normalized = normalize_slug(slug)
    if normalized is None:
        raise TenantNotFound(f"No tenant is registered as {slug!r}.")
    async with shared_session() as session:
        record = await session.scalar(
            update(TenantRecord)
            .where(TenantRecord.slug == normalized)
            .values(status=status)
            .returning(TenantRecord)
        )
        if record is None:
            raise TenantNotFound(f"No tenant is registered as {slug!r}.")
        tenant = record.snapshot()
    tenant_cache.clear()
    return tenant
