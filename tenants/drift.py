"""Drift check: compare each tenant schema's catalog with a freshly migrated reference.

The reference is migrated by Alembic online, revision by revision, inside a transaction
that is always rolled back: tenants get the rendered scripts, so the check also proves
that rendering changed nothing. It leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import secrets

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenants.migrator import migrate_tenant_schema_online
from tenants.slugs import quote_ident, schema_for

# One row per catalog fact that matters to the application: columns with their types,
# nullability and defaults, constraints, and indexes. The schema name is blanked out so
# facts from different schemas compare equal.
_CATALOG_SQL = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' ||
       format_type(a.atttypid, a.atttypmod) ||
       CASE WHEN a.attnotnull THEN ' not null' ELSE ' null' END ||
       coalesce(' default ' || replace(pg_get_expr(d.adbin, d.adrelid), :schema || '.', ''), '')
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0
   AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || '.' || k.conname || ' ' ||
       replace(pg_get_constraintdef(k.oid), :schema || '.', '')
  FROM pg_constraint k
  JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema
UNION ALL
SELECT 'index ' || replace(indexdef, :schema || '.', '')
  FROM pg_indexes WHERE schemaname = :schema
"""


@dataclasses.dataclass
class DriftReport:
    slug: str
    missing: list[str]  # in the reference, not in the tenant
    unexpected: list[str]  # in the tenant, not in the reference

    @property
    def clean(self) -> bool:
        return not self.missing and not self.unexpected


async def catalog(conn: AsyncConnection, schema: str) -> set[str]:
    rows = await conn.scalars(text(_CATALOG_SQL), {"schema": schema})
    return set(rows)


async def reference_catalog(engine: AsyncEngine) -> set[str]:
    name = f"reference_{secrets.token_hex(6)}"
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(f"CREATE SCHEMA {quote_ident(name)}"))
            await migrate_tenant_schema_online(conn, name)
            facts = await catalog(conn, name)
        finally:
            await transaction.rollback()
    return {fact.replace(f'"{name}".', "") for fact in facts}


async def check_drift(engine: AsyncEngine, slugs: list[str]) -> list[DriftReport]:
    reference = await reference_catalog(engine)
    reports = []
    async with engine.connect() as conn:
        for slug in slugs:
            facts = await catalog(conn, schema_for(slug))
            reports.append(
                DriftReport(
                    slug=slug,
                    missing=sorted(reference - facts),
                    unexpected=sorted(facts - reference),
                )
            )
    return reports
