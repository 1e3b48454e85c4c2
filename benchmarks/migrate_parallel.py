"""A new nullable column for 200 tenants: sequential vs parallel `migrate_tenants`.

Target: the parallel run under 20 s on 2 cores. Set-up (not timed):

- 200 registered tenants whose schemas are at the real head revision, cloned for speed
  (`benchmarks.support.clone_tenants`); the drift check (`tenants.drift.check_drift`) then
  proves that every clone equals a freshly migrated reference, and all are at head.
- A copy of `migrations/tenant` in a temporary folder with one more revision that adds a
  nullable column to `users`.

Each timed run is `migrate_tenants(engine, slugs, concurrency=N, location=copy)` over the
same 200 tenants; after it the column is dropped and the revision rewound (not timed).
Every run is checked: all 200 report `ok`, and all 200 schemas have the column at the new
revision. The sweep is repeated `--rounds` times and the best time of each level counts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support import bench_engine, clone_tenants, machine, throwaway_database
from tenants.drift import check_drift
from tenants.migrator import (
    TENANT_LINE,
    TenantMigration,
    head_of,
    migrate_tenants,
    tenant_revisions,
)
from tenants.slugs import quote_ident, schema_for

TARGET_SECONDS = 20.0
NEW_REVISION = "bench_nullable"
COLUMN = "bench_nickname"

REVISION_TEMPLATE = '''"""Benchmark only: a nullable column on users."""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("{column}", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "{column}")
'''


def add_revision(folder: Path) -> Path:
    """A copy of the tenant line with one more revision; returns its location."""
    location = folder / "tenant"
    shutil.copytree(TENANT_LINE, location, ignore=shutil.ignore_patterns("__pycache__"))
    body = REVISION_TEMPLATE.format(
        revision=NEW_REVISION, down_revision=head_of(TENANT_LINE), column=COLUMN
    )
    (location / "versions" / f"{NEW_REVISION}.py").write_text(body, encoding="utf-8")
    return location


async def verify_clones(engine: AsyncEngine, slugs: list[str]) -> None:
    drift = [report for report in await check_drift(engine, slugs) if not report.clean]
    if drift:
        raise SystemExit(f"{len(drift)} cloned schemas differ from the reference: {drift[0]}")
    head = head_of(TENANT_LINE)
    revisions = set((await tenant_revisions(engine, slugs)).values())
    if revisions != {head}:
        raise SystemExit(f"Cloned schemas are not all at {head}: {revisions}")


async def verify_run(engine: AsyncEngine, slugs: list[str], results: list[TenantMigration]) -> None:
    failed = [result for result in results if result.outcome != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} tenants did not migrate, e.g. {failed[0]}")
    revisions = await tenant_revisions(engine, slugs)
    behind = [slug for slug in slugs if revisions.get(slug) != NEW_REVISION]
    async with engine.connect() as conn:
        with_column = await conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns"
                " WHERE table_name = 'users' AND column_name = :column"
                " AND table_schema = ANY(:schemas)"
            ),
            {"column": COLUMN, "schemas": [schema_for(slug) for slug in slugs]},
        )
    if behind or with_column != len(slugs):
        raise SystemExit(
            f"Wrong result: {len(behind)} tenants not at {NEW_REVISION},"
            f" {with_column}/{len(slugs)} have the column."
        )


async def rewind(engine: AsyncEngine, slugs: list[str], old_head: str) -> None:
    """Undo the benchmark revision everywhere (not timed)."""
    async with engine.begin() as conn:
        for slug in slugs:
            schema = quote_ident(schema_for(slug))
            await conn.execute(text(f"ALTER TABLE {schema}.users DROP COLUMN {COLUMN}"))
            await conn.execute(
                text(f"UPDATE {schema}.alembic_version SET version_num = :old"), {"old": old_head}
            )


async def benchmark(tenants: int, levels: list[int], rounds: int) -> None:
    slugs = [f"m{i:04d}" for i in range(tenants)]
    old_head = head_of(TENANT_LINE)
    load_before = machine()
    async with throwaway_database("migrate") as url, bench_engine(url) as engine:
        started = time.perf_counter()
        await clone_tenants(url, engine, slugs)
        cloned = time.perf_counter() - started
        started = time.perf_counter()
        await verify_clones(engine, slugs)
        checked = time.perf_counter() - started

        runs: dict[int, list[tuple[float, float]]] = {level: [] for level in levels}
        with tempfile.TemporaryDirectory(prefix="renshi-bench-") as folder:
            location = add_revision(Path(folder))
            for _ in range(rounds):
                for level in levels:
                    started = time.perf_counter()
                    results = await migrate_tenants(
                        engine, slugs, concurrency=level, location=location
                    )
                    seconds = time.perf_counter() - started
                    await verify_run(engine, slugs, results)
                    median = statistics.median(result.seconds for result in results)
                    runs[level].append((seconds, median))
                    await rewind(engine, slugs, old_head)

    print(f"Adding a nullable column to {tenants} tenants with migrate_tenants")
    print(f"Before: {load_before}")
    print(f"After:  {machine()}")
    print(
        f"Set-up, not timed: {tenants} schemas at {old_head} cloned in {cloned:.1f} s;"
        f" drift check and revisions verified in {checked:.1f} s"
    )
    print()
    best = {level: min(times) for level, times in runs.items()}
    sequential = best[1][0] if 1 in best else None
    print(f"{'concurrency':>11}  {'best wall':>9}  {'all rounds':<22} {'tenant p50':>10}  speed-up")
    for level in levels:
        seconds, median = best[level]
        rounds_text = ", ".join(f"{wall:.2f}" for wall, _ in runs[level])
        speedup = f"{sequential / seconds:.2f}x" if sequential else "-"
        print(
            f"{level:>11}  {seconds:>7.2f} s  {rounds_text:<22} {median * 1000:>7.1f} ms"
            f"  {speedup:>8}"
        )
    print()
    print(f"Every run verified: {tenants}/{tenants} ok, column present, at {NEW_REVISION}.")
    parallel = [(seconds, level) for level, (seconds, _) in best.items() if level > 1]
    if parallel:
        seconds, level = min(parallel)
        verdict = "met" if seconds < TARGET_SECONDS else "MISSED"
        print(
            f"Target parallel < {TARGET_SECONDS:g} s: {verdict}"
            f" (best {seconds:.2f} s at concurrency {level})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=200, help="Tenants to migrate.")
    parser.add_argument(
        "--concurrency",
        default="1,2,4",
        help="Comma-separated levels, one timed run each per round (1 = sequential).",
    )
    parser.add_argument("--rounds", type=int, default=2, help="Times the sweep is repeated.")
    args = parser.parse_args()
    levels = [int(part) for part in args.concurrency.split(",")]
    asyncio.run(benchmark(args.tenants, levels, args.rounds))


if __name__ == "__main__":
    main()
