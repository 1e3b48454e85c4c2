"""Tenant creation latency: p50/p95 over 50 creations, target p95 < 1 s.

Runs of `--creations` calls to `create_tenant` each, in one throwaway database:

- baseline: no spare schema exists, so every creation migrates its schema inline;
- spare pool refilled by another process, as in the product (the API's keeper, or the
  `renshi tenants create` process that refills after answering), creations back to back
  and then one every `--spacing` seconds;
- spare pool refilled by a task in the creating process's own event loop, back to back:
  the harshest case, since Alembic migrations in one process take turns.

The pool starts each run full (`--spares`). The refiller tops it up whenever it is short.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support import bench_engine, machine, ms, percentile, throwaway_database
from tenants.database import create_engine
from tenants.provisioning import (
    TenantSpec,
    count_spares,
    create_spare,
    create_tenant,
    refill_spares,
)
from tenants.slugs import quote_ident

TARGET_P95 = 1.0
REFILL_POLL = 0.05


class FallbackCounter(logging.Handler):
    """Counts creations that found no spare (`create_tenant` logs each one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("No spare schema left"):
            self.count += 1


async def keep_topped_up(engine: AsyncEngine, target: int) -> None:
    """Refill whenever the pool is short; what the refiller does, in or out of process."""
    while True:
        await refill_spares(engine, target)
        await asyncio.sleep(REFILL_POLL)


@contextlib.asynccontextmanager
async def refiller_in_loop(engine: AsyncEngine, target: int) -> AsyncIterator[None]:
    task = asyncio.create_task(keep_topped_up(engine, target))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def refiller_process(url: str, target: int) -> AsyncIterator[None]:
    """Run `refill_worker` in another process; yields once it has topped the pool up."""
    command = [sys.executable, "-m", __spec__.name, "--refill-worker", url, "--spares", str(target)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        if await asyncio.to_thread(process.stdout.readline) != "ready\n":
            raise SystemExit("The refill process did not start.")
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclasses.dataclass
class Run:
    label: str
    latencies: list[float]
    inline: list[bool]
    refilled: int

    @property
    def fallbacks(self) -> int:
        return sum(self.inline)

    def latencies_where(self, inline: bool) -> list[float]:
        pairs = zip(self.latencies, self.inline, strict=True)
        return [seconds for seconds, was_inline in pairs if was_inline is inline]

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95)


async def create_many(
    engine: AsyncEngine,
    label: str,
    count: int,
    counter: FallbackCounter,
    *,
    spacing: float = 0.0,
) -> Run:
    latencies = []
    inline = []
    spares_before = await count_spares(engine)
    for _ in range(count):
        slug = f"b_{secrets.token_hex(6)}"
        spec = TenantSpec.parse(slug=slug, name=f"Bench {slug}")
        fallbacks_before = counter.count
        started = time.perf_counter()
        await create_tenant(engine, spec)
        latencies.append(time.perf_counter() - started)
        inline.append(counter.count > fallbacks_before)
        # Yield even when back to back, as a caller returning to its own loop would.
        await asyncio.sleep(spacing)
    taken = count - sum(inline)
    refilled = taken + await count_spares(engine) - spares_before
    return Run(label, latencies, inline, refilled)


async def median_spare_seconds(engine: AsyncEngine, samples: int = 10) -> float:
    """Median time to migrate one spare schema (what the refiller pays per spare)."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        await create_spare(engine)
        times.append(time.perf_counter() - started)
    return percentile(times, 0.5)


async def drain_spares(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for name in list(await conn.scalars(text("SELECT name FROM shared.spare_schemas"))):
            await conn.execute(text(f"DROP SCHEMA {quote_ident(name)} CASCADE"))
        await conn.execute(text("DELETE FROM shared.spare_schemas"))


async def benchmark(creations: int, spares: int, spacing: float) -> None:
    counter = FallbackCounter()
    provisioning_log = logging.getLogger("tenants.provisioning")
    provisioning_log.setLevel(logging.INFO)
    provisioning_log.addHandler(counter)
    provisioning_log.propagate = False

    load_before = machine()
    async with throwaway_database("creation") as url, bench_engine(url) as engine:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SHOW server_version"))
        # Warm up imports, Alembic and the pool, then start with no spare at all.
        await create_tenant(engine, TenantSpec.parse(slug="warm_up", name="Warm up"))
        per_spare = await median_spare_seconds(engine)
        await drain_spares(engine)

        runs = [await create_many(engine, "no spare (inline migration)", creations, counter)]

        await refill_spares(engine, spares)
        async with refiller_process(url, spares):
            label = "other process refills, back to back"
            runs.append(await create_many(engine, label, creations, counter))
            await refill_spares(engine, spares)
            label = f"other process refills, 1 per {spacing:g} s"
            runs.append(await create_many(engine, label, creations, counter, spacing=spacing))

        await refill_spares(engine, spares)
        async with refiller_in_loop(engine, spares):
            label = "same loop refills, back to back"
            runs.append(await create_many(engine, label, creations, counter))

    baseline = runs[0]
    print(f"Tenant creation latency, {creations} creations per run, spare pool target {spares}")
    print(f"PostgreSQL {version}; percentiles are nearest-rank")
    print(f"Before: {load_before}")
    print(f"After:  {machine()}")
    print(f"Migrating one spare schema takes {ms(per_spare)} (median of 10, before the runs)")
    print()
    header = f"{'run':<38} {'p50':>9} {'p95':>9} {'max':>9}  spare used  refilled  p95 inline/run"
    print(header)
    for run in runs:
        used = f"{creations - run.fallbacks}/{creations}"
        print(
            f"{run.label:<38} {ms(run.p50):>9} {ms(run.p95):>9} {ms(max(run.latencies)):>9}"
            f"  {used:>10}  {run.refilled:>8}  {baseline.p95 / run.p95:>13.1f}x"
        )
    print()
    for run in runs[1:]:
        verdict = "met" if run.p95 < TARGET_P95 else "MISSED"
        print(f"target p95 < {TARGET_P95:g} s, {run.label}: {verdict}")
    print()
    from_spare = [t for run in runs for t in run.latencies_where(inline=False)]
    migrated = [t for run in runs for t in run.latencies_where(inline=True)]
    print("All runs together, by what each creation found:")
    for label, times in (("took a spare", from_spare), ("migrated inline", migrated)):
        print(
            f"  {label:<16} {len(times):>4} creations  p50 {ms(percentile(times, 0.5)):>9}"
            f"  p95 {ms(percentile(times, 0.95)):>9}"
        )
    ratio = percentile(migrated, 0.5) / percentile(from_spare, 0.5)
    print(f"  inline / spare at p50: {ratio:.1f}x")


async def refill_worker(url: str, target: int) -> None:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        await refill_spares(engine, target)
        print("ready", flush=True)
        await keep_topped_up(engine, target)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creations", type=int, default=50, help="Creations per run.")
    parser.add_argument("--spares", type=int, default=3, help="Spare pool target.")
    parser.add_argument(
        "--spacing", type=float, default=1.0, help="Seconds between spaced creations."
    )
    parser.add_argument("--refill-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.refill_worker:
        asyncio.run(refill_worker(args.refill_worker, args.spares))
    else:
        asyncio.run(benchmark(args.creations, args.spares, args.spacing))


if __name__ == "__main__":
    main()
