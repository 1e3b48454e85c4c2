"""Multi-step operations shared by the CLI, `make run` and the tests."""

from __future__ import annotations

import click

from renshi.settings import get_settings
from tenants.database import get_engine
from tenants.migrator import (
    TENANT_LINE,
    TenantMigration,
    head_of,
    migrate_shared,
    migrate_tenants,
    migration_lock,
)
from tenants.provisioning import drop_stale_spares
from tenants.registry import list_tenants


async def migrate_everything(
    concurrency: int | None = None, *, echo: bool = False
) -> list[TenantMigration]:
    """Shared schema first (a failure stops everything), then every tenant in parallel."""
    engine = get_engine()
    concurrency = concurrency or get_settings().migrate_concurrency

    def report(result: TenantMigration) -> None:
        if not echo:
            return
        detail = (
            f" {result.from_revision} -> {result.to_revision}" if result.outcome == "ok" else ""
        )
        error = f": {result.error}" if result.error else ""
        click.echo(f"{result.slug}: {result.outcome}{detail} ({result.seconds:.2f} s){error}")

    async with migration_lock(engine):
        await migrate_shared(engine)
        slugs = [tenant.slug for tenant in await list_tenants()]
        results = await migrate_tenants(engine, slugs, concurrency=concurrency, on_result=report)
        await drop_stale_spares(engine, head_of(TENANT_LINE))
    return results
