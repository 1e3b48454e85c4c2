"""What the benchmarks share: a throwaway database, an engine, cloned tenants, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenants.database import configure_engine, create_engine, dispose_engine
from tenants.migrator import (
    TENANT_LINE,
    migrate_shared,
    migrate_tenant_schema,
    script_directory,
)
from tenants.registry import TenantRecord
from tenants.slugs import quote_ident, schema_for

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The PostgreSQL server to benchmark on: BENCH_DATABASE_URL, else DATABASE_URL."""
    return (
        os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    )


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def throwaway_database(label: str) -> AsyncIterator[str]:
    """Create a database of its own on the server, yield its URL, and drop it afterwards."""
    admin_url = server_url()
    name = f"renshi_bench_{label}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(asyncpg_dsn(admin_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def bench_engine(url: str, *, pool_size: int = 10) -> AsyncIterator[AsyncEngine]:
    """The process-wide engine on `url`, with the shared schema at head."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=5)
    configure_engine(engine)
    try:
        await migrate_shared(engine)
        yield engine
    finally:
        await dispose_engine()


def machine() -> str:
    """CPUs and load, printed with every result: other work on the box skews timings."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest sample with `fraction` of samples at or below."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def head_sql() -> str:
    """The tenant line from nothing to head as one SQL script (Alembic's offline mode)."""
    script = script_directory(TENANT_LINE)
    buffer = io.StringIO()

    def upgrade(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs("heads", revision)

    context = MigrationContext.configure(
        dialect_name="postgresql",
        # As Alembic's own offline template does: otherwise "%" in raw SQL comes out doubled.
        dialect_opts={"paramstyle": "named"},
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "script": script,
            "fn": upgrade,
            "transactional_ddl": False,
        },
    )
    with Operations.context(context):
        context.run_migrations()
    return buffer.getvalue()


async def clone_tenants(url: str, engine: AsyncEngine, slugs: list[str], workers: int = 2) -> None:
    """Register `slugs` as active tenants whose schemas are at head, quickly.

    Alembic renders the tenant line once (the revisions `create_tenant` applies) and each
    schema runs that script in one round trip. Functions and triggers are compared with a
    migrated reference here; tables, constraints and indexes are the drift check's job.
    """
    sql = head_sql()
    queue = list(reversed(slugs))

    async def worker() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            while queue:
                schema = quote_ident(schema_for(queue.pop()))
                # Without bind parameters asyncpg uses the simple protocol, so one round
                # trip carries the whole script.
                async with conn.transaction():
                    await conn.execute(
                        f"CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}; {sql}"
                    )
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
    await check_routines(engine, schema_for(slugs[0]))
    async with engine.begin() as conn:
        await conn.execute(
            insert(TenantRecord),
            [
                {
                    "id": uuid.uuid4(),
                    "slug": slug,
                    "name": f"Bench {slug}",
                    "status": "active",
                    "locale": "en",
                    "currency": "USD",
                    "time_zone": "UTC",
                    "hostnames": [],
                }
                for slug in slugs
            ],
        )


# Functions and triggers, which the drift check does not compare, with schema names removed.
_ROUTINES_SQL = """
SELECT pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = :schema
UNION ALL
SELECT pg_get_triggerdef(t.oid)
  FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = :schema AND NOT t.tgisinternal
"""


async def check_routines(engine: AsyncEngine, schema: str) -> None:
    """Stop unless `schema` has the same functions and triggers as a migrated reference."""

    async def routines(conn: AsyncConnection, name: str) -> set[str]:
        rows = await conn.scalars(text(_ROUTINES_SQL), {"schema": name})
        return {row.replace(f"{name}.", "") for row in rows}

    reference = f"reference_{secrets.token_hex(6)}"
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(f"CREATE SCHEMA {quote_ident(reference)}"))
            await migrate_tenant_schema(conn, reference)
            expected = await routines(conn, reference)
        finally:
            await transaction.rollback()
        found = await routines(conn, schema)
    if found != expected:
        raise SystemExit(f"Cloned schema {schema} has other functions or triggers than head.")
