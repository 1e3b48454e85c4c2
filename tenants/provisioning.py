"""Creating and dropping tenants.

Creating all tables of a tenant schema takes seconds, but `create_tenant` must answer in
well under one. So a few spare schemas are migrated ahead of time; creation renames one
into place and registers the tenant in the same transaction. When no spare is left it
falls back to migrating a new schema inline: slower, never wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenants.context import Tenant
from tenants.errors import TenantExists, TenantNotFound
from tenants.migrator import migrate_tenant_schema
from tenants.registry import (
    SpareSchema,
    TenantRecord,
    tenant_cache,
    validate_currency,
    validate_locale,
    validate_name,
    validate_time_zone,
)
from tenants.slugs import normalize_slug, quote_ident, schema_for, validate_slug

log = logging.getLogger(__name__)

SPARE_PREFIX = "spare_"


@dataclasses.dataclass(frozen=True)
class TenantSpec:
    """Validated input for a new tenant. Building one runs no SQL."""

    slug: str
    name: str
    locale: str = "en"
    currency: str = "USD"
    time_zone: str = "UTC"
    hostnames: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        slug: str,
        name: str,
        locale: str = "en",
        currency: str = "USD",
        time_zone: str = "UTC",
        hostnames: tuple[str, ...] = (),
    ) -> TenantSpec:
        return cls(
            slug=validate_slug(slug),
            name=validate_name(name),
            locale=validate_locale(locale),
            currency=validate_currency(currency),
            time_zone=validate_time_zone(time_zone),
            hostnames=tuple(h.strip().casefold() for h in hostnames if h.strip()),
        )


async def create_tenant(engine: AsyncEngine, spec: TenantSpec) -> Tenant:
    """Register a tenant and give it a schema at head, atomically.

    Either both the schema and the registry row exist afterwards, or neither does.
    """
    schema = schema_for(spec.slug)
    try:
        async with engine.begin() as conn:
            if await conn.scalar(select(TenantRecord.id).where(TenantRecord.slug == spec.slug)):
                raise TenantExists(f"A tenant {spec.slug!r} already exists.")
            spare = await _take_spare(conn)
            if spare is None:
                log.info("No spare schema left; migrating %s inline.", schema)
                await conn.execute(text(f"CREATE SCHEMA {quote_ident(schema)}"))
                await migrate_tenant_schema(conn, schema)
            else:
                await conn.execute(
                    text(f"ALTER SCHEMA {quote_ident(spare)} RENAME TO {quote_ident(schema)}")
                )
            record = await conn.execute(
                TenantRecord.__table__.insert()
                .values(
                    id=uuid.uuid4(),
                    slug=spec.slug,
                    name=spec.name,
                    locale=spec.locale,
                    currency=spec.currency,
                    time_zone=spec.time_zone,
                    hostnames=list(spec.hostnames),
                    status="active",
                )
                .returning(*TenantRecord.__table__.c)
            )
            row = record.one()
    except IntegrityError as exc:
        # Two creations of one slug raced; the loser's transaction left nothing behind.
        raise TenantExists(f"A tenant {spec.slug!r} already exists.") from exc
    tenant_cache.clear()
    return Tenant(
        id=row.id,
        slug=row.slug,
        name=row.name,
        status=row.status,
        locale=row.locale,
        currency=row.currency,
        time_zone=row.time_zone,
        hostnames=tuple(row.hostnames),
    )


async def _take_spare(conn: AsyncConnection) -> str | None:
    # SKIP LOCKED lets concurrent creations each take a different spare without waiting.
    name = await conn.scalar(
        select(SpareSchema.name)
        .order_by(SpareSchema.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if name is not None:
        await conn.execute(delete(SpareSchema).where(SpareSchema.name == name))
    return name


async def create_spare(engine: AsyncEngine) -> str:
    """Migrate one new spare schema and record it; returns its name."""
    name = f"{SPARE_PREFIX}{secrets.token_hex(8)}"
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {quote_ident(name)}"))
        await migrate_tenant_schema(conn, name)
        await conn.execute(SpareSchema.__table__.insert().values(name=name))
    return name


async def count_spares(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM shared.spare_schemas")) or 0)


async def refill_spares(engine: AsyncEngine, target: int) -> int:
    """Create spares until `target` exist; returns how many were made."""
    made = 0
    while await count_spares(engine) < target:
        await create_spare(engine)
        made += 1
    return made


async def drop_stale_spares(engine: AsyncEngine, head: str) -> int:
    """Drop spares that are not at `head` (after new revisions); returns how many."""
    async with engine.begin() as conn:
        names = list(await conn.scalars(select(SpareSchema.name)))
        stale = []
        for name in names:
            revision = await conn.scalar(
                text(f"SELECT max(version_num) FROM {quote_ident(name)}.alembic_version")
            )
            if revision != head:
                stale.append(name)
        for name in stale:
            await conn.execute(text(f"DROP SCHEMA {quote_ident(name)} CASCADE"))
            await conn.execute(delete(SpareSchema).where(SpareSchema.name == name))
    return len(stale)


async def drop_tenant(engine: AsyncEngine, slug: str) -> None:
    """Delete a tenant's schema and registry row, with all its data, atomically."""
    normalized = normalize_slug(slug)
    if normalized is None:
        raise TenantNotFound(f"No tenant is registered as {slug!r}.")
    async with engine.begin() as conn:
        deleted = await conn.scalar(
            delete(TenantRecord).where(TenantRecord.slug == normalized).returning(TenantRecord.id)
        )
        if deleted is None:
            raise TenantNotFound(f"No tenant is registered as {slug!r}.")
        schema = quote_ident(schema_for(normalized))
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    tenant_cache.clear()
