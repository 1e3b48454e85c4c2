"""Alembic for two lines of revisions: the shared schema and the tenant schemas.

Revisions live in `migrations/shared` and `migrations/tenant`. A tenant schema is migrated
inside one transaction that first binds its `search_path`, so tenant revisions create
unqualified tables and never name a schema themselves.

Tenant revisions are rendered to SQL once by Alembic's offline mode and that script is run
in every tenant: the same text for all of them, since none names a schema. Running a
script needs no Alembic state, so tenants migrate concurrently on separate connections.
A revision that must read the database while it runs sets `requires_online = True` in its
module; a path through one is run by Alembic online instead, one tenant at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import io
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenants.binding import search_path_sql
from tenants.errors import MigrationLocked
from tenants.slugs import SHARED_SCHEMA, quote_ident, schema_for

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SHARED_LINE = MIGRATIONS_DIR / "shared"
TENANT_LINE = MIGRATIONS_DIR / "tenant"

# Arbitrary but fixed key of the advisory lock that serialises migration runs.
MIGRATION_LOCK_KEY = 7_362_821_001


def script_directory(location: Path) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(config)


def head_of(location: Path) -> str:
    head = script_directory(location).get_current_head()
    if head is None:
        raise RuntimeError(f"No revisions in {location}.")
    return head


def upgrade_schema(connection: Connection, location: Path, version_schema: str) -> None:
    """Upgrade the schema the connection is bound to, inside the caller's transaction."""
    script = script_directory(location)

    def upgrade(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs("heads", revision)

    context = MigrationContext.configure(
        connection,
        opts={
            "script": script,
            "fn": upgrade,
            "version_table_schema": version_schema,
            "transactional_ddl": True,
        },
    )
    with Operations.context(context):
        context.run_migrations()


async def migrate_shared(engine: AsyncEngine) -> None:
    """Bring the shared schema to head in one transaction."""
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(SHARED_SCHEMA)}"))
        await conn.execute(text(f"SET LOCAL search_path TO {quote_ident(SHARED_SCHEMA)}"))
        async with _alembic_turn():
            await conn.run_sync(upgrade_schema, SHARED_LINE, SHARED_SCHEMA)


# NOTE: Alembic's `op` is a module-level proxy to the one migration context in use, so
# two migrations interleaved in one process would run each other's DDL. Within a process
# migrations therefore take turns; `migrate_tenants` gets its parallelism from processes.
_alembic_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _alembic_turn() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _alembic_turns.get(loop)
    if lock is None:
        lock = _alembic_turns[loop] = asyncio.Lock()
    return lock


async def migrate_tenant_schema(
    conn: AsyncConnection, schema: str, location: Path = TENANT_LINE
) -> None:
    """Upgrade one tenant-line schema to head inside the connection's current transaction."""
    await conn.execute(text(search_path_sql(schema)))
    # Qualified: the shared schema on the search path has an alembic_version of its own.
    table = f"{quote_ident(schema)}.alembic_version"
    exists = await conn.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})
    current = await conn.scalar(text(f"SELECT max(version_num) FROM {table}")) if exists else None
    if current == head_of(location):
        return
    script = rendered_upgrade(location, current)
    if script is None:
        await migrate_tenant_schema_online(conn, schema, location)
        return
    raw = await conn.get_raw_connection()
    # The simple query protocol runs a multi-statement script in the open transaction.
    await raw.driver_connection.execute(script)  # type: ignore[union-attr]


async def migrate_tenant_schema_online(
    conn: AsyncConnection, schema: str, location: Path = TENANT_LINE
) -> None:
    """Upgrade with Alembic online, revision by revision: the reference the drift check
    compares rendered migrations against."""
    await conn.execute(text(search_path_sql(schema)))
    async with _alembic_turn():
        await conn.run_sync(upgrade_schema, location, schema)


def rendered_upgrade(location: Path, from_revision: str | None) -> str | None:
    """The SQL that takes a tenant schema from `from_revision` to head, or None when a
    revision on the way must run online. Rendered once per process and path."""
    return _render(str(location), from_revision, head_of(location))


@functools.lru_cache(maxsize=64)
def _render(location: str, from_revision: str | None, head: str) -> str | None:
    script = script_directory(Path(location))
    path = list(script.iterate_revisions(head, from_revision))
    if any(getattr(revision.module, "requires_online", False) for revision in path):
        return None
    output = io.StringIO()

    def upgrade(revision: Any, _context: MigrationContext) -> Any:
        return script._upgrade_revs(head, revision)

    # NOTE: "named" paramstyle, so a `%` in a revision's SQL is not doubled for a driver
    # that will never see it. No await happens while Alembic's global `op` is in use.
    context = MigrationContext.configure(
        dialect_name="postgresql",
        dialect_opts={"paramstyle": "named"},
        opts={
            "as_sql": True,
            "output_buffer": output,
            "script": script,
            "fn": upgrade,
            "starting_rev": from_revision,
            "transactional_ddl": False,
            "literal_binds": True,
        },
    )
    with Operations.context(context):
        context.run_migrations()
    return output.getvalue()


@dataclasses.dataclass
class TenantMigration:
    """What happened to one tenant in a migration run."""

    slug: str
    outcome: str  # ok, failed or skipped
    from_revision: str | None
    to_revision: str | None
    seconds: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@contextlib.asynccontextmanager
async def migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the global migration lock for the block, or raise `MigrationLocked` at once."""
    async with engine.connect() as conn:
        taken = await conn.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
        await conn.commit()
        if not taken:
            raise MigrationLocked("Another migration run holds the lock; try again later.")
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.commit()


async def tenant_revisions(engine: AsyncEngine, slugs: Sequence[str]) -> dict[str, str | None]:
    """Every tenant's current revision, read in one query."""
    if not slugs:
        return {}
    parts = [
        f"SELECT CAST(:s{i} AS text) AS slug,"
        f" (SELECT max(version_num) FROM {quote_ident(schema_for(slug))}.alembic_version)"
        " AS revision"
        for i, slug in enumerate(slugs)
    ]
    params = {f"s{i}": slug for i, slug in enumerate(slugs)}
    async with engine.connect() as conn:
        rows = await conn.execute(text(" UNION ALL ".join(parts)), params)
        return {row.slug: row.revision for row in rows}


async def migrate_tenants(
    engine: AsyncEngine,
    slugs: Sequence[str],
    *,
    concurrency: int,
    location: Path = TENANT_LINE,
    on_result: Callable[[TenantMigration], None] | None = None,
) -> list[TenantMigration]:
    """Migrate the given tenants to head, `concurrency` at a time, one transaction each.

    Tenants already at head are skipped without opening a transaction.
    """
    head = head_of(location)
    current = await tenant_revisions(engine, slugs)
    results: dict[str, TenantMigration] = {}

    def record(result: TenantMigration) -> None:
        results[result.slug] = result
        if on_result is not None:
            on_result(result)

    pending = []
    for slug in slugs:
        if current.get(slug) == head:
            record(TenantMigration(slug, "skipped", head, head, 0.0))
        else:
            pending.append(slug)

    semaphore = asyncio.Semaphore(max(1, concurrency))

    async def one(slug: str) -> None:
        async with semaphore:
            record(await _migrate_one(engine, slug, current.get(slug), head, location))

    await asyncio.gather(*(one(slug) for slug in pending))
    return [results[slug] for slug in slugs]


async def _migrate_one(
    engine: AsyncEngine, slug: str, before: str | None, head: str, location: Path
) -> TenantMigration:
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await migrate_tenant_schema(conn, schema_for(slug), location)
    except Exception as exc:
        log.warning("Migrating tenant %s failed: %s", slug, _first_line(exc))
        seconds = time.perf_counter() - started
        return TenantMigration(slug, "failed", before, before, seconds, error=_first_line(exc))
    return TenantMigration(slug, "ok", before, head, time.perf_counter() - started)


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0] if text_ else type(exc).__name__
